"""DLI's Flink job data as frozen dataclasses, and tolerant parsers for the API's JSON.

The parsers accept what the API documents and what it has been seen to send instead (a boolean
``is_success`` or the string ``"true"``, numbers as strings). A field that is absent or of a type
that cannot be read stays ``None``: the exporter then publishes no sample for it rather than a
made-up zero. Only a response whose *shape* is wrong raises :class:`ResponseParseError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

#: The 14 job statuses documented for "Listing Jobs". Other values are valid, just unknown.
JOB_STATUSES: Final[tuple[str, ...]] = (
    "job_init",
    "job_submitting",
    "job_submit_fail",
    "job_running",
    "job_running_exception",
    "job_downloading",
    "job_idle",
    "job_canceling",
    "job_cancel_success",
    "job_cancel_fail",
    "job_savepointing",
    "job_arrearage_stopped",
    "job_arrearage_recovering",
    "job_finish",
)

#: Flink's JobStatus values, as execute-graph's ``state`` reports them.
FLINK_STATES: Final[tuple[str, ...]] = (
    "INITIALIZING",
    "CREATED",
    "RUNNING",
    "FAILING",
    "FAILED",
    "CANCELLING",
    "CANCELED",
    "FINISHED",
    "RESTARTING",
    "SUSPENDED",
    "RECONCILING",
)

#: The DLI status for which execute-graph is meaningful.
RUNNING_STATUS: Final = "job_running"


class ResponseParseError(ValueError):
    """A DLI response body does not have the documented shape."""


@dataclass(frozen=True, slots=True)
class JobConfig:
    """The resource settings of a job (``job_config``); every field may be unknown."""

    cu_number: int | None = None
    manager_cu_number: int | None = None
    real_cu_number: int | None = None
    parallel_number: int | None = None
    tm_cus: int | None = None
    tm_slot_num: int | None = None
    executor_number: int | None = None
    executor_cu_number: int | None = None
    flink_version: str | None = None


@dataclass(frozen=True, slots=True)
class FlinkJob:
    """One entry of the job list. Times and durations are in milliseconds, as the API sends."""

    job_id: int
    name: str | None = None
    job_type: str | None = None
    status: str | None = None
    queue_name: str | None = None
    user_name: str | None = None
    run_mode: str | None = None
    create_time_ms: int | None = None
    start_time_ms: int | None = None
    duration_ms: int | None = None
    restart_times: int | None = None
    has_savepoint: bool | None = None
    config: JobConfig = JobConfig()

    @property
    def is_running(self) -> bool:
        """True when DLI reports the job as running (execute-graph is meaningful)."""
        return self.status == RUNNING_STATUS


@dataclass(frozen=True, slots=True)
class JobListPage:
    """One page of ``GET /v1.0/{project_id}/streaming/jobs``."""

    total_count: int | None
    jobs: tuple[FlinkJob, ...]
    #: Entries dropped because they had no usable ``job_id``.
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class ExecuteGraph:
    """The parts of a running job's execution plan the exporter publishes."""

    state: str | None = None
    duration_ms: int | None = None
    start_time_ms: int | None = None
    is_stoppable: bool | None = None


@dataclass(frozen=True, slots=True)
class JobState:
    """A listed job with its execution plan, when one was fetched this poll."""

    job: FlinkJob
    graph: ExecuteGraph | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one target's latest poll learned; replaced whole, never mutated."""

    target: str
    jobs: tuple[JobState, ...] = ()
    #: True when the latest poll listed the jobs successfully.
    up: bool = False
    #: True once the first poll has finished, successfully or not.
    polled: bool = False
    #: Unix time of the latest successful listing (the age of ``jobs``).
    last_success_time: float | None = None
    #: Wall time the latest poll took, in seconds.
    poll_duration_seconds: float | None = None
    #: A one-line description of why the latest poll failed; never carries secrets.
    last_error: str | None = None


def parse_job_list_page(payload: object) -> JobListPage:
    """Parse a list-jobs response body (already decoded from JSON)."""
    body = _require_mapping(payload, "response body")
    _check_success(body)
    job_list = _require_mapping(body.get("job_list"), "job_list")
    raw_jobs = job_list.get("jobs", [])
    if raw_jobs is None:
        raw_jobs = []
    if not isinstance(raw_jobs, list):
        raise ResponseParseError(f"job_list.jobs is {type(raw_jobs).__name__}, not a list")
    jobs: list[FlinkJob] = []
    skipped = 0
    for raw in raw_jobs:
        job = parse_job(raw)
        if job is None:
            skipped += 1
        else:
            jobs.append(job)
    return JobListPage(_int(job_list.get("total_count")), tuple(jobs), skipped)


def parse_job(raw: object) -> FlinkJob | None:
    """Parse one job object; ``None`` when it is not an object or has no usable ``job_id``."""
    if not isinstance(raw, Mapping):
        return None
    job_id = _int(raw.get("job_id"))
    if job_id is None:
        return None
    return FlinkJob(
        job_id=job_id,
        name=_str(raw.get("name")),
        job_type=_str(raw.get("job_type")),
        status=_str(raw.get("status")),
        queue_name=_str(raw.get("queue_name")),
        user_name=_str(raw.get("user_name")),
        run_mode=_str(raw.get("run_mode")),
        create_time_ms=_int(raw.get("create_time")),
        start_time_ms=_int(raw.get("start_time")),
        duration_ms=_int(raw.get("duration")),
        restart_times=_int(raw.get("restart_times")),
        has_savepoint=_bool(raw.get("has_savepoint")),
        config=parse_job_config(raw.get("job_config")),
    )


def parse_job_config(raw: object) -> JobConfig:
    """Parse ``job_config``; anything but an object gives a config with every field unknown."""
    if not isinstance(raw, Mapping):
        return JobConfig()
    return JobConfig(
        cu_number=_int(raw.get("cu_number")),
        manager_cu_number=_int(raw.get("manager_cu_number")),
        real_cu_number=_int(raw.get("real_cu_number")),
        parallel_number=_int(raw.get("parallel_number")),
        tm_cus=_int(raw.get("tm_cus")),
        tm_slot_num=_int(raw.get("tm_slot_num")),
        executor_number=_int(raw.get("executor_number")),
        executor_cu_number=_int(raw.get("executor_cu_number")),
        flink_version=_str(raw.get("flink_version")),
    )


def parse_execute_graph(payload: object) -> ExecuteGraph:
    """Parse an execute-graph response body (already decoded from JSON)."""
    body = _require_mapping(payload, "response body")
    _check_success(body)
    graph = _require_mapping(body.get("execute_graph"), "execute_graph")
    return ExecuteGraph(
        state=_str(graph.get("state")),
        duration_ms=_int(graph.get("duration")),
        start_time_ms=_int(graph.get("start-time")),
        is_stoppable=_bool(graph.get("isStoppable")),
    )


def _require_mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        kind = "missing" if value is None else f"a {type(value).__name__}, not an object"
        raise ResponseParseError(f"{what} is {kind}")
    return value


def _check_success(body: Mapping[str, object]) -> None:
    if _bool(body.get("is_success", True)) is False:
        message = _str(body.get("message")) or "no message"
        raise ResponseParseError(f"is_success is false: {message[:200]}")


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
