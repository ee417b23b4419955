"""The Cloud Eye resource: runtime metrics (throughput, latency, backpressure, CPU, memory) of
running Flink jobs, joined to the job series' labels.

Which jobs are asked for is decided by the same poll's job list: every job DLI reports as
running, so a new job is covered in its first poll and a stopped or deleted one vanishes at
once. The queries (`METRICS` for each running job) go in batches of at most 500 to Cloud Eye's
v1 ``batch-query-metric-data``: ``ceil(12 x running jobs / 500)`` calls a poll. The v2 API
answers one metric for every resource of a dimension per call, paged by 1,000: 12 calls at
least, so v1 is cheaper below about 500 running jobs (the estates this exporter is mostly for)
and within a factor of two above; v2 is also offered only in some regions. ``period`` is "1"
(raw datapoints), so the aggregation ``filter`` does not change a value: every query asks for
``average``, which keeps all metrics in one batch stream instead of two.

Each series publishes its newest datapoint, converted to base units by the ``unit`` Cloud Eye
reports (`UNITS`); a datapoint older than ``sources.cloud_eye.max_age`` is not published.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from exporter.config import MetricOptions, TargetConfig
from exporter.dli.api import (
    BATCH_QUERY_METRIC_DATA,
    CES_MAX_METRICS_PER_CALL,
    CES_NAMESPACE,
    batch_query_metric_data_path,
)
from exporter.dli.jobmodel import FlinkJob, JobState
from exporter.dli.resource import Resource, SourceContext, result_of
from exporter.dli.transport import ResponseParseError
from exporter.metricspec import JOB_LABELS, SECONDS, TARGET_LABELS, MetricSpec, Reading
from exporter.snapshot import Snapshot
from exporter.values import MAX_ID, ValueIssues, read_float, read_int, read_str

__all__ = [
    "CLOUD_EYE",
    "METRICS",
    "METRIC_INDEX",
    "UNITS",
    "CesMetric",
    "CloudEyeData",
    "parse_metric_data",
]

#: How a metric's value is converted: by the family of units it is measured in.
Dimension = Literal["count", "bytes", "ratio", "seconds", "level"]

#: Factor to the base unit, per reported unit (lower case, without a trailing ``/s``), for
#: each dimension; the ``""`` entry is what is assumed when Cloud Eye reports no unit (Huawei's
#: metric table gives usage in percent and latency in milliseconds). A unit not listed gives no
#: sample and is counted as an invalid ``unit`` in the values-rejected metric.
UNITS: Final[Mapping[Dimension, Mapping[str, float]]] = MappingProxyType(
    {
        "count": {"": 1.0, "count": 1.0, "counts": 1.0, "record": 1.0, "records": 1.0},
        "bytes": {
            "": 1.0,
            "b": 1.0,
            "byte": 1.0,
            "bytes": 1.0,
            "bit": 0.125,
            "kb": 1024.0,
            "mb": 1024.0**2,
            "gb": 1024.0**3,
        },
        "ratio": {"": 0.01, "%": 0.01, "percent": 0.01},
        "seconds": {"": 0.001, "ms": 0.001, "s": 1.0, "us": 1e-6},
        "level": {"": 1.0, "count": 1.0, "level": 1.0},
    }
)


@dataclass(frozen=True, slots=True)
class CesMetric:
    """One Cloud Eye metric of ``SYS.DLI`` and the family it becomes."""

    ces_name: str
    name: str
    kind: Literal["gauge", "counter"]
    dimension: Dimension
    help: str
    unit: str = ""


METRICS: Final = (
    CesMetric(
        "flink_read_records_per_second",
        "dli_job_read_records_per_second",
        "gauge",
        "count",
        "Records the job reads per second (Cloud Eye flink_read_records_per_second).",
    ),
    CesMetric(
        "flink_write_records_per_second",
        "dli_job_write_records_per_second",
        "gauge",
        "count",
        "Records the job writes per second (Cloud Eye flink_write_records_per_second).",
    ),
    CesMetric(
        "flink_read_records_total",
        "dli_job_read_records_total",
        "counter",
        "count",
        "Records the job has read (Cloud Eye flink_read_records_total).",
    ),
    CesMetric(
        "flink_write_records_total",
        "dli_job_write_records_total",
        "counter",
        "count",
        "Records the job has written (Cloud Eye flink_write_records_total).",
    ),
    CesMetric(
        "flink_read_bytes_per_second",
        "dli_job_read_bytes_per_second",
        "gauge",
        "bytes",
        "Bytes the job reads per second (Cloud Eye flink_read_bytes_per_second).",
    ),
    CesMetric(
        "flink_write_bytes_per_second",
        "dli_job_write_bytes_per_second",
        "gauge",
        "bytes",
        "Bytes the job writes per second (Cloud Eye flink_write_bytes_per_second).",
    ),
    CesMetric(
        "flink_read_bytes_total",
        "dli_job_read_bytes_total",
        "counter",
        "bytes",
        "Bytes the job has read (Cloud Eye flink_read_bytes_total).",
    ),
    CesMetric(
        "flink_write_bytes_total",
        "dli_job_write_bytes_total",
        "counter",
        "bytes",
        "Bytes the job has written (Cloud Eye flink_write_bytes_total).",
    ),
    CesMetric(
        "flink_cpu_usage",
        "dli_job_cpu_usage_ratio",
        "gauge",
        "ratio",
        "CPU usage of the job as a ratio (Cloud Eye flink_cpu_usage, percent / 100).",
    ),
    CesMetric(
        "flink_mem_usage",
        "dli_job_memory_usage_ratio",
        "gauge",
        "ratio",
        "Memory usage of the job as a ratio (Cloud Eye flink_mem_usage, percent / 100).",
    ),
    CesMetric(
        "flink_max_op_latency",
        "dli_job_max_operator_latency_seconds",
        "gauge",
        "seconds",
        "Largest operator latency of the job, in seconds (Cloud Eye flink_max_op_latency).",
        SECONDS,
    ),
    CesMetric(
        "flink_max_op_backpressure_level",
        "dli_job_max_operator_backpressure_level",
        "gauge",
        "level",
        "Largest operator backpressure level of the job as Cloud Eye reports it "
        "(flink_max_op_backpressure_level: 0 OK, 50 low, 100 high).",
    ),
)
#: Where each Cloud Eye metric (by its name there) is in a job's row of `CloudEyeData.points`.
METRIC_INDEX: Final = MappingProxyType({m.ces_name: i for i, m in enumerate(METRICS)})
_DIMENSION: Final = "flink_job_id"
#: A batch answer holds at most 3,000 datapoints (~100 bytes each): far below this.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
_NO_POINT: Final = (math.nan, math.nan)


@dataclass(frozen=True, slots=True)
class CloudEyeData:
    """What one poll read: per running job, per `METRICS` entry, (value, unix time) or NaNs."""

    points: Mapping[int, tuple[tuple[float, float], ...]]
    #: Unix time of the read; the newest datapoint's time (``None`` when there was none).
    read_at: float
    newest: float | None
    max_age: float

    def published_since(self, snapshot: Snapshot) -> float:
        """The oldest datapoint time still published with ``snapshot``: ``max_age`` before the
        later of this read and the snapshot's listing (kept data ages like the job list)."""
        return max(self.read_at, snapshot.last_success_time or 0.0) - self.max_age

    def recent(self, job_id: int, index: int, since: float) -> float | None:
        """Job ``job_id``'s value of `METRICS` entry ``index`` if its point is from ``since``
        on (see `published_since`); ``None`` without one."""
        row = self.points.get(job_id)
        if row is None:
            return None
        value, stamp = row[index]
        return value if stamp >= since else None  # NaN (no point) compares False


