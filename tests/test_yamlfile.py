"""Tests for exporter.config.loader: alias bombs, recursive aliases, duplicate keys, messages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from exporter.config.loader import INVALID, MAX_DEPTH, MAX_NODES, load_yaml
from exporter.config.problems import Problems

#: Generous: only so that a regression (an endless expansion) fails instead of hanging.
TIMEOUT = 20


def load(text: str | bytes, **limits: int) -> tuple[Any, list[tuple[str, str]]]:
    problems = Problems("t.yaml")
    data = load_yaml(text, problems, **limits)
    assert all(p.source == "t.yaml" for p in problems.items)
    return data, [(p.key, p.message) for p in problems.items]


def load_in_subprocess(text: str) -> tuple[bool, list[tuple[str, str]]]:
    """``load`` in a child process, killed after TIMEOUT: a bomb must not hang the test run."""
    code = textwrap.dedent(
        """
        import json, sys
        from exporter.config.problems import Problems
        from exporter.config.loader import INVALID, load_yaml
        problems = Problems("t.yaml")
        data = load_yaml(sys.stdin.read(), problems)
        print(json.dumps([data is INVALID, [[p.key, p.message] for p in problems.items]]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=text,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    invalid, problems = json.loads(done.stdout)
    return invalid, [(k, m) for k, m in problems]


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"a: &a [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        items = ", ".join([f"*{names[level - 1]}"] * width)
        lines.append(f"{names[level]}: &{names[level]} [{items}]")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- alias bombs


def test_billion_laughs_is_refused() -> None:
    text = billion_laughs()
    assert len(text) < 700
    invalid, problems = load_in_subprocess(text)
    assert invalid
    assert problems == [
        ("", f"too large: more than {MAX_NODES:,} YAML nodes (counting every alias expansion)")
    ]


def test_merge_key_bomb_is_refused() -> None:
    lines = ["a: &a {" + ", ".join(f"k{i}: v" for i in range(10)) + "}"]
    for level in range(1, 8):
        merged = ", ".join([f"*{chr(96 + level)}"] * 10)
        lines.append(f"{chr(97 + level)}: &{chr(97 + level)} {{<<: [{merged}], x{level}: 1}}")
    invalid, problems = load_in_subprocess("\n".join(lines) + "\n")
    assert invalid
    assert [m for _k, m in problems] == [
        f"too large: more than {MAX_NODES:,} YAML nodes (counting every alias expansion)"
    ]


def test_long_strings_repeated_by_aliases_are_refused() -> None:
    # keys "a" and "b", the string, and 20 copies of it: 21,002 characters.
    text = 'a: &a "' + "x" * 1000 + '"\nb: [' + ", ".join(["*a"] * 20) + "]\n"
    assert load(text, max_chars=21_002)[0] != INVALID
    data, problems = load(text, max_chars=21_001)
    assert data is INVALID
    assert problems == [
        (
            "",
            "too large: more than 21,001 characters of YAML values"
            " (counting every alias expansion)",
        )
    ]


def test_alias_expansion_is_counted_exactly() -> None:
    # root, key a, [1, 2] (3 nodes), key b, and *a counting as the 3 nodes it names: 9.
    text = "a: &a [1, 2]\nb: *a\n"
    data, problems = load(text, max_nodes=9)
    assert (data, problems) == ({"a": [1, 2], "b": [1, 2]}, [])
    assert data["a"] is data["b"]  # an alias is constructed once and shared
    assert load(text, max_nodes=8)[0] is INVALID


def test_too_many_nodes_without_aliases() -> None:
    assert load("[1, 2, 3]", max_nodes=4) == ([1, 2, 3], [])
    data, problems = load("[1, 2, 3]", max_nodes=3)
    assert data is INVALID
    assert "more than 3 YAML nodes" in problems[0][1]


def test_aliases_used_sensibly_still_work() -> None:
    text = """\
    defaults: &defaults {region: cn-north-4, auth: &auth {access_key: a}}
    targets:
      - {<<: *defaults, name: one}
      - {<<: *defaults, name: two, auth: *auth}
    """
    data, problems = load(textwrap.dedent(text))
    assert problems == []
    assert data["targets"] == [
        {"region": "cn-north-4", "auth": {"access_key": "a"}, "name": "one"},
        {"region": "cn-north-4", "auth": {"access_key": "a"}, "name": "two"},
    ]


# --------------------------------------------------------------------------- recursion, depth


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("x: &a [*a]\n", 8),
        ("x: &a {b: *a}\n", 11),
        ("x: &a {<<: *a}\n", 12),
        ("x: &a [1, [2, *a]]\n", 15),
    ],
)
def test_recursive_alias_is_refused(text: str, column: int) -> None:
    invalid, problems = load_in_subprocess(text)
    assert invalid
    assert problems == [("", f"recursive YAML alias at line 1, column {column}")]


