"""The metric catalogue and a collector that builds it fresh from the latest snapshots.

Every metric the exporter derives from DLI is one row of :data:`CATALOGUE`. Families are built
anew on each :meth:`SnapshotCollector.collect` from immutable :class:`~exporter.model.Snapshot`
objects, so a job that disappears from the listing disappears from ``/metrics`` with no expiry
code. Nothing here does I/O.

Every family is always emitted with its HELP and TYPE lines, even without samples, so the
exposition's shape does not depend on the data. A field the API did not send gives no sample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from exporter.config import MetricOptions
from exporter.model import FLINK_STATES, JOB_STATUSES, JobState, Snapshot

#: Extra label values and the sample value; one item per sample.
Reading = tuple[tuple[str, ...], float]
#: Labels every job series carries.
JOB_LABELS: Final = ("target", "job_id", "job_name")
#: Labels every per-target series carries.
TARGET_LABELS: Final = ("target",)
_SECONDS: Final = "seconds"
# prometheus_client's OpenMetrics writer has no annotations; this gives it its real type.
_generate_openmetrics: Final[Callable[[Collector], bytes]] = openmetrics_exposition.generate_latest


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One row of the catalogue: what a metric is called, means, and where its values come from.

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


# --- readers: JobState -> samples ---------------------------------------------------------------

JobReader = Callable[[JobState], Iterable[Reading]]


def _scalar(value_of: Callable[[JobState], float | None]) -> JobReader:
    """A reader for a plain value: one sample without extra labels, none when unknown."""

    def read(state: JobState) -> Iterable[Reading]:
        value = value_of(state)
        return () if value is None else (((), float(value)),)

    return read


def _state_set(current: str | None, known: tuple[str, ...]) -> Iterable[Reading]:
    """One sample per known state (1 for ``current``), plus ``current`` itself if unknown."""
    if current is None:
        return ()
    if not known:  # the "current state only" cardinality option
        return (((current,), 1.0),)
    readings = [((state,), 1.0 if state == current else 0.0) for state in known]
    if current not in known:
        readings.append(((current,), 1.0))
    return readings


def _info(state: JobState) -> Iterable[Reading]:
    job = state.job
    labels = (job.job_type, job.queue_name, job.user_name, job.run_mode, job.config.flink_version)
    return ((tuple(value or "" for value in labels), 1.0),)


def _status(state: JobState) -> Iterable[Reading]:
    return _state_set(state.job.status, JOB_STATUSES)


def _flink_state(state: JobState) -> Iterable[Reading]:
    return _state_set(state.graph.state if state.graph else None, FLINK_STATES)


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


def _duration(state: JobState) -> float | None:
    if state.graph is not None and state.graph.duration_ms is not None:
        return _seconds(state.graph.duration_ms)
    return _seconds(state.job.duration_ms)


def _start_time(state: JobState) -> float | None:
    # The API sends 0 for a job that never started; that is "unknown", not 1970.
    return _seconds(state.job.start_time_ms or None)


def _stoppable(state: JobState) -> float | None:
    return _flag(state.graph.is_stoppable) if state.graph else None


def _actual_compute_units(state: JobState) -> float | None:
    config = state.job.config
    if config.real_cu_number == 0:  # documented: 0 means "same as cu_number"
        return config.cu_number
    return config.real_cu_number


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


def _job(
    name: str,
    help_text: str,
    read: JobReader,
    *,
    extra: tuple[str, ...] = (),
    kind: Literal["gauge", "counter"] = "gauge",
    unit: str = "",
) -> MetricSpec:
    return MetricSpec(name, kind, help_text, JOB_LABELS + extra, _per_job(read), unit)


def _target(
    name: str, help_text: str, value_of: Callable[[Snapshot], float | None], *, unit: str = ""
) -> MetricSpec:
    return MetricSpec(name, "gauge", help_text, TARGET_LABELS, _per_target(value_of), unit)


#: Every metric derived from DLI, in exposition order.
CATALOGUE: Final[tuple[MetricSpec, ...]] = (
    _job(
        "dli_job_info",
        "Always 1 for each listed DLI Flink job; labels give its type, queue, owner, run mode "
        "and Flink version (empty when unknown).",
        _info,
        extra=("job_type", "queue_name", "user_name", "run_mode", "flink_version"),
    ),
    _job(
        "dli_job_status",
        "DLI job status as a state set: 1 for the current status, 0 for the other documented "
        "statuses.",
        _status,
        extra=("status",),
    ),
    _job(
        "dli_job_flink_state",
        "Flink job state from the execution graph of a running job, as a state set: 1 for the "
        "current state, 0 for the others.",
        _flink_state,
        extra=("state",),
    ),
    _job(
        "dli_job_duration_seconds",
        "How long the job has run, in seconds (execution graph of a running job, else job list).",
        _scalar(_duration),
        unit=_SECONDS,
    ),
    _job(
        "dli_job_restarts_total",
        "Number of times DLI has restarted the job.",
        _scalar(lambda s: s.job.restart_times),
        kind="counter",
    ),
    _job(
        "dli_job_create_time_seconds",
        "When the job was created, as a unix timestamp in seconds.",
        _scalar(lambda s: _seconds(s.job.create_time_ms)),
        unit=_SECONDS,
    ),
    _job(
        "dli_job_start_time_seconds",
        "When the job last started, as a unix timestamp in seconds; absent if never started.",
        _scalar(_start_time),
        unit=_SECONDS,
    ),
    _job(
        "dli_job_has_savepoint",
        "1 when the job has a savepoint, 0 when it has none.",
        _scalar(lambda s: _flag(s.job.has_savepoint)),
    ),
    _job(
        "dli_job_stoppable",
        "1 when Flink reports the running job as stoppable (isStoppable), 0 when not.",
        _scalar(_stoppable),
    ),
    _job(
        "dli_job_compute_units",
        "Compute units (CUs) configured for the job (cu_number).",
        _scalar(lambda s: s.job.config.cu_number),
    ),
    _job(
        "dli_job_manager_compute_units",
        "Compute units (CUs) configured for the job manager (manager_cu_number).",
        _scalar(lambda s: s.job.config.manager_cu_number),
    ),
    _job(
        "dli_job_actual_compute_units",
        "Compute units (CUs) the job actually uses (real_cu_number, or cu_number when that is 0).",
        _scalar(_actual_compute_units),
    ),
    _job(
        "dli_job_parallelism",
        "Configured parallelism of the job (parallel_number).",
        _scalar(lambda s: s.job.config.parallel_number),
    ),
    _job(
        "dli_job_taskmanager_compute_units",
        "Compute units (CUs) per task manager (tm_cus).",
        _scalar(lambda s: s.job.config.tm_cus),
    ),
    _job(
        "dli_job_taskmanager_slots",
        "Slots per task manager (tm_slot_num).",
        _scalar(lambda s: s.job.config.tm_slot_num),
    ),
    _job(
        "dli_job_executors",
        "Number of executors configured for the job (executor_number).",
        _scalar(lambda s: s.job.config.executor_number),
    ),
    _job(
        "dli_job_executor_compute_units",
        "Compute units (CUs) per executor (executor_cu_number).",
        _scalar(lambda s: s.job.config.executor_cu_number),
    ),
    _target(
        "dli_up",
        "1 when the latest poll of the target listed its jobs successfully, 0 when it failed.",
        lambda s: float(s.up),
    ),
    _target(
        "dli_last_poll_success_timestamp_seconds",
        "When the target's jobs were last listed successfully, as a unix timestamp in seconds.",
        lambda s: s.last_success_time,
        unit=_SECONDS,
    ),
    _target(
        "dli_poll_duration_seconds",
        "How long the target's latest poll took, in seconds.",
        lambda s: s.poll_duration_seconds,
        unit=_SECONDS,
    ),
    _target(
        "dli_target_jobs",
        "Number of jobs published for the target (from its latest successful listing).",
        lambda s: len(s.jobs),
    ),
)


def build_catalogue(options: MetricOptions) -> tuple[MetricSpec, ...]:
    """:data:`CATALOGUE` adjusted by the cardinality options (see `MetricOptions`)."""
    current_only = options.state_sets == "current"
    replacements: dict[str, MetricSpec] = {}
    for spec in CATALOGUE:
        if spec.name == "dli_job_info" and not options.job_info_labels:
            replacements[spec.name] = dataclasses.replace(
                spec, labels=JOB_LABELS, read=_per_job(lambda _state: (((), 1.0),))
            )
        elif spec.name == "dli_job_status" and current_only:
            replacements[spec.name] = dataclasses.replace(
                spec, read=_per_job(lambda state: _state_set(state.job.status, ()))
            )
        elif spec.name == "dli_job_flink_state" and current_only:
            replacements[spec.name] = dataclasses.replace(
                spec,
                read=_per_job(
                    lambda state: _state_set(state.graph.state if state.graph else None, ())
                ),
            )
    return tuple(replacements.get(spec.name, spec) for spec in CATALOGUE)


def _unique_jobs(jobs: tuple[JobState, ...]) -> tuple[JobState, ...]:
    """``jobs`` without repeated job ids (the first wins): repeated series are invalid exposition.

    A job can show up on two pages when the list changes while it is being paged through.
    """
    seen: set[int] = set()
    unique: list[JobState] = []
    for state in jobs:
        if state.job.job_id not in seen:
            seen.add(state.job.job_id)
            unique.append(state)
    return jobs if len(unique) == len(jobs) else tuple(unique)


def deduplicated(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """``snapshots`` with each one's repeated job ids removed (the first one wins)."""
    result = []
    for snapshot in snapshots:
        jobs = _unique_jobs(snapshot.jobs)
        result.append(
            snapshot if jobs is snapshot.jobs else dataclasses.replace(snapshot, jobs=jobs)
        )
    return result


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
        snapshots = deduplicated(self._snapshots())
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
