"""The DLI Flink jobs overview: job counts, jobs in a bad state, restarts, CUs and capacity."""

from __future__ import annotations

from typing import Final

from grafana.board import dashboard, even_row, full_row
from grafana.panels import bargauge, job_detail_link, table, timeseries
from grafana.presets import problem_count_stat, total_stat
from grafana.promql import (
    BAD_STATUSES,
    QUEUE,
    TARGET,
    active,
    bad_status,
    flink_not_running,
    in_queue,
    increase,
    info_in_queue,
    sel,
    targets_down,
)
from grafana.schema import OVERVIEW_UID, Json
from grafana.styles import (
    BLUE,
    FLINK_STATE_COLORS,
    STATUS_COLORS,
    color_overrides,
    decimals_column,
    field_override,
    fixed_color_column,
    state_color_column,
)
from grafana.targets import queries, query, ref_id, table_query
from grafana.variables import datasource_variable, queue_variable, target_variable

#: The columns naming a job, first in both job tables.
JOB_COLUMNS: Final = {
    "target": "Target",
    "job_name": "Job",
    "job_id": "Job ID",
    "queue_name": "Queue",
}
#: label_replace arguments showing an empty queue_name as "(none)".
NO_QUEUE: Final = '"queue_name", "(none)", "queue_name", ""'
#: DliQueueSaturated's threshold: the share of a queue's CUs in use.
QUEUE_SATURATED_RATIO: Final = 0.9
#: The elastic resource pool series shown: dli_elastic_resource_pool_<name>_compute_units.
POOL_SERIES: Final = ("current", "actual", "max", "min")


def overview() -> Json:
    """DLI Flink jobs overview: counts, bad jobs, restarts and compute units."""
    return dashboard(
        OVERVIEW_UID,
        "DLI Flink jobs overview",
        "Huawei Cloud DLI Flink jobs seen by dli-exporter: status, failures, restarts, CUs, and "
        "the capacity of queues and elastic resource pools.",
        [datasource_variable(), target_variable(), queue_variable()],
        [
            even_row(
                4,
                running_jobs(),
                jobs_not_running(),
                jobs_in_a_failed_status(),
                running_but_not_in_flink(),
                configured_cus(),
                targets_down_count(),
            ),
            even_row(9, jobs_by_status(), configured_cus_by_queue()),
            full_row(8, bad_jobs_table()),
            full_row(8, failed_jobs_table()),
            even_row(9, top_restarting_jobs(), actual_cus_by_queue()),
            even_row(9, queue_capacity(), queue_usage(), pool_capacity()),
            full_row(12, jobs_table()),
        ],
    )


# --- counts -------------------------------------------------------------------------------------


def running_jobs() -> Json:
    """Stat: jobs in DLI status job_running."""
    return total_stat(
        "Running jobs",
        "Jobs whose DLI status is job_running (recording rule target:dli_jobs_running:count; "
        "the queue filter does not apply).",
        sel("target:dli_jobs_running:count", TARGET),
    )


def jobs_not_running() -> Json:
    """Stat: jobs in any other DLI status."""
    return total_stat(
        "Jobs not running",
        "Jobs in any other DLI status, stopped and finished ones included (recording rule "
        "target:dli_jobs_not_running:count; the queue filter does not apply).",
        sel("target:dli_jobs_not_running:count", TARGET),
        steps=BLUE,
    )


def jobs_in_a_failed_status() -> Json:
    """Stat: jobs in one of the bad DLI statuses."""
    return problem_count_stat(
        "Jobs in a failed status",
        "Jobs whose DLI status is " + ", ".join(BAD_STATUSES) + " (alert DliJobFailed).",
        in_queue(bad_status()),
    )


def running_but_not_in_flink() -> Json:
    """Stat: jobs DLI calls running that Flink does not."""
    return problem_count_stat(
        "Running but not RUNNING in Flink",
        "Jobs DLI reports as job_running whose Flink state (execute-graph) is not RUNNING "
        "(alert DliJobNotRunningInFlink).",
        in_queue(flink_not_running()),
    )


