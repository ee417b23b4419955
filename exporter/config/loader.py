"""The strict, bounded YAML loader shared by the main config and the web config.

:func:`load_yaml` parses with PyYAML's ``SafeLoader`` into a node graph, then constructs plain
data, and reports into a :class:`~exporter.config.problems.Problems` collector instead of raising:

- syntax errors by position only (the source snippet PyYAML shows could contain a secret);
- duplicate mapping keys, with their key path and line (the document is still constructed,
  so that the rest of it can be checked too);
- documents that are too big once aliases are expanded ("billion laughs": each level of
  ``b: &b [*a, *a, ...]`` multiplies the size), counted while composing so that it stops early;
- recursive aliases (``x: &a [*a]``), too deep nesting and values no constructor can build
  (``!!int abc``, a timestamp 99 hours off UTC, a 5,000-digit number).

The result is plain ``dict``/``list``/scalar data, walkable recursively: its expanded size and
depth are bounded. Aliased nodes are constructed once and shared.

:func:`expand_env` then replaces ``${VAR}`` in string scalars (``$${`` for a literal ``${``),
bounded too: through aliases one reference may be copied many times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, ScalarEvent

from exporter.config.problems import Problems, index_key, join_key
from exporter.files import format_size

__all__ = [
    "INVALID",
    "MAX_CHARS",
    "MAX_DEPTH",
    "MAX_EXPANSION",
    "MAX_NODES",
    "MAX_NUMBER_CHARS",
    "Invalid",
    "duplicate_keys",
    "expand_env",
    "load_yaml",
    "yaml_message",
]

#: At most this many nodes (scalars, lists, mappings, counting every alias expansion).
MAX_NODES: Final = 100_000
#: At most this many characters in all scalars, counting every alias expansion.
MAX_CHARS: Final = 16 * 1024 * 1024
#: Lists and mappings nested at most this deep.
MAX_DEPTH: Final = 100
#: Numbers (``int``, ``float``) written with at most this many characters.
MAX_NUMBER_CHARS: Final = 100
#: ``${VAR}`` references may add at most this many characters to a file, in all.
MAX_EXPANSION: Final = 1024 * 1024

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_TAG_PREFIX: Final = "tag:yaml.org,2002:"


class Invalid:
    """Marks a value whose problem has already been reported."""

    def __repr__(self) -> str:
        return "<invalid>"


#: What :func:`load_yaml` returns when the document could not be loaded (problems reported).
INVALID: Final = Invalid()


class _Refused(Exception):
    """The document is refused; the message says why (whole-file problem)."""


def _at(mark: Any) -> str:
    """`` at line L, column C`` for a PyYAML mark (``None``: nothing)."""
    return "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"


class _Loader(yaml.SafeLoader):
    """A SafeLoader that bounds the expanded size and depth while composing."""

    def __init__(self, text: str | bytes, max_nodes: int, max_chars: int, max_depth: int) -> None:
        super().__init__(text)
        self._max_nodes, self._max_chars, self._max_depth = max_nodes, max_chars, max_depth
        self._nodes = 0  # expanded so far: every alias counts as the whole subtree it names
        self._chars = 0
        self._depth = 0
        self._open: set[str] = set()  # anchors whose node is being composed
        self._sizes: dict[str, tuple[int, int]] = {}  # anchor -> expanded (nodes, chars)

    def _count(self, nodes: int, chars: int) -> None:
        self._nodes += nodes
        self._chars += chars
        if self._nodes > self._max_nodes:
            raise _Refused(
                f"too large: more than {self._max_nodes:,} YAML nodes"
                " (counting every alias expansion)"
            )
        if self._chars > self._max_chars:
            raise _Refused(
                f"too large: more than {self._max_chars:,} characters of YAML values"
                " (counting every alias expansion)"
            )

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            name = str(event.anchor)
            if name in self._open:
                raise _Refused(f"recursive YAML alias{_at(event.start_mark)}")
            node = super().compose_node(parent, index)  # raises for an undefined alias
            self._count(*self._sizes[name])
            return node
        if self._depth >= self._max_depth:
            raise _Refused(f"YAML nested more than {self._max_depth} levels{_at(event.start_mark)}")
        anchor: str | None = getattr(event, "anchor", None)
        start = (self._nodes, self._chars)
        self._count(1, len(event.value) if isinstance(event, ScalarEvent) else 0)
        if anchor is not None:
            self._open.add(anchor)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)
        if anchor is not None:
            self._sizes[anchor] = (self._nodes - start[0], self._chars - start[1])
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Turn a constructor's crash on a value it cannot build into a YAML error."""
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError):
            tag = str(node.tag).removeprefix(_TAG_PREFIX)
            raise ConstructorError(
                None, None, f"not a valid {tag} value", node.start_mark
            ) from None


