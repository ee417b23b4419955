"""The DLI job detail: one job's status history, restarts, run time and resources."""

from __future__ import annotations

from typing import Final

from grafana.board import dashboard, even_row, full_row, row
from grafana.panels import stat, table, timeseries
from grafana.presets import state_history, state_stat, timestamp_stat, yes_no_stat
from grafana.promql import JOB, TARGET, active, increase, sel
from grafana.schema import JOB_DETAIL_UID, Json
from grafana.styles import BLUE, FLINK_STATE_COLORS, STATUS_COLORS
from grafana.targets import queries, query, table_query
from grafana.variables import (
    datasource_variable,
    job_variable,
    queue_variable,
    target_variable,
)

#: The job's resource settings: (metric, display name).
RESOURCES: Final = (
    ("dli_job_compute_units", "CUs"),
    ("dli_job_manager_compute_units", "Manager CUs"),
    ("dli_job_actual_compute_units", "Actual CUs"),
    ("dli_job_parallelism", "Parallelism"),
    ("dli_job_taskmanager_compute_units", "TM CUs"),
    ("dli_job_taskmanager_slots", "TM slots"),
    ("dli_job_executors", "Executors"),
    ("dli_job_executor_compute_units", "Executor CUs"),
)


def job_detail() -> Json:
    """DLI job detail: one job's status history, restarts, run time and resources."""
    return dashboard(
        JOB_DETAIL_UID,
        "DLI job detail",
        "One DLI Flink job: status history, Flink state, restarts, run time and resources.",
        [datasource_variable(), target_variable(), queue_variable(), job_variable()],
        [
            full_row(4, job_info()),
            row(
                4,
                (6, dli_status()),
                (6, flink_state()),
                (3, restarts()),
                (3, restarts_last_hour()),
                (6, running_for()),
            ),
            even_row(4, created(), last_started(), has_savepoint(), stoppable()),
            full_row(4, resources()),
            full_row(6, dli_status_history()),
            full_row(5, flink_state_history()),
            even_row(8, restarts_over_time(), run_time()),
            full_row(8, resource_settings_over_time()),
        ],
    )


def job(metric: str) -> str:
    """``metric`` of the selected job."""
    return sel(metric, TARGET, JOB)


def resource_queries() -> list[Json]:
    """One query per resource setting, named after it."""
    return queries(*((job(metric), name) for metric, name in RESOURCES))


# --- what the job is ----------------------------------------------------------------------------


def job_info() -> Json:
    """Table: the job's name, id, type, queue, owner, run mode and Flink version."""
    return table(
        "Job",
        "What DLI says about the job: name, id, type, queue, owner, run mode and Flink version "
        "(dli_job_info).",
        [table_query(job("dli_job_info"))],
        columns={
            "target": "Target",
            "job_name": "Job",
            "job_id": "Job ID",
            "job_type": "Type",
            "queue_name": "Queue",
            "user_name": "Owner",
            "run_mode": "Run mode",
            "flink_version": "Flink version",
        },
    )


def resources() -> Json:
    """Stat: the job's resource settings, one value per setting."""
    return stat(
        "Resources",
        "The job's resource settings (job_config): CUs (cu_number), manager CUs, actual CUs "
        "(real_cu_number, or cu_number when 0), parallelism, CUs and slots per task manager, "
        "executors and CUs per executor. A setting DLI did not report shows no value.",
        resource_queries(),
        text_mode="value_and_name",
        steps=BLUE,
    )


# --- where the job is now -----------------------------------------------------------------------


def dli_status() -> Json:
    """Stat: the job's current DLI status."""
    return state_stat(
        "DLI status",
        "The job's current DLI status (dli_job_status == 1).",
        active(job("dli_job_status")),
        "status",
        STATUS_COLORS,
    )