@dataclass(frozen=True, slots=True)
class Series:
    """One answered query: the job, the metric's index in `METRICS`, its newest point."""

    job_id: int
    index: int
    value: float
    timestamp: float


def parse_metric_data(payload: object, issues: ValueIssues) -> tuple[Series, ...]:
    """A batch answer's newest datapoint per (job, metric), converted; a wrong shape raises."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("metrics"), list):
        raise ResponseParseError("metrics is missing")
    found = []
    for raw in payload["metrics"]:
        series = _series(raw, issues) if isinstance(raw, Mapping) else None
        if series is not None:
            found.append(series)
    return tuple(found)


def _series(raw: Mapping[str, object], issues: ValueIssues) -> Series | None:
    index = METRIC_INDEX.get(read_str(raw.get("metric_name"), "metric_name", issues) or "")
    job_id = _job_id(raw.get("dimensions"), issues)
    points = raw.get("datapoints")
    if index is None or job_id is None or not isinstance(points, list):
        return None
    unit = (read_str(raw.get("unit"), "unit", issues) or "").strip().lower().removesuffix("/s")
    factor = UNITS[METRICS[index].dimension].get(unit)
    if factor is None:
        issues.note("unit", "invalid")
        return None
    newest: tuple[float, float] | None = None
    for point in points:
        if not isinstance(point, Mapping):
            continue
        stamp = read_int(point.get("timestamp"), "timestamp", issues)
        value = read_float(point.get("average"), "average", issues)
        if stamp is not None and value is not None and (newest is None or stamp > newest[1]):
            newest = (value, float(stamp))
    if newest is None:
        return None
    return Series(job_id, index, newest[0] * factor, newest[1] / 1000)


def _job_id(dimensions: object, issues: ValueIssues) -> int | None:
    if not isinstance(dimensions, list):
        return None
    for dimension in dimensions:
        if isinstance(dimension, Mapping) and dimension.get("name") == _DIMENSION:
            return read_int(dimension.get("value"), "dimensions.value", issues, high=MAX_ID)
    return None


class CloudEyeSource:
    """One target's Cloud Eye reads: the running jobs' `METRICS`, in batches of 500."""

    def __init__(self, context: SourceContext, clock: Callable[[], float] = time.time) -> None:
        target = context.target
        self._transport = context.transport_to(cloud_eye_endpoint(target))
        self._project = context.project
        self._max_age = target.sources.cloud_eye_max_age
        self._concurrency = target.concurrency
        self._clock = clock
        #: The latest read, to ask only for newer points and carry the ones it had.
        self._last: CloudEyeData | None = None

    async def poll(self, jobs: tuple[FlinkJob, ...] | None, deadline: float) -> CloudEyeData:
        running = [job.job_id for job in jobs or () if job.is_running]
        now = self._clock()
        if not running:
            self._last = CloudEyeData(MappingProxyType({}), now, None, self._max_age)
            return self._last
        path = batch_query_metric_data_path(await self._project.resolve(deadline=deadline))
        limit = asyncio.Semaphore(self._concurrency)

        async def batch(part: Sequence[tuple[int, str]]) -> tuple[Series, ...]:
            window = (self._since({job_id for job_id, _ in part}, now), int(now * 1000))
            async with limit:
                return await self._transport.post(
                    BATCH_QUERY_METRIC_DATA,
                    path,
                    _body(part, window),
                    parse_metric_data,
                    max_body=MAX_BODY_BYTES,
                    deadline=deadline,
                )

        queries = [(job_id, metric.ces_name) for job_id in running for metric in METRICS]
        step = CES_MAX_METRICS_PER_CALL
        answers = await _all_or_raise(
            [batch(queries[i : i + step]) for i in range(0, len(queries), step)]
        )
        self._last = _collect(answers, running, self._last, now, self._max_age)
        return self._last

    def _since(self, job_ids: Iterable[int], now: float) -> int:
        """Where a batch's window starts (unix ms): just after the oldest of its jobs' newest
        points already read, so each datapoint is fetched about once; ``max_age`` back when a
        job of the batch has a metric without a recent point. At least a minute back."""
        floor = now - self._max_age
        start = now - 60.0
        last = self._last
        for job_id in job_ids:
            row = last.points.get(job_id) if last is not None else None
            if row is None:
                return int(floor * 1000)
            for _value, stamp in row:
                if not stamp >= floor:  # no point (NaN), or one too old to count on
                    return int(floor * 1000)
                start = min(start, stamp)
        return int(start * 1000) + 1


def cloud_eye_endpoint(target: TargetConfig) -> str:
    """Where ``target``'s Cloud Eye is: as configured, else the region's endpoint."""
    return target.ces_endpoint or f"https://ces.{target.region}.myhuaweicloud.com"


def _body(queries: Sequence[tuple[int, str]], window: tuple[int, int]) -> dict[str, object]:
    return {
        "metrics": [
            {
                "namespace": CES_NAMESPACE,
                "metric_name": name,
                "dimensions": [{"name": _DIMENSION, "value": str(job_id)}],
            }
            for job_id, name in queries
        ],
        "from": window[0],
        "to": window[1],
        "period": "1",
        "filter": "average",
    }


async def _all_or_raise(
    calls: list[Coroutine[object, object, tuple[Series, ...]]],
) -> list[tuple[Series, ...]]:
    """Every batch's answer; the first failure is raised once all have ended."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    answers: list[tuple[Series, ...]] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        answers.append(result)
    return answers


