"""DLI's Flink jobs: the model types, their parsers, and the two calls that read them.

The parsers accept what the API documents and what it has been seen to send instead (a boolean
``is_success`` or the string ``"true"``, numbers as strings). Every value is read through
`exporter.values`: a field that is absent, of a type that cannot be read or impossible (negative,
beyond any real value) stays ``None`` and is noted in the caller's `ValueIssues`; the exporter
then publishes no sample for it rather than a made-up zero. Only a response whose *shape* is
wrong raises :class:`ResponseParseError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from exporter.dli.answers import require_list, require_mapping, successful_body
from exporter.dli.failure import FAILED_STATUSES, failure_text
from exporter.values import MAX_ID, ValueIssues, read_bool, read_int, read_str

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
    checkpoint_enabled: bool | None = None
    #: Seconds between checkpoints.
    checkpoint_interval: int | None = None
    restart_when_exception: bool | None = None
    #: Restarts allowed on exceptions; -1 means unlimited.
    resume_max_num: int | None = None


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
    #: Why the job failed (``status_desc``), kept only for a failed job (`FAILED_STATUSES`).
    status_desc: str | None = None

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


def parse_job_list_page(payload: object, issues: ValueIssues | None = None) -> JobListPage:
    """Parse a list-jobs response body (already decoded from JSON).

    Values that are impossible (negative counts, numbers beyond any real value, strings that
    are not text) are left out and noted in ``issues``; only a wrong shape raises.
    """
    job_list = require_mapping(successful_body(payload).get("job_list"), "job_list")
    raw_jobs = require_list(job_list, "jobs", "job_list.jobs")
    jobs: list[FlinkJob] = []
    skipped = 0
    for raw in raw_jobs:
        job = parse_job(raw, issues)
        if job is None:
            skipped += 1
        else:
            jobs.append(job)
    total = read_int(job_list.get("total_count"), "total_count", issues, high=MAX_ID)
    return JobListPage(total, tuple(jobs), skipped)


def parse_job(raw: object, issues: ValueIssues | None = None) -> FlinkJob | None:
    """Parse one job object; ``None`` when it is not an object or has no usable ``job_id``."""
    if not isinstance(raw, Mapping):
        return None
    job_id = read_int(raw.get("job_id"), "job_id", issues, high=MAX_ID)
    if job_id is None:
        return None
    status = read_str(raw.get("status"), "status", issues)
    return FlinkJob(
        job_id=job_id,
        name=read_str(raw.get("name"), "name", issues),
        job_type=read_str(raw.get("job_type"), "job_type", issues),
        status=status,
        queue_name=read_str(raw.get("queue_name"), "queue_name", issues),
        user_name=read_str(raw.get("user_name"), "user_name", issues),
        run_mode=read_str(raw.get("run_mode"), "run_mode", issues),
        create_time_ms=read_int(raw.get("create_time"), "create_time", issues),
        start_time_ms=read_int(raw.get("start_time"), "start_time", issues),
        duration_ms=read_int(raw.get("duration"), "duration", issues),
        restart_times=read_int(raw.get("restart_times"), "restart_times", issues),
        has_savepoint=read_bool(raw.get("has_savepoint"), "has_savepoint", issues),
        config=parse_job_config(raw.get("job_config"), issues),
        status_desc=failure_text(raw.get("status_desc")) if status in FAILED_STATUSES else None,
    )


_CONFIG_COUNTS: Final = (
    "cu_number",
    "manager_cu_number",
    "real_cu_number",
    "parallel_number",
    "tm_cus",
    "tm_slot_num",
    "executor_number",
    "executor_cu_number",
)


def parse_job_config(raw: object, issues: ValueIssues | None = None) -> JobConfig:
    """Parse ``job_config``; anything but an object gives a config with every field unknown."""
    if not isinstance(raw, Mapping):
        return JobConfig()
    counts = {
        name: read_int(raw.get(name), f"job_config.{name}", issues) for name in _CONFIG_COUNTS
    }
    return JobConfig(
        **counts,
        checkpoint_enabled=read_bool(
            raw.get("checkpoint_enabled"), "job_config.checkpoint_enabled", issues
        ),
        restart_when_exception=read_bool(
            raw.get("restart_when_exception"), "job_config.restart_when_exception", issues
        ),
        flink_version=read_str(raw.get("flink_version"), "job_config.flink_version", issues),
        checkpoint_interval=read_int(
            raw.get("checkpoint_interval"), "job_config.checkpoint_interval", issues
        ),
        resume_max_num=read_int(
            raw.get("resume_max_num"), "job_config.resume_max_num", issues, low=-1
        ),
    )


def parse_execute_graph(payload: object, issues: ValueIssues | None = None) -> ExecuteGraph:
    """Parse an execute-graph response body (already decoded from JSON)."""
    graph = require_mapping(successful_body(payload).get("execute_graph"), "execute_graph")
    return ExecuteGraph(
        state=read_str(graph.get("state"), "state", issues),
        duration_ms=read_int(graph.get("duration"), "duration", issues),
        start_time_ms=read_int(graph.get("start-time"), "start-time", issues),
        is_stoppable=read_bool(graph.get("isStoppable"), "isStoppable", issues),
    )
