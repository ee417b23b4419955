"""Cloud Eye's DLI metrics: what the simulator reports for a running Flink job, as pure functions.

A job's values come from a profile seeded from its id (stable across calls and runs) and the
datapoint's timestamp, so a test can compute exactly what a query answers (`cloud_eye_value`).
Overrides live on `SimJob`: ``stalled`` (no records, totals frozen), ``backpressure_level`` and
``max_op_latency_ms``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from exporter.simulator.jobs import RUNNING, SimJob, seeded_rng

__all__ = [
    "DATAPOINT_STEP_MS",
    "DEFAULT_LAG_SECONDS",
    "UNITS",
    "CloudEye",
    "JobProfile",
    "cloud_eye_value",
    "datapoint_times",
    "job_profile",
    "newest_datapoint_ms",
]

#: Seconds the newest datapoint lags behind the clock by default (before minute alignment).
DEFAULT_LAG_SECONDS: Final = 60.0
#: Datapoints are one minute apart (for ``period`` "1" and "60"), on whole minutes.
DATAPOINT_STEP_MS: Final = 60_000
#: The unit Cloud Eye reports with each DLI Flink metric.
UNITS: Final = {
    "flink_read_records_per_second": "count/s",
    "flink_write_records_per_second": "count/s",
    "flink_read_records_total": "count",
    "flink_write_records_total": "count",
    "flink_read_bytes_per_second": "byte/s",
    "flink_write_bytes_per_second": "byte/s",
    "flink_read_bytes_total": "byte",
    "flink_write_bytes_total": "byte",
    "flink_cpu_usage": "%",
    "flink_mem_usage": "%",
    "flink_max_op_latency": "ms",
    "flink_max_op_backpressure_level": "",
}
#: Minutes of one cycle of the gentle wobble on rates, CPU, memory and latency.
_WOBBLE_MINUTES: Final = 30


class CloudEye:
    """Cloud Eye's settings (``lag_seconds`` the newest datapoint trails the clock by) and
    how many datapoints it has served."""

    def __init__(self, *, lag_seconds: float = DEFAULT_LAG_SECONDS) -> None:
        self.lag_seconds = lag_seconds
        #: Datapoints answered so far, all queries together (what the client made CES send).
        self.datapoints_served = 0


@dataclass(frozen=True, slots=True)
class JobProfile:
    """A job's base values, drawn once from its id."""

    read_rate: float  # records/s
    write_ratio: float  # written records per read record
    read_record_bytes: int
    write_record_bytes: int
    cpu: float  # %
    mem: float  # %
    latency_ms: float
    phase: float  # radians


@lru_cache(maxsize=65_536)
def job_profile(job_id: int) -> JobProfile:
    """The base values of job ``job_id`` (seeded from the id alone)."""
    rng = seeded_rng("cloud_eye", job_id)
    return JobProfile(
        read_rate=rng.uniform(200.0, 5000.0),
        write_ratio=rng.uniform(0.4, 0.95),
        read_record_bytes=rng.randrange(200, 2000),
        write_record_bytes=rng.randrange(100, 1500),
        cpu=rng.uniform(15.0, 70.0),
        mem=rng.uniform(20.0, 70.0),
        latency_ms=rng.uniform(5.0, 400.0),
        phase=rng.uniform(0.0, 2 * math.pi),
    )


def _reporting(job: SimJob, timestamp_ms: int) -> bool:
    """Cloud Eye has data for the job at this time: running in DLI and Flink, already started."""
    return (
        job.status == RUNNING
        and job.flink_state == "RUNNING"
        and 0 < job.start_time_ms <= timestamp_ms
    )


def cloud_eye_value(job: SimJob, metric_name: str, timestamp_ms: int) -> float | None:
    """What the simulator serves for ``metric_name`` of ``job`` at ``timestamp_ms``.

    ``None`` (no datapoint) when the job is not ``job_running`` with Flink state ``RUNNING``
    (its current state), ``timestamp_ms`` is before its start, or the metric is unknown.
    Rates wobble by ±10 % over 30 minutes around the profile's; totals are the profile's base
    rate times the seconds since the job started (frozen at ``stalled_since_ms``, default the
    start, while ``stalled``); bytes are records times a per-job record size.
    """
    if metric_name not in UNITS or not _reporting(job, timestamp_ms):
        return None
    profile = job_profile(job.job_id)
    minute = timestamp_ms // DATAPOINT_STEP_MS
    wobble = math.sin(profile.phase + 2 * math.pi * minute / _WOBBLE_MINUTES)
    read_rps = 0.0 if job.stalled else profile.read_rate * (1 + 0.1 * wobble)
    write_rps = read_rps * profile.write_ratio
    until_ms = timestamp_ms
    if job.stalled:
        frozen = job.start_time_ms if job.stalled_since_ms is None else job.stalled_since_ms
        until_ms = min(timestamp_ms, max(frozen, job.start_time_ms))
    seconds = (until_ms - job.start_time_ms) / 1000
    read_total = math.floor(profile.read_rate * seconds)
    write_total = math.floor(profile.read_rate * profile.write_ratio * seconds)
    values = {
        "flink_read_records_per_second": round(read_rps, 3),
        "flink_write_records_per_second": round(write_rps, 3),
        "flink_read_records_total": float(read_total),
        "flink_write_records_total": float(write_total),
        "flink_read_bytes_per_second": round(read_rps * profile.read_record_bytes, 3),
        "flink_write_bytes_per_second": round(write_rps * profile.write_record_bytes, 3),
        "flink_read_bytes_total": float(read_total * profile.read_record_bytes),
        "flink_write_bytes_total": float(write_total * profile.write_record_bytes),
        "flink_cpu_usage": round(_clamp(profile.cpu * (1 + 0.1 * wobble), 10.0, 80.0), 2),
        "flink_mem_usage": round(_clamp(profile.mem * (1 + 0.05 * wobble), 10.0, 80.0), 2),
        "flink_max_op_latency": _latency(job, profile, wobble),
        "flink_max_op_backpressure_level": float(job.backpressure_level),
    }
    return values[metric_name]


def _latency(job: SimJob, profile: JobProfile, wobble: float) -> float:
    """``max_op_latency_ms`` when set; else seconds under high, about 2 s under low backpressure."""
    if job.max_op_latency_ms is not None:
        return float(job.max_op_latency_ms)
    if job.backpressure_level >= 100:
        return round(30_000.0 + profile.latency_ms * 30, 1)
    if job.backpressure_level >= 50:
        return round(2_000.0 + profile.latency_ms * 10, 1)
    return round(_clamp(profile.latency_ms * (1 + 0.2 * wobble), 5.0, 500.0), 1)


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def newest_datapoint_ms(now_ms: int, lag_seconds: float, step_ms: int = DATAPOINT_STEP_MS) -> int:
    """The newest datapoint's timestamp: ``lag_seconds`` before now, down to a whole step."""
    return (now_ms - round(lag_seconds * 1000)) // step_ms * step_ms


def datapoint_times(
    from_ms: float, to_ms: int, *, now_ms: int, lag_seconds: float, step_ms: int = DATAPOINT_STEP_MS
) -> range:
    """The timestamps of the datapoints a query of [from, to] gets: whole steps, oldest first."""
    last = min(newest_datapoint_ms(now_ms, lag_seconds, step_ms), to_ms // step_ms * step_ms)
    first = math.ceil(from_ms / step_ms) * step_ms
    return range(first, last + 1, step_ms)