def configured_cus() -> Json:
    """Stat: compute units configured for the selected jobs."""
    return total_stat(
        "Configured CUs",
        "Sum of the compute units configured for the jobs of the selected targets and queues, "
        "whatever their status (target_queue:dli_job_compute_units:sum).",
        sel("target_queue:dli_job_compute_units:sum", TARGET, QUEUE),
        steps=BLUE,
    )


def targets_down_count() -> Json:
    """Stat: targets whose latest poll failed."""
    return problem_count_stat(
        "Targets down",
        "Targets whose latest poll failed to list the jobs (dli_up == 0); their job series are "
        "the last good ones. See Exporter health.",
        targets_down(),
    )


# --- trends -------------------------------------------------------------------------------------


def jobs_by_status() -> Json:
    """Time series: jobs per DLI status, stacked, in the status colours."""
    return timeseries(
        "Jobs by DLI status",
        "Number of jobs in each DLI status over time, stacked (target_status:dli_jobs:count; "
        "the queue filter does not apply).",
        queries((f"sum by (status) ({sel('target_status:dli_jobs:count', TARGET)})", "{{status}}")),
        unit="short",
        stacked=True,
        decimals=0,
        legend_table=True,
        overrides=color_overrides(STATUS_COLORS),
    )


def configured_cus_by_queue() -> Json:
    """Time series: configured compute units per queue."""
    return cus_by_queue(
        "Configured CUs by queue",
        "Compute units configured for the jobs of each queue and target, stacked, whatever the "
        "jobs' status (target_queue:dli_job_compute_units:sum). (none): jobs without a queue.",
        "target_queue:dli_job_compute_units:sum",
    )


def actual_cus_by_queue() -> Json:
    """Time series: compute units in use per queue."""
    return cus_by_queue(
        "Actual CUs by queue",
        "Compute units the jobs of each queue and target actually use (real_cu_number, or "
        "cu_number when DLI reports 0), stacked (target_queue:dli_job_actual_compute_units:sum).",
        "target_queue:dli_job_actual_compute_units:sum",
    )


def cus_by_queue(title: str, description: str, rule: str) -> Json:
    """Time series of a per-queue compute unit recording rule, stacked by target and queue."""
    expr = f"label_replace({sel(rule, TARGET, QUEUE)}, {NO_QUEUE})"
    return timeseries(
        title,
        description,
        queries((expr, "{{target}} / {{queue_name}}")),
        unit="short",
        stacked=True,
        legend_table=True,
    )


def top_restarting_jobs() -> Json:
    """Bar gauge: the jobs restarted most in the last hour, each bar linking to its detail."""
    restarts = in_queue(increase(sel("dli_job_restarts_total", TARGET)))
    expr = f"topk(10,\n  max by (target, job_id, job_name) (\n    {restarts}\n  ) > 0\n)"
    return bargauge(
        "Top restarting jobs (last hour)",
        "The 10 jobs DLI restarted most in the last hour (increase(dli_job_restarts_total[1h]); "
        "alert DliJobRestartLoop fires above 3 in 15 minutes). Click a bar for the job's detail.",
        [query(expr, "{{job_name}} ({{target}})", instant=True)],
        unit="short",
        links=[job_detail_link("${__field.labels.target}", "${__field.labels.job_id}")],
    )


# --- job tables ---------------------------------------------------------------------------------


def table_row_detail_link() -> Json:
    """A data link from a table row to the detail dashboard of its job."""
    return job_detail_link("${__data.fields.target}", "${__data.fields.job_id}")


