"""Helpers the capacity resources (queues, elastic resource pools) share: readers and rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from exporter.dli.resource import Resource, result_of
from exporter.metricspec import TARGET_LABELS, MetricSpec, Reading
from exporter.snapshot import Snapshot

__all__ = ["ItemRows", "flag", "items_of", "value"]

_T = TypeVar("_T")


def items_of(snapshot: Snapshot, resource: Resource[tuple[_T, ...]]) -> tuple[_T, ...]:
    """``resource``'s items in ``snapshot`` (its latest good data), or none."""
    result = result_of(snapshot, resource)
    return () if result is None or result.data is None else result.data


@dataclass(frozen=True, slots=True)
class ItemRows(Generic[_T]):
    """Families with one series per item of ``resource``, labelled ``target`` and ``key``."""

    resource: Resource[tuple[_T, ...]]
    key: str
    label_of: Callable[[_T], str]

    def row(
        self,
        name: str,
        help_text: str,
        read: Callable[[_T], Iterable[Reading]],
        *,
        extra: tuple[str, ...] = (),
    ) -> MetricSpec:
        """A gauge whose samples ``read`` gives per item (values of ``extra``, value)."""
        resource, label_of = self.resource, self.label_of

        def read_snapshot(snapshot: Snapshot) -> Iterator[Reading]:
            for item in items_of(snapshot, resource):
                base = (snapshot.target, label_of(item))
                for labels, number in read(item):
                    yield base + labels, number

        labels = (*TARGET_LABELS, self.key, *extra)
        return MetricSpec(name, "gauge", help_text, labels, read_snapshot)


def value(number: float | None) -> Iterable[Reading]:
    """One sample without extra labels, none when unknown."""
    return () if number is None else (((), float(number)),)


def flag(state: bool | None) -> Iterable[Reading]:
    """1 or 0 for a known boolean, no sample when unknown."""
    return value(None if state is None else float(state))
