"""Config problems: one ``<file>: <key path>: <problem>`` line each, collected per load.

Shared by the YAML loader (:mod:`exporter.yamlfile`), the main config and the web config; kept
apart so that none of them has to import another.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigProblem", "Problems", "index_key", "join_key"]


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


def join_key(path: str, key: str) -> str:
    """The key path of ``key`` inside the mapping at ``path`` (``a.b``)."""
    return f"{path}.{key}" if path else key


def index_key(path: str, index: int) -> str:
    """The key path of item ``index`` of the list at ``path`` (``a[0]``)."""
    return f"{path}[{index}]"