def bad_jobs_table() -> Json:
    """Table: jobs in a bad DLI status or not RUNNING in Flink, with their restart count."""
    return table(
        "Jobs in a bad state",
        "Jobs whose DLI status means failure (" + ", ".join(BAD_STATUSES) + "), and jobs DLI "
        "reports as job_running whose Flink state is not RUNNING (e.g. RESTARTING, FAILING). "
        "Click a row for the job's detail dashboard.",
        [table_query(bad_jobs_query(), "A"), table_query(bad_jobs_restarts_query(), "B")],
        columns={**JOB_COLUMNS, "problem": "Problem", "Value #B": "Restarts"},
        overrides=[fixed_color_column("Problem", "red"), decimals_column("Restarts")],
        links=[table_row_detail_link()],
        sort_by="Target",
    )


def bad_jobs_query() -> str:
    """Each job in a bad state with its queue and a ``problem`` label saying what is wrong."""
    dli = problem_labelled(bad_status(), "DLI status $1", "status")
    flink = problem_labelled(flink_not_running(), "Flink state $1 (DLI: job_running)", "state")
    return f"max by (target, job_id, job_name, queue_name, problem) (\n{dli}  or\n{flink})"


def problem_labelled(expr: str, problem: str, source_label: str) -> str:
    """``expr`` joined with the job's queue, and labelled ``problem`` from ``source_label``."""
    return (
        "  label_replace(\n"
        f"    ({expr})\n"
        f"      * on (target, job_id) group_left (queue_name) {info_in_queue()},\n"
        f'    "problem", "{problem}", "{source_label}", "(.+)"\n'
        "  )\n"
    )


def bad_jobs_restarts_query() -> str:
    """The restart counter of each job in a bad state."""
    bad_any = f"({bad_status()}) or ({flink_not_running()})"
    return (
        "max by (target, job_id, job_name) (\n"
        f"  {sel('dli_job_restarts_total', TARGET)}\n"
        f"  and on (target, job_id) ({bad_any})\n"
        f"  and on (target, job_id) {info_in_queue()}\n"
        ")"
    )


def jobs_table() -> Json:
    """Table: every selected job with its status, Flink state, restarts, CUs and run time."""
    return table(
        "Jobs",
        "Every job of the selected targets and queues with its DLI status, Flink state (running "
        "jobs only), restart count, configured CUs and run time. Click a row for its detail.",
        jobs_table_queries(),
        columns={
            **JOB_COLUMNS,
            "job_type": "Type",
            "status": "DLI status",
            "state": "Flink state",
            "Value #C": "Restarts",
            "Value #D": "CUs",
            "Value #E": "Running for",
        },
        overrides=[
            state_color_column("DLI status", STATUS_COLORS),
            state_color_column("Flink state", FLINK_STATE_COLORS),
            decimals_column("Restarts"),
            field_override("Running for", {"unit": "dtdurations"}),
        ],
        links=[table_row_detail_link()],
        sort_by="Job",
    )


def jobs_table_queries() -> list[Json]:
    """The jobs table's queries: status and type (A), Flink state (B), then C, D, E one value
    per job, each restricted to the selected queues."""
    status = (
        "max by (target, job_id, job_name, queue_name, job_type, status) (\n"
        f"  ({active(sel('dli_job_status', TARGET))})\n"
        "    * on (target, job_id) group_left (queue_name, job_type)\n"
        f"    {info_in_queue()}\n"
        ")"
    )
    per_job = (
        ("target, job_id, job_name, state", active(sel("dli_job_flink_state", TARGET))),
        ("target, job_id, job_name", sel("dli_job_restarts_total", TARGET)),
        ("target, job_id, job_name", sel("dli_job_compute_units", TARGET)),
        ("target, job_id, job_name", sel("dli_job_duration_seconds", TARGET)),
    )
    return [table_query(status, "A")] + [
        table_query(f"max by ({labels}) ({in_queue(expr)})", ref_id(index))
        for index, (labels, expr) in enumerate(per_job, start=1)
    ]