def _collect(
    answers: Iterable[tuple[Series, ...]],
    running: Sequence[int],
    last: CloudEyeData | None,
    now: float,
    max_age: float,
) -> CloudEyeData:
    """This read's newest point per running job and metric; where it brought none (its window
    began after the point read before), the point read before while within ``max_age``."""
    fresh: dict[int, list[tuple[float, float]]] = {}
    for answer in answers:
        for series in answer:
            row = fresh.setdefault(series.job_id, [_NO_POINT] * len(METRICS))
            if not row[series.index][1] >= series.timestamp:  # NaN, or an older point
                row[series.index] = (series.value, series.timestamp)
    floor = now - max_age
    points: dict[int, tuple[tuple[float, float], ...]] = {}
    newest: float | None = None
    for job_id in running:
        before = last.points.get(job_id) if last is not None else None
        if job_id not in fresh and before is None:
            continue
        row = fresh.get(job_id) or [_NO_POINT] * len(METRICS)
        for index, (value, stamp) in enumerate(before or ()):
            if stamp >= floor and not row[index][1] >= stamp:
                row[index] = (value, stamp)
        points[job_id] = tuple(row)
        stamps = [stamp for _, stamp in row if stamp == stamp]  # noqa: PLR0124 - NaN test
        if stamps:
            newest = max(stamps) if newest is None else max(newest, *stamps)
    return CloudEyeData(MappingProxyType(points), now, newest, max_age)