def flink_state() -> Json:
    """Stat: the job's current Flink state."""
    return state_stat(
        "Flink state",
        "The Flink job state from execute-graph (dli_job_flink_state == 1); only for running "
        "jobs, absent when the call failed.",
        active(job("dli_job_flink_state")),
        "state",
        FLINK_STATE_COLORS,
    )


def restarts() -> Json:
    """Stat: DLI's restart counter."""
    return stat(
        "Restarts",
        "How many times DLI has restarted the job (dli_job_restarts_total).",
        [query(job("dli_job_restarts_total"))],
        decimals=0,
    )


def restarts_last_hour() -> Json:
    """Stat: restarts in the last hour, orange from 1 and red from the restart-loop alert's 4."""
    return stat(
        "Restarts (1h)",
        "Restarts in the last hour (increase over 1h; DliJobRestartLoop fires above 3 in 15 "
        "minutes).",
        [query(increase(job("dli_job_restarts_total")))],
        steps=((None, "green"), (1, "orange"), (4, "red")),
        decimals=0,
    )


def running_for() -> Json:
    """Stat: the job's run time."""
    return stat(
        "Running for",
        "How long the job has run (dli_job_duration_seconds, from execute-graph for running "
        "jobs, else the job list).",
        [query(job("dli_job_duration_seconds"))],
        unit="dtdurations",
    )


def created() -> Json:
    """Stat: the job's creation time."""
    return timestamp_stat(
        "Created",
        "When the job was created (dli_job_create_time_seconds).",
        job("dli_job_create_time_seconds"),
    )


def last_started() -> Json:
    """Stat: when the job last started."""
    return timestamp_stat(
        "Last started",
        "When the job last started (dli_job_start_time_seconds); no data when it never started.",
        job("dli_job_start_time_seconds"),
    )


def has_savepoint() -> Json:
    """Stat: whether the job has a savepoint."""
    return yes_no_stat(
        "Has savepoint",
        "Whether the job has a savepoint to resume from (dli_job_has_savepoint).",
        job("dli_job_has_savepoint"),
    )


def stoppable() -> Json:
    """Stat: whether Flink can stop the job."""
    return yes_no_stat(
        "Stoppable",
        "Whether Flink reports the running job as stoppable (dli_job_stoppable, execute-graph "
        "isStoppable).",
        job("dli_job_stoppable"),
    )


# --- history ------------------------------------------------------------------------------------


def dli_status_history() -> Json:
    """State timeline: the job's DLI statuses over time."""
    return state_history(
        "DLI status history",
        "The job's DLI status over time: one row per status it has been in (dli_job_status == 1).",
        active(job("dli_job_status")),
        "status",
        STATUS_COLORS,
    )


def flink_state_history() -> Json:
    """State timeline: the job's Flink states over time."""
    return state_history(
        "Flink state history",
        "The Flink job state over time while the job runs (dli_job_flink_state == 1); gaps where "
        "the job was not running or execute-graph failed.",
        active(job("dli_job_flink_state")),
        "state",
        FLINK_STATE_COLORS,
    )


def restarts_over_time() -> Json:
    """Time series: the restart counter and its increase over the preceding hour."""
    counter = job("dli_job_restarts_total")
    return timeseries(
        "Restarts",
        "DLI's restart counter for the job and its increase over the preceding hour.",
        queries(
            (counter, "restart count"),
            (increase(counter), "restarts in the preceding hour"),
        ),
        unit="short",
        decimals=0,
    )


def run_time() -> Json:
    """Time series: the job's run time."""
    return timeseries(
        "Run time",
        "How long the job has been running (dli_job_duration_seconds); a drop means it was "
        "restarted or resubmitted.",
        queries((job("dli_job_duration_seconds"), "run time")),
        unit="s",
    )


def resource_settings_over_time() -> Json:
    """Time series: the resource settings, as steps."""
    return timeseries(
        "Resource settings over time",
        "The job's CU, parallelism, task manager and executor settings over time; a step shows "
        "a configuration change.",
        resource_queries(),
        unit="short",
        steps=True,
        legend_table=True,
    )
