"""The one reader of untrusted values: numbers, strings, JSON bodies and headers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.values import (
    MAX_LABEL_CHARS,
    MAX_RETRY_AFTER,
    MAX_SAFE_INT,
    TRUNCATION_MARK,
    ValueIssues,
    clean_text,
    header_token,
    loads_json,
    parse_natural,
    parse_retry_after,
    read_bool,
    read_int,
    read_str,
)

HUGE_LITERAL = "9" * 400


@pytest.mark.parametrize(
    ("raw", "expected", "problem"),
    [
        (None, None, None),
        (0, 0, None),
        (42, 42, None),
        ("42", 42, None),
        (" 7 ", 7, None),
        (3.0, 3, None),
        (MAX_SAFE_INT, MAX_SAFE_INT, None),
        (-3, None, "out_of_range"),
        ("-3", None, "out_of_range"),
        (MAX_SAFE_INT + 1, None, "out_of_range"),
        (10**400, None, "out_of_range"),
        (math.inf, None, "out_of_range"),
        (math.nan, None, "out_of_range"),
        (HUGE_LITERAL, None, "out_of_range"),
        ("9" * 5000, None, "out_of_range"),  # beyond Python's int() digit limit
        (1.5, None, "invalid"),
        (True, None, "invalid"),
        ("12abc", None, "invalid"),
        ("\u0661\u0662", None, "invalid"),  # Arabic-Indic digits: int() accepts them, we do not
        ("\u00b2", None, "invalid"),  # superscript two: isdigit() is true, int() raises
        ([], None, "invalid"),
    ],
)
def test_read_int_keeps_only_bounded_integers(
    raw: object, expected: int | None, problem: str | None
) -> None:
    issues = ValueIssues()
    assert read_int(raw, "restart_times", issues) == expected
    expected_counts = {("restart_times", problem): 1} if problem else {}
    assert dict(issues.counts) == expected_counts


@pytest.mark.parametrize(
    ("raw", "expected", "noted"),
    [
        (None, None, False),
        (True, True, False),
        ("false", False, False),
        (" TRUE ", True, False),
        ("yes", None, True),
        (1, None, True),
    ],
)
def test_read_bool(raw: object, expected: bool | None, noted: bool) -> None:
    issues = ValueIssues()
    assert read_bool(raw, "has_savepoint", issues) == expected
    assert bool(issues) == noted


def test_read_str_repairs_lone_surrogates_so_the_value_encodes() -> None:
    issues = ValueIssues()
    value = read_str(json.loads('"bad \\ud800 name"'), "name", issues)
    assert value == "bad \ufffd name"
    assert value.encode("utf-8")
    assert issues.counts == {("name", "repaired"): 1}


def test_read_str_keeps_a_valid_surrogate_pair() -> None:
    issues = ValueIssues()
    assert read_str(json.loads('"\\ud83d\\ude00"'), "name", issues) == "\U0001f600"
    assert not issues


def test_read_str_cuts_long_values_with_a_marker() -> None:
    issues = ValueIssues()
    value = read_str("n" * 60_000, "name", issues)
    assert value is not None and len(value) == MAX_LABEL_CHARS
    assert value.endswith(TRUNCATION_MARK)
    assert issues.counts == {("name", "truncated"): 1}
    assert read_str("n" * MAX_LABEL_CHARS, "name", issues) == "n" * MAX_LABEL_CHARS


def test_read_str_notes_a_wrong_type() -> None:
    issues = ValueIssues()
    assert read_str(17, "name", issues) is None
    assert issues.counts == {("name", "invalid"): 1}


def test_loads_json_replaces_invalid_utf8_and_keeps_the_rest() -> None:
    body = b'{"jobs": [{"name": "ok"}, {"name": "bad \xff byte"}]}'
    issues = ValueIssues()
    payload = loads_json(body, issues)
    assert payload == {"jobs": [{"name": "ok"}, {"name": "bad \ufffd byte"}]}
    assert issues.counts == {("body", "repaired"): 1}


def test_loads_json_reads_huge_integer_literals_as_infinity() -> None:
    payload = loads_json(b'{"restart_times": ' + HUGE_LITERAL.encode() + b', "n": 12}')
    assert payload == {"restart_times": math.inf, "n": 12}


def test_loads_json_tolerates_a_byte_order_mark() -> None:
    assert loads_json(b"\xef\xbb\xbf{}") == {}


@pytest.mark.parametrize("body", [b"<html>", b"", b"[" * 100_000])
def test_loads_json_raises_value_error_for_what_is_not_json(body: bytes) -> None:
    with pytest.raises(ValueError):
        loads_json(body)


NOW = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("5", 5.0),
        (" 12 ", 12.0),
        ("999999", MAX_RETRY_AFTER),
        ("9" * 5000, MAX_RETRY_AFTER),
        ("\u00b2", None),  # superscript two: str.isdigit() accepts it, float() raises
        ("\u0665", None),  # Arabic-Indic five
        ("-1", None),
        ("1.5", None),
        ("", None),
        ("Wed, 02 Dec 2026 10:00:30 GMT", 30.0),
        ("Wednesday, 02-Dec-26 10:00:30 GMT", 30.0),  # obsolete RFC 850 form
        ("Wed Dec  2 10:00:30 2026", 30.0),  # asctime form
        ("Tue, 01 Dec 2026 10:00:00 GMT", 0.0),  # in the past
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        ("Wed, 99 Foo 2026 10:00:30 GMT", None),
        ("Wed, 02 Dec 2026 99:99:99 GMT", None),
        ("Wed, 02 Dec 2026 10:00:30 G\u00e9T", None),
        ("x" * 10_000, None),
    ],
)
def test_parse_retry_after_follows_rfc_9110_and_never_raises(
    header: str | None, expected: float | None
) -> None:
    assert parse_retry_after(header, NOW) == expected


@given(st.text(max_size=80))
def test_parse_retry_after_never_raises_on_any_text(header: str) -> None:
    result = parse_retry_after(header, NOW)
    assert result is None or 0.0 <= result <= MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("abc-123", "abc-123"),
        ("  ", None),
        ("a b\tc", "a?b?c"),
        ("r\u00e9q", "r?q"),
        ("x" * 1000, "x" * 128),
    ],
)
def test_header_token_keeps_visible_ascii_only(raw: str | None, expected: str | None) -> None:
    assert header_token(raw) == expected


def test_clean_text_gives_one_printable_line() -> None:
    text = clean_text("line one\nline two\x00 \ud800" + "y" * 500, 40)
    assert "\n" not in text and "\x00" not in text
    assert text.encode("utf-8")
    assert len(text) == 40 and text.endswith(TRUNCATION_MARK)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("9469", 9469),
        (" 3 ", 3),
        ("\u00b2", None),
        ("\u0663", None),
        ("-1", None),
        ("1" * 10, None),
        ("", None),
        ("1e3", None),
    ],
)
def test_parse_natural_takes_ascii_digits_only(text: str, expected: int | None) -> None:
    assert parse_natural(text) == expected
