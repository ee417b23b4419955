"""The job resource's metric families: how a listed job (and its graph) becomes samples.

The families come in exposition order. The cardinality options of ``metrics`` (`MetricOptions`)
choose each family's labels and readers when the rows are built, so a variant is a different
row, not a rewrite of one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

from exporter.config import MetricOptions
from exporter.dli.failure import FAILED_STATUSES, failure_reason
from exporter.dli.jobmodel import FLINK_STATES, JOB_STATUSES, JobState
from exporter.metricspec import SECONDS, MetricSpec, Reading, job_row, scalar, state_set

__all__ = ["INFO_LABELS", "job_rows"]

#: The descriptive labels of ``dli_job_info`` (dropped with ``job_info_labels: false``).
INFO_LABELS: Final = ("job_type", "queue_name", "user_name", "run_mode", "flink_version")


def job_rows(options: MetricOptions) -> tuple[MetricSpec, ...]:
    """Every per-job family, in exposition order, as ``options`` shape them."""
    current_only = options.state_sets == "current"
    statuses = () if current_only else JOB_STATUSES
    flink_states = () if current_only else FLINK_STATES
    return (
        job_row(
            "dli_job_info",
            "Always 1 for each listed DLI Flink job; labels give its type, queue, owner, run mode "
            "and Flink version (empty when unknown).",
            _info if options.job_info_labels else _info_without_labels,
            extra=INFO_LABELS if options.job_info_labels else (),
        ),
        job_row(
            "dli_job_status",
            "DLI job status as a state set: 1 for the current status, 0 for the other documented "
            "statuses.",
            lambda state: state_set(state.job.status, statuses),
            extra=("status",),
        ),
        job_row(
            "dli_job_flink_state",
            "Flink job state from the execution graph of a running job, as a state set: 1 for the "
            "current state, 0 for the others.",
            lambda state: state_set(state.graph.state if state.graph else None, flink_states),
            extra=("state",),
        ),
        job_row(
            "dli_job_duration_seconds",
            "How long the job has run, in seconds (execution graph of a running job, else job "
            "list).",
            scalar(_duration),
            unit=SECONDS,
        ),
        job_row(
            "dli_job_restarts_total",
            "Number of times DLI has restarted the job.",
            scalar(lambda s: s.job.restart_times),
            kind="counter",
        ),
        job_row(
            "dli_job_create_time_seconds",
            "When the job was created, as a unix timestamp in seconds.",
            scalar(lambda s: _seconds(s.job.create_time_ms)),
            unit=SECONDS,
        ),
        job_row(
            "dli_job_start_time_seconds",
            "When the job last started, as a unix timestamp in seconds; absent if never started.",
            scalar(_start_time),
            unit=SECONDS,
        ),
        job_row(
            "dli_job_has_savepoint",
            "1 when the job has a savepoint, 0 when it has none.",
            scalar(lambda s: _flag(s.job.has_savepoint)),
        ),
        job_row(
            "dli_job_stoppable",
            "1 when Flink reports the running job as stoppable (isStoppable), 0 when not.",
            scalar(_stoppable),
        ),
        job_row(
            "dli_job_compute_units",
            "Compute units (CUs) configured for the job (cu_number).",
            scalar(lambda s: s.job.config.cu_number),
        ),
        job_row(
            "dli_job_manager_compute_units",
            "Compute units (CUs) configured for the job manager (manager_cu_number).",
            scalar(lambda s: s.job.config.manager_cu_number),
        ),
        job_row(
            "dli_job_actual_compute_units",
            "Compute units (CUs) the job actually uses (real_cu_number, or cu_number when that "
            "is 0).",
            scalar(_actual_compute_units),
        ),
        job_row(
            "dli_job_parallelism",
            "Configured parallelism of the job (parallel_number).",
            scalar(lambda s: s.job.config.parallel_number),
        ),
        job_row(
            "dli_job_taskmanager_compute_units",
            "Compute units (CUs) per task manager (tm_cus).",
            scalar(lambda s: s.job.config.tm_cus),
        ),
        job_row(
            "dli_job_taskmanager_slots",
            "Slots per task manager (tm_slot_num).",
            scalar(lambda s: s.job.config.tm_slot_num),
        ),
        job_row(
            "dli_job_executors",
            "Number of executors configured for the job (executor_number).",
            scalar(lambda s: s.job.config.executor_number),
        ),
        job_row(
            "dli_job_executor_compute_units",
            "Compute units (CUs) per executor (executor_cu_number).",
            scalar(lambda s: s.job.config.executor_cu_number),
        ),
        job_row(
            "dli_job_checkpoint_enabled",
            "1 when the job takes checkpoints (checkpoint_enabled), 0 when not.",
            scalar(lambda s: _flag(s.job.config.checkpoint_enabled)),
        ),
        job_row(
            "dli_job_checkpoint_interval_seconds",
            "Time between the job's checkpoints in seconds (checkpoint_interval).",
            scalar(lambda s: s.job.config.checkpoint_interval),
            unit=SECONDS,
        ),
        job_row(
            "dli_job_restart_on_exception_enabled",
            "1 when DLI restarts the job after an exception (restart_when_exception), 0 when not.",
            scalar(lambda s: _flag(s.job.config.restart_when_exception)),
        ),
        job_row(
            "dli_job_max_restarts_on_exception",
            "How many restarts after exceptions the job is allowed (resume_max_num); +Inf when "
            "unlimited.",
            scalar(_max_restarts),
        ),
        job_row(
            "dli_job_failure_info",
            "Always 1 for each job in a failed status; reason is the exception class or error "
            "code its status_desc names (else unrecognized, or none without text).",
            _failure,
            extra=("reason",),
        ),
    )


def _max_restarts(state: JobState) -> float | None:
    limit = state.job.config.resume_max_num
    return math.inf if limit == -1 else limit  # documented: -1 means unlimited


def _failure(state: JobState) -> Iterable[Reading]:
    job = state.job
    if job.status not in FAILED_STATUSES:
        return ()
    return (((failure_reason(job.status_desc),), 1.0),)


def _info_without_labels(_state: JobState) -> Iterable[Reading]:
    return (((), 1.0),)


def _info(state: JobState) -> Iterable[Reading]:
    job = state.job
    labels = (job.job_type, job.queue_name, job.user_name, job.run_mode, job.config.flink_version)
    return ((tuple(value or "" for value in labels), 1.0),)


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