def _reader(index: int) -> Callable[[Snapshot], Iterator[Reading]]:
    """The samples of `METRICS` entry ``index``: running jobs with a recent enough point."""

    def read(snapshot: Snapshot) -> Iterator[Reading]:
        result = result_of(snapshot, CLOUD_EYE)
        data = None if result is None else result.data
        if data is None:
            return
        since = data.published_since(snapshot)
        for state in snapshot.jobs:
            if state.job.is_running:
                value = data.recent(state.job.job_id, index, since)
                if value is not None:
                    yield _labels(snapshot, state), value

    return read


def _labels(snapshot: Snapshot, state: JobState) -> tuple[str, ...]:
    return (snapshot.target, str(state.job.job_id), state.job.name or "")


def _lag(snapshot: Snapshot) -> Iterable[Reading]:
    result = result_of(snapshot, CLOUD_EYE)
    data = None if result is None else result.data
    if data is None or data.newest is None:
        return ()
    return (((snapshot.target,), max(0.0, data.read_at - data.newest)),)


def cloud_eye_rows(_options: MetricOptions) -> tuple[MetricSpec, ...]:
    """One family per `METRICS` entry, then how far behind Cloud Eye's data is."""
    rows = tuple(
        MetricSpec(m.name, m.kind, m.help, JOB_LABELS, _reader(i), m.unit)
        for i, m in enumerate(METRICS)
    )
    lag = MetricSpec(
        "dli_cloud_eye_lag_seconds",
        "gauge",
        "How old the newest Cloud Eye datapoint of the target's running jobs was when read, "
        "in seconds.",
        TARGET_LABELS,
        _lag,
        SECONDS,
    )
    return (*rows, lag)


CLOUD_EYE: Final[Resource[CloudEyeData]] = Resource(
    name="cloud_eye",
    open=CloudEyeSource,
    rows=cloud_eye_rows,
    needs_jobs=True,
    enabled=lambda target: target.sources.cloud_eye,
    permission="ces:metricData:list (Cloud Eye read-only, e.g. the CES ReadOnlyAccess policy)",
)