def test_recursive_alias_line() -> None:
    data, problems = load("a: 1\nb: &b\n  c:\n    - *b\n")
    assert data is INVALID
    assert problems == [("", "recursive YAML alias at line 4, column 7")]


def test_nesting_depth() -> None:
    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    data, problems = load(deepest)
    assert problems == []
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []
    data, problems = load("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert data is INVALID
    assert problems == [("", f"YAML nested more than {MAX_DEPTH} levels at line 1, column 101")]


def test_very_deep_nesting_is_refused_not_a_recursion_error() -> None:
    for opener, closer in (("[", "]"), ("{a: ", "}"), ("- ", "")):
        data, problems = load(opener * 5000 + "x" + closer * 5000)
        assert data is INVALID
        assert "nested more than" in problems[0][1]


# --------------------------------------------------------------------------- duplicate keys


def test_duplicate_keys_with_path_and_line() -> None:
    text = "a: 1\nb:\n  - {c: 1, c: 2}\n  - d: 1\n    e: 1\n    d: 2\na: 3\n"
    data, problems = load(text)
    assert problems == [
        ("b[0].c", "duplicate key (line 3)"),
        ("b[1].d", "duplicate key (line 6)"),
        ("a", "duplicate key (line 7)"),
    ]
    assert data == {"a": 3, "b": [{"c": 2}, {"d": 2, "e": 1}]}  # still constructed


def test_duplicate_key_in_an_aliased_mapping_is_reported_once() -> None:
    data, problems = load("a: &a {k: 1, k: 2}\nb: *a\nc: *a\n")
    assert problems == [("a.k", "duplicate key (line 1)")]
    assert data["c"] == {"k": 2}


def test_merge_keys_are_not_duplicates() -> None:
    text = "a: &a {x: 1, y: 1}\nb: &b {z: 1}\nc: {<<: [*a, *b], y: 2}\nd: {<<: *a, <<: *b}\n"
    data, problems = load(text)
    assert problems == []
    assert data["c"] == {"x": 1, "y": 2, "z": 1}
    assert data["d"]["x"] == data["d"]["z"] == 1


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    _data, problems = load("{'<<': 1, '<<': 2}")
    assert problems == [("<<", "duplicate key (line 1)")]


# --------------------------------------------------------------------------- values, messages


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x: !!int SECRET-INT", "invalid YAML at line 1, column 4: not a valid int value"),
        ("x: !!float SECRET-F", "invalid YAML at line 1, column 4: not a valid float value"),
        ("x: !!bool SECRET-BOOL", "invalid YAML at line 1, column 4: not a valid bool value"),
        ("x: !!timestamp SECRET", "invalid YAML at line 1, column 4: not a valid timestamp value"),
        (
            "x: 2001-12-14 21:59:43.10 +99:00",
            "invalid YAML at line 1, column 4: not a valid timestamp value",
        ),
        ("x: " + "1" * 101, "invalid YAML at line 1, column 4: number longer than 100 characters"),
        ("x: 0x" + "f" * 99, "invalid YAML at line 1, column 4: number longer than 100 characters"),
    ],
)
def test_values_that_cannot_be_built(text: str, message: str) -> None:
    data, problems = load(text)
    assert (data, problems) == (INVALID, [("", message)])


def test_longest_number() -> None:
    assert load("x: " + "9" * 100) == ({"x": int("9" * 100)}, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 'SECRET-VALUE\n", "invalid YAML at line 2, column 1: while scanning a quoted scalar"),
        ("a: {b: SECRET-VALUE\n", "invalid YAML at line 2, column 1: while parsing a flow mapping"),
        ("a: SECRET-VALUE\n b: c\n", "invalid YAML at line 2, column 3"),
        ("a: *undefined\nb: SECRET\n", "invalid YAML at line 1, column 4: found undefined alias"),
        ("a: SECRET\x01VALUE\n", "invalid YAML: unacceptable character #x0001 at character 9"),
        (b"a: SECRET\xffVALUE\n", "invalid YAML: unacceptable character #x00ff at byte 9"),
        ("a: 1\n---\nb: SECRET\n", "invalid YAML at line 2, column 1: expected a single"),
    ],
)
def test_errors_are_reported_by_position_without_a_snippet(text: str | bytes, message: str) -> None:
    data, problems = load(text)
    assert data is INVALID
    [(key, got)] = problems
    assert key == ""
    assert got.startswith(message), got
    assert "SECRET" not in got
    assert "\n" not in got


def test_empty_documents() -> None:
    assert load("") == (None, [])
    assert load("# only a comment\n") == (None, [])
    assert load(b"") == (None, [])


def test_bytes_with_encodings() -> None:
    assert load("k: värde\n".encode()) == ({"k": "värde"}, [])
    assert load("k: värde\n".encode("utf-16")) == ({"k": "värde"}, [])


def test_unsafe_tags_are_refused() -> None:
    data, problems = load("x: !!python/object/apply:os.system [echo]\n")
    assert data is INVALID
    assert "could not determine a constructor" in problems[0][1]
