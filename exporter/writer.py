"""`ExpositionWriter`: the catalogue's families written straight to bytes, fast.

prometheus_client builds a `Metric` object per family and a `Sample` per series, then formats
them; for 10,000 jobs (~300,000 series) that takes seconds. The writer formats sample lines
directly, byte for byte as prometheus_client would (a test holds it to that), and keeps each
snapshot's lines compressed only, one `~exporter.gzipjoin.Segment` per family: a poll of one
target re-formats and re-compresses only that target, and an exposition is a join of segments
(`exporter.gzipjoin.gzip_join`), never a compression of the whole text. Sample lines are the
same in the text format and OpenMetrics, so the two formats share them and differ only in the
family headers. Blocking CPU work: call it from a worker thread.
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.catalogue import CATALOGUE
from exporter.gzipjoin import GZIP_LEVEL, Segment, SegmentCompressor, gzip_join
from exporter.metricspec import MetricSpec
from exporter.snapshot import Snapshot

log = logging.getLogger(__name__)

_EOF = b"# EOF\n"
# prometheus_client's value formatting (it has no annotations; this gives it its real type).
_format_value: Final[Callable[[float], str]] = floatToGoString


class ExpositionWriter:
    """Writes :data:`~exporter.catalogue.CATALOGUE` (or a variant) for a set of snapshots."""

    def __init__(
        self,
        catalogue: tuple[MetricSpec, ...] = CATALOGUE,
        *,
        on_error: Callable[[str], None] | None = None,
        level: int = GZIP_LEVEL,
    ) -> None:
        self._catalogue = catalogue
        self._on_error = on_error
        self._level = level
        headers = SegmentCompressor(level)
        self._headers = {
            openmetrics: tuple(
                headers.segment(_header(spec, openmetrics=openmetrics)) for spec in catalogue
            )
            for openmetrics in (False, True)
        }
        # target -> (the snapshot the segments were written from, one per catalogue row)
        self._segments: dict[str, tuple[Snapshot, tuple[Segment, ...]]] = {}
        self._lock = threading.Lock()

    def render(self, snapshots: Sequence[Snapshot], *, openmetrics: bool = False) -> bytes:
        """The job and target families for ``snapshots``, uncompressed; OpenMetrics without
        ``# EOF``. (The exporter serves `segments` joined; this is their text.)"""
        return gzip.decompress(gzip_join(self.segments(snapshots, openmetrics=openmetrics)))

    def segments(
        self, snapshots: Sequence[Snapshot], *, openmetrics: bool = False
    ) -> list[Segment]:
        """The exposition's compressed pieces, in order, for `~exporter.gzipjoin.gzip_join`.

        Families come in catalogue order, each target's samples in snapshot order, exactly as
        `exporter.collector.render` orders them. A target whose snapshot is unchanged since the
        last call is not written again; targets not in ``snapshots`` are forgotten.
        """
        with self._lock:
            written = [self._segments_of(snapshot) for snapshot in snapshots]
            live = {snapshot.target for snapshot in snapshots}
            for target in self._segments.keys() - live:
                del self._segments[target]
        segments: list[Segment] = []
        for row, header in enumerate(self._headers[openmetrics]):
            segments.append(header)
            segments.extend(target_segments[row] for target_segments in written)
        return segments

    def _segments_of(self, snapshot: Snapshot) -> tuple[Segment, ...]:
        cached = self._segments.get(snapshot.target)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        escape = _Escaper()
        compressor = SegmentCompressor(self._level)
        segments = tuple(
            compressor.segment(self._family_lines(spec, snapshot, escape))
            for spec in self._catalogue
        )
        self._segments[snapshot.target] = (snapshot, segments)
        return segments

    def _family_lines(self, spec: MetricSpec, snapshot: Snapshot, escape: _Escaper) -> bytes:
        """One family's lines for one target; a failure leaves out only those lines."""
        try:
            return _sample_lines(spec, snapshot, escape)
        except Exception:  # a bug or an unforeseen value: confine it to this target's family
            log.exception(
                "cannot write a family for a target; its lines are left out",
                extra={"fields": {"target": snapshot.target, "family": spec.name}},
            )
            if self._on_error is not None:
                self._on_error(snapshot.target)
            return b""


class _Escaper(dict[str, str]):
    """Label values escaped for the exposition formats, memoised (values repeat a lot)."""

    def __missing__(self, value: str) -> str:
        escaped = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        self[value] = escaped
        return escaped


def _sample_lines(spec: MetricSpec, snapshot: Snapshot, escape: _Escaper) -> bytes:
    """One snapshot's samples of one family, labels sorted by name as prometheus_client does."""
    order = sorted(range(len(spec.labels)), key=spec.labels.__getitem__)
    names = [f'{spec.labels[i]}="' for i in order]
    prefix = spec.name + "{"
    lines = [
        prefix
        + '",'.join(name + escape[values[i]] for name, i in zip(names, order, strict=True))
        + '"} '
        + _format_value(value)
        for values, value in spec.read(snapshot)
    ]
    if not lines:
        return b""
    lines.append("")
    return "\n".join(lines).encode()


class _EmptyFamily(Collector):
    def __init__(self, spec: MetricSpec) -> None:
        self._spec = spec

    def collect(self):  # type: ignore[no-untyped-def]  # prometheus_client's own signature
        yield self._spec.family()


def _header(spec: MetricSpec, *, openmetrics: bool) -> bytes:
    """The family's HELP/TYPE(/UNIT) lines, taken from prometheus_client itself."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_EmptyFamily(spec))
    if openmetrics:
        rendered: bytes = openmetrics_exposition.generate_latest(registry)  # type: ignore[no-untyped-call]
        return rendered.removesuffix(_EOF)
    return generate_latest(registry)
