"""Config problems: one ``<file>: <key path>: <problem>`` line each, collected per load.

Shared by the YAML loader, the main config and the web config. The helpers name a bad value's
type (``integer``, ``mapping``) and show a non-secret value cut short; secrets are never shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "Problems",
    "WebConfigError",
    "index_key",
    "join_key",
    "show",
    "type_name",
]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config file; ``key`` is empty for whole-file problems."""

    source: str
    key: str
    message: str

    def __str__(self) -> str:
        if self.key:
            return f"{self.source}: {self.key}: {self.message}"
        return f"{self.source}: {self.message}"


class Problems:
    """Collects the problems of one parse (never shared between parses)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[ConfigProblem] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(ConfigProblem(self.source, key, message))


class ConfigError(Exception):
    """Every problem found in a config file; ``str()`` gives one line per problem."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class WebConfigError(Exception):
    """Every problem found in a web config file; ``str()`` gives one line per problem.

    Not a :class:`ConfigError`: the two files are loaded, and their errors caught, apart.
    """

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def join_key(path: str, key: str) -> str:
    """The key path of ``key`` inside the mapping at ``path`` (``a.b``)."""
    return f"{path}.{key}" if path else key


def index_key(path: str, index: int) -> str:
    """The key path of item ``index`` of the list at ``path`` (``a[0]``)."""
    return f"{path}[{index}]"


_TYPE_NAMES: Final = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "list",
    dict: "mapping",
}
_SHOWN_CHARS: Final = 40


def type_name(value: object) -> str:
    """How a problem names the YAML type of ``value``: ``null``, ``integer``, ``mapping``..."""
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def show(value: object) -> str:
    """A bad (non-secret) value for a message, cut short: it may be megabytes long."""
    if isinstance(value, str):
        cut = value[:_SHOWN_CHARS]
        return repr(cut) + ("..." if len(value) > _SHOWN_CHARS else "")
    if isinstance(value, bool | int | float):
        text = str(value)
        return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
    return type_name(value)
