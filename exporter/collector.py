"""A prometheus_client collector of the catalogue, and the reference rendering built on it.

`SnapshotCollector` builds every family of the catalogue fresh from the latest snapshots on each
collect. `render` is the reference exposition that `exporter.writer.ExpositionWriter` is held
to (byte for byte, by tests); ``/metrics`` is served by the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from exporter.catalogue import CATALOGUE
from exporter.metricspec import MetricSpec
from exporter.snapshot import Snapshot

__all__ = ["SnapshotCollector", "render"]

# prometheus_client's OpenMetrics writer has no annotations; this gives it its real type.
_generate_openmetrics: Callable[[Collector], bytes] = openmetrics_exposition.generate_latest


class SnapshotCollector(Collector):
    """A prometheus_client collector publishing :data:`CATALOGUE` from the latest snapshots.

    ``snapshots`` is called on every collect and must return quickly without I/O (it should
    just read the poller's current snapshots).
    """

    def __init__(
        self,
        snapshots: Callable[[], Iterable[Snapshot]],
        catalogue: tuple[MetricSpec, ...] = CATALOGUE,
    ) -> None:
        self._snapshots = snapshots
        self._catalogue = catalogue

    def collect(self) -> Iterator[Metric]:
        """Fresh families for every catalogue row, built from one call to ``snapshots``."""
        snapshots = tuple(self._snapshots())
        for spec in self._catalogue:
            yield spec.build(snapshots)

    def describe(self) -> Iterator[Metric]:
        """Empty families, so a registry can detect name clashes without collecting."""
        for spec in self._catalogue:
            yield spec.family()


def render(
    snapshots: Iterable[Snapshot],
    *,
    openmetrics: bool = False,
    catalogue: tuple[MetricSpec, ...] = CATALOGUE,
) -> bytes:
    """The exposition of the catalogue for ``snapshots``, through prometheus_client.

    Text format 0.0.4, or OpenMetrics 1.0 (terminated by ``# EOF``) when ``openmetrics``. This
    is the reference rendering; `exporter.writer.ExpositionWriter` produces the same bytes
    faster and is what ``/metrics`` serves.
    """
    frozen = tuple(snapshots)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: frozen, catalogue))
    if openmetrics:
        return _generate_openmetrics(registry)
    return generate_latest(registry)