def failed_jobs_table() -> Json:
    """Table: the jobs in a failed DLI status, with the reason DLI gave."""
    return table(
        "Failed jobs and why",
        "Jobs in a failed DLI status (" + ", ".join(BAD_STATUSES) + ") with the reason from "
        "DLI's status_desc (dli_job_failure_info: the exception class or error code; 'none' when "
        "DLI gave none, 'unrecognized' when it could not be read) and their restart count. "
        "Click a row for the job's detail dashboard.",
        [
            table_query(failure_reason_query(), "A"),
            table_query(failed_status_query(), "B"),
            table_query(failed_restarts_query(), "C"),
        ],
        columns={**JOB_COLUMNS, "status": "DLI status", "reason": "Reason", "Value #C": "Restarts"},
        overrides=[
            state_color_column("DLI status", STATUS_COLORS),
            fixed_color_column("Reason", "red"),
            decimals_column("Restarts"),
        ],
        links=[table_row_detail_link()],
        sort_by="Target",
    )


def failure_reason_query() -> str:
    """Each failed job's reason, with its queue."""
    return (
        "max by (target, job_id, job_name, queue_name, reason) (\n"
        f"  ({active(sel('dli_job_failure_info', TARGET))})\n"
        f"    * on (target, job_id) group_left (queue_name) {info_in_queue()}\n"
        ")"
    )


def failed_status_query() -> str:
    """The failed DLI status of each job in the selected queues."""
    return f"max by (target, job_id, job_name, status) (\n  {in_queue(bad_status())}\n)"


def failed_restarts_query() -> str:
    """The restart counter of each job in a failed DLI status."""
    return (
        "max by (target, job_id, job_name) (\n"
        f"  {sel('dli_job_restarts_total', TARGET)}\n"
        f"  and on (target, job_id) ({bad_status()})\n"
        f"  and on (target, job_id) {info_in_queue()}\n"
        ")"
    )


# --- capacity -----------------------------------------------------------------------------------


def queue(metric: str) -> str:
    """``metric`` of the selected targets' selected queues."""
    return sel(metric, TARGET, QUEUE)


def queue_capacity() -> Json:
    """Time series: used and total compute units per queue."""
    return timeseries(
        "Queue capacity",
        "Compute units each queue has (dli_queue_compute_units, cu_count) and uses "
        "(dli_queue_used_compute_units, used_cu), from the queue list. Queues without jobs only "
        "appear with the queue filter at All.",
        queries(
            (queue("dli_queue_used_compute_units"), "{{target}} / {{queue_name}} used"),
            (queue("dli_queue_compute_units"), "{{target}} / {{queue_name}} total"),
        ),
        unit="short",
        legend_table=True,
    )


def queue_usage() -> Json:
    """Time series: the share of each queue's compute units in use."""
    expr = f"{queue('dli_queue_used_compute_units')}\n  /\n({queue('dli_queue_compute_units')} > 0)"
    return timeseries(
        "Queue usage",
        "Share of each queue's compute units in use (used_cu / cu_count; queues with 0 CUs left "
        f"out). DliQueueSaturated fires after 10 minutes above {QUEUE_SATURATED_RATIO:.0%} "
        "(dashed line).",
        queries((expr, "{{target}} / {{queue_name}}")),
        unit="percentunit",
        legend_table=True,
        threshold_line=((None, "green"), (QUEUE_SATURATED_RATIO, "red")),
    )


def pool_capacity() -> Json:
    """Time series: current and actual compute units of each pool against its range."""
    return timeseries(
        "Elastic resource pool capacity",
        "Compute units of each elastic resource pool: current and actual against its minimum "
        "and maximum (dli_elastic_resource_pool_*_compute_units). DliElasticResourcePoolAtMax "
        "fires after 15 minutes with current at max. The queue filter does not apply.",
        queries(
            *(
                (
                    sel(f"dli_elastic_resource_pool_{name}_compute_units", TARGET),
                    "{{target}} / {{elastic_resource_pool}} " + name,
                )
                for name in POOL_SERIES
            )
        ),
        unit="short",
        legend_table=True,
    )
