"""`MetricSpec`: one metric family, what it means and how a snapshot becomes its samples.

Resource modules describe their families with these (`job_row` for per-job series, `target_row`
for one series per target); `exporter.catalogue` puts them in exposition order. Nothing here
does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

from exporter.dli.jobmodel import JobState
from exporter.snapshot import Snapshot

__all__ = [
    "JOB_LABELS",
    "SECONDS",
    "TARGET_LABELS",
    "JobReader",
    "MetricSpec",
    "Reading",
    "job_row",
    "scalar",
    "state_set",
    "target_row",
]

#: Extra label values and the sample value; one item per sample.
Reading = tuple[tuple[str, ...], float]
#: Turns one job into its samples (extra label values, value).
JobReader = Callable[[JobState], Iterable[Reading]]
#: Labels every job series carries.
JOB_LABELS: Final = ("target", "job_id", "job_name")
#: Labels every per-target series carries.
TARGET_LABELS: Final = ("target",)
SECONDS: Final = "seconds"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One family: what a metric is called, means, and where its values come from.

    ``name`` is what appears in the exposition (a counter's ends in ``_total``). ``read`` turns a
    snapshot into samples: the values of ``labels`` in order, and the value.
    """

    name: str
    kind: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...]
    read: Callable[[Snapshot], Iterable[Reading]]
    unit: str = ""

    def family(self) -> GaugeMetricFamily | CounterMetricFamily:
        """A new, empty metric family for this row."""
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=self.labels, unit=self.unit)
        return GaugeMetricFamily(self.name, self.help, labels=self.labels, unit=self.unit)

    def build(self, snapshots: Iterable[Snapshot]) -> GaugeMetricFamily | CounterMetricFamily:
        """The family filled with this row's samples from ``snapshots``, in their order."""
        family = self.family()
        for snapshot in snapshots:
            for label_values, value in self.read(snapshot):
                family.add_metric(label_values, value)
        return family


def scalar(value_of: Callable[[JobState], float | None]) -> JobReader:
    """A reader for a plain value: one sample without extra labels, none when unknown."""

    def read(state: JobState) -> Iterable[Reading]:
        value = value_of(state)
        return () if value is None else (((), float(value)),)

    return read


def state_set(current: str | None, known: tuple[str, ...]) -> Iterable[Reading]:
    """One sample per known state (1 for ``current``), plus ``current`` itself if unknown.

    With ``known`` empty (the "current state only" cardinality option), only ``current``.
    """
    if current is None:
        return ()
    if not known:
        return (((current,), 1.0),)
    readings = [((state,), 1.0 if state == current else 0.0) for state in known]
    if current not in known:
        readings.append(((current,), 1.0))
    return readings


def _per_job(read: JobReader) -> Callable[[Snapshot], Iterable[Reading]]:
    """Lift a job reader to a snapshot reader that prefixes the job labels."""

    def read_snapshot(snapshot: Snapshot) -> Iterator[Reading]:
        for state in snapshot.jobs:
            base = (snapshot.target, str(state.job.job_id), state.job.name or "")
            for extra, value in read(state):
                yield base + extra, value

    return read_snapshot


def _per_target(
    value_of: Callable[[Snapshot], float | None],
) -> Callable[[Snapshot], Iterable[Reading]]:
    """A snapshot reader for a per-target value; nothing before the target's first poll."""

    def read_snapshot(snapshot: Snapshot) -> Iterable[Reading]:
        value = value_of(snapshot) if snapshot.polled else None
        return () if value is None else (((snapshot.target,), float(value)),)

    return read_snapshot


def job_row(
    name: str,
    help_text: str,
    read: JobReader,
    *,
    extra: tuple[str, ...] = (),
    kind: Literal["gauge", "counter"] = "gauge",
    unit: str = "",
) -> MetricSpec:
    """A family with one series per job (and per ``extra`` label values ``read`` gives)."""
    return MetricSpec(name, kind, help_text, JOB_LABELS + extra, _per_job(read), unit)


def target_row(
    name: str, help_text: str, value_of: Callable[[Snapshot], float | None], *, unit: str = ""
) -> MetricSpec:
    """A gauge with one series per polled target (none when ``value_of`` gives ``None``)."""
    return MetricSpec(name, "gauge", help_text, TARGET_LABELS, _per_target(value_of), unit)
