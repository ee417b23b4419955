"""The DLI job detail: one job's status, restarts, run time, resources and runtime health."""

from __future__ import annotations

from typing import Final

from grafana.board import dashboard, even_row, full_row, row
from grafana.panels import stat, table, timeseries
from grafana.presets import state_history, state_stat, timestamp_stat, yes_no_stat
from grafana.promql import JOB, TARGET, active, increase, sel
from grafana.schema import JOB_DETAIL_UID, Json
from grafana.styles import (
    BACKPRESSURE_LEVELS,
    BLUE,
    FLINK_STATE_COLORS,
    RED,
    STATUS_COLORS,
    field_override,
    range_mappings,
)
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
#: The job's Cloud Eye counters: (metric, display name, unit).
IO_TOTALS: Final = (
    ("dli_job_read_records_total", "Records read", "short"),
    ("dli_job_write_records_total", "Records written", "short"),
    ("dli_job_read_bytes_total", "Bytes read", "bytes"),
    ("dli_job_write_bytes_total", "Bytes written", "bytes"),
)
#: Where the Cloud Eye panels' data comes from, for their descriptions.
CLOUD_EYE: Final = (
    "From Cloud Eye (namespace SYS.DLI), for running jobs only; its data is a minute or two "
    "behind (dli_cloud_eye_lag_seconds)."
)
#: DliJobOperatorLatencyHigh's threshold, in seconds.
LATENCY_ALERT_SECONDS: Final = 30