def _construct_number(loader: _Loader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConstructorError(None, None, "expected a scalar", node.start_mark)
    if len(node.value) > MAX_NUMBER_CHARS:
        raise ConstructorError(
            None, None, f"number longer than {MAX_NUMBER_CHARS} characters", node.start_mark
        )
    if node.tag.endswith(":int"):
        return loader.construct_yaml_int(node)
    return loader.construct_yaml_float(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_number)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_number)


def yaml_message(exc: yaml.YAMLError) -> str:
    """Describe a YAML error by position only: its snippet could show a secret."""
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        what = "; ".join(parts) or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            return f"invalid YAML{_at(mark)}: {what}"
        return f"invalid YAML: {what}"
    if isinstance(exc, yaml.reader.ReaderError):
        unit = "character" if exc.encoding == "unicode" else "byte"
        where = f"{unit} {exc.position}"
        return f"invalid YAML: unacceptable character #x{exc.character:04x} at {where}"
    return "invalid YAML"


def duplicate_keys(node: yaml.Node) -> list[tuple[str, int]]:
    """``(key path, line)`` of every repeated mapping key in the node graph (each node once).

    Merge keys (``<<``) are not keys; keys that are not scalars are skipped.
    """
    found: list[tuple[str, int]] = []
    seen: set[int] = set()

    def walk(node: yaml.Node, path: str) -> None:
        if id(node) in seen:  # an alias: already checked where its anchor is
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            names: set[str] = set()
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    name = str(key_node.value)
                    if name in names:
                        found.append((join_key(path, name), key_node.start_mark.line + 1))
                    names.add(name)
                    walk(value_node, join_key(path, name))
                else:
                    walk(value_node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, index_key(path, index))

    walk(node, "")
    return found


def load_yaml(
    text: str | bytes,
    problems: Problems,
    *,
    max_nodes: int = MAX_NODES,
    max_chars: int = MAX_CHARS,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Parse one YAML document into plain data, reporting every problem into ``problems``.

    Returns ``None`` for an empty document and :data:`INVALID` when the document cannot be
    used (a syntax error, too large, recursive); duplicate keys are reported but the data is
    still returned. ``bytes`` may be UTF-8 or UTF-16 with a byte order mark.
    """
    try:
        loader = _Loader(text, max_nodes, max_chars, max_depth)  # checks the characters
    except yaml.YAMLError as exc:
        problems.add("", yaml_message(exc))
        return INVALID
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        for key, line in duplicate_keys(node):
            problems.add(key, f"duplicate key (line {line})")
        return loader.construct_document(node)
    except _Refused as exc:
        problems.add("", str(exc))
        return INVALID
    except yaml.YAMLError as exc:
        problems.add("", yaml_message(exc))
        return INVALID
    finally:
        loader.dispose()


_VAR_RE: Final = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")


class _Expander:
    """Replaces ``${VAR}`` in every string scalar; the values may add ``limit`` chars in all."""

    def __init__(self, environ: Mapping[str, str], problems: Problems, limit: int) -> None:
        self._environ = environ
        self._problems = problems
        self._limit = limit
        self._room = limit
        self._too_much = False

    def data(self, data: Any, key: str) -> Any:
        if isinstance(data, str):
            return self.string(data, key)
        if isinstance(data, dict):
            return {k: self.data(v, join_key(key, str(k))) for k, v in data.items()}
        if isinstance(data, list):
            return [self.data(v, index_key(key, i)) for i, v in enumerate(data)]
        return data

    def string(self, text: str, key: str) -> str | Invalid:
        """``text`` expanded, or ``INVALID`` once a problem with it was reported."""
        ok = True

        def replace(match: re.Match[str]) -> str:
            nonlocal ok
            if match.group(0) == "$${":
                return "${"
            name = match.group(1)
            value = None if name is None else self._environ.get(name)
            if name is None:
                self._problems.add(
                    key, "invalid ${...} reference: use ${NAME}, or $${ for a literal ${"
                )
            elif value is None:
                self._problems.add(key, f"environment variable {name} is not set")
            elif len(value) > self._room:
                if not self._too_much:  # once: the rest of the file is as suspect
                    self._problems.add(
                        key,
                        f"${{VAR}} values would add more than {format_size(self._limit)}"
                        " of text to the file",
                    )
                    self._too_much = True
            else:
                self._room -= len(value)
                return value
            ok = False
            return ""

        result = _VAR_RE.sub(replace, text)
        return result if ok else INVALID


def expand_env(
    data: Any, environ: Mapping[str, str], problems: Problems, *, limit: int = MAX_EXPANSION
) -> Any:
    """``data`` with ``${VAR}`` replaced in every string scalar (not in keys, not again in values).

    An unset variable or a bad reference is reported and its string becomes :data:`INVALID`;
    the values may add at most ``limit`` characters in all (counting every alias copy).
    """
    return _Expander(environ, problems, limit).data(data, "")