def job_detail() -> Json:
    """DLI job detail: one job's status history, restarts, run time and resources."""
    return dashboard(
        JOB_DETAIL_UID,
        "DLI job detail",
        "One DLI Flink job: status history, Flink state, restarts, run time, resources, and its "
        "throughput, backpressure, latency, CPU and memory from Cloud Eye.",
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
            even_row(
                4,
                failure_reason(),
                checkpointing(),
                checkpoint_interval(),
                restart_on_exception(),
                max_restarts_on_exception(),
                io_totals(),
            ),
            even_row(8, records_per_second(), bytes_per_second()),
            even_row(8, backpressure_level(), operator_latency(), cpu_and_memory()),
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


# --- configuration and failure ------------------------------------------------------------------


def failure_reason() -> Json:
    """Stat: why the job failed, while it is in a failed DLI status."""
    return stat(
        "Failure reason",
        "Why the job failed (dli_job_failure_info reason: the exception class or error code from "
        "DLI's status_desc, 'none' when DLI gave none, 'unrecognized' otherwise); only while the "
        "job is in job_submit_fail, job_running_exception, job_cancel_fail or "
        "job_arrearage_stopped, no data otherwise.",
        [query(active(job("dli_job_failure_info")), "{{reason}}")],
        text_mode="name",
        steps=RED,
        color_mode="background",
    )


def checkpointing() -> Json:
    """Stat: whether the job checkpoints."""
    return yes_no_stat(
        "Checkpointing",
        "Whether checkpointing is on for the job (dli_job_checkpoint_enabled); without it a "
        "restart loses the job's state.",
        job("dli_job_checkpoint_enabled"),
    )


def checkpoint_interval() -> Json:
    """Stat: the checkpoint interval."""
    return stat(
        "Checkpoint interval",
        "How often the job checkpoints (dli_job_checkpoint_interval_seconds).",
        [query(job("dli_job_checkpoint_interval_seconds"))],
        unit="s",
        steps=BLUE,
    )


def restart_on_exception() -> Json:
    """Stat: whether DLI restarts the job when it fails."""
    return yes_no_stat(
        "Restart on exception",
        "Whether DLI restarts the job automatically when it fails "
        "(dli_job_restart_on_exception_enabled, job_config restart_when_exception).",
        job("dli_job_restart_on_exception_enabled"),
    )


def max_restarts_on_exception() -> Json:
    """Stat: the restart limit, "Unlimited" for +Inf."""
    return stat(
        "Max restarts",
        "How many times DLI restarts the job on exception at most "
        "(dli_job_max_restarts_on_exception, resume_max_num; unlimited when -1). "
        "DliJobRestartBudgetNearlyUsed fires at 80% of it.",
        [query(job("dli_job_max_restarts_on_exception"))],
        mappings=range_mappings((1e300, None, "Unlimited", "blue")),
        steps=BLUE,
        decimals=0,
    )


def io_totals() -> Json:
    """Stat: records and bytes read and written since the job started."""
    return stat(
        "Read / written",
        "Records and bytes the job has read and written (dli_job_read_records_total, "
        "dli_job_write_records_total, dli_job_read_bytes_total, dli_job_write_bytes_total). "
        + CLOUD_EYE,
        queries(*((job(metric), name) for metric, name, _ in IO_TOTALS)),
        text_mode="value_and_name",
        steps=BLUE,
        overrides=[field_override(name, {"unit": unit}) for _, name, unit in IO_TOTALS],
    )


# --- runtime health (Cloud Eye) -----------------------------------------------------------------


def records_per_second() -> Json:
    """Time series: records read and written per second."""
    return timeseries(
        "Records per second",
        "Records the job reads from its sources and writes to its sinks per second "
        "(dli_job_read_records_per_second, dli_job_write_records_per_second). DliJobStalled "
        "fires when a running job reads 0 for 15 minutes. " + CLOUD_EYE,
        queries(
            (job("dli_job_read_records_per_second"), "read"),
            (job("dli_job_write_records_per_second"), "written"),
        ),
        unit="rps",
    )


def bytes_per_second() -> Json:
    """Time series: bytes read and written per second."""
    return timeseries(
        "Bytes per second",
        "Bytes the job reads and writes per second (dli_job_read_bytes_per_second, "
        "dli_job_write_bytes_per_second). " + CLOUD_EYE,
        queries(
            (job("dli_job_read_bytes_per_second"), "read"),
            (job("dli_job_write_bytes_per_second"), "written"),
        ),
        unit="Bps",
    )


def backpressure_level() -> Json:
    """Time series: the backpressure level of the most back-pressured operator."""
    return timeseries(
        "Backpressure level",
        "Backpressure of the job's most back-pressured operator "
        "(dli_job_max_operator_backpressure_level: 0 OK, 50 low, 100 high). "
        "DliJobBackpressureHigh fires after 10 minutes at 100. " + CLOUD_EYE,
        queries((job("dli_job_max_operator_backpressure_level"), "backpressure")),
        unit="none",
        steps=True,
        threshold_line=BACKPRESSURE_LEVELS,
        overrides=[field_override("backpressure", {"max": 100})],
    )


def operator_latency() -> Json:
    """Time series: the maximum operator latency."""
    return timeseries(
        "Operator latency",
        "The job's maximum operator latency (dli_job_max_operator_latency_seconds). "
        f"DliJobOperatorLatencyHigh fires after 10 minutes above {LATENCY_ALERT_SECONDS}s "
        "(dashed line). " + CLOUD_EYE,
        queries((job("dli_job_max_operator_latency_seconds"), "max operator latency")),
        unit="s",
        threshold_line=((None, "green"), (LATENCY_ALERT_SECONDS, "red")),
    )


def cpu_and_memory() -> Json:
    """Time series: CPU and memory usage as ratios."""
    return timeseries(
        "CPU and memory usage",
        "The job's CPU and memory usage (dli_job_cpu_usage_ratio, dli_job_memory_usage_ratio; "
        "Cloud Eye's percentages / 100). " + CLOUD_EYE,
        queries(
            (job("dli_job_cpu_usage_ratio"), "CPU"),
            (job("dli_job_memory_usage_ratio"), "memory"),
        ),
        unit="percentunit",
        threshold_line=((None, "green"), (0.9, "orange")),
    )
