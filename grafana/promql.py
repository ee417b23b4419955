"""PromQL building blocks: the template-variable matchers and the job-state expressions."""

from __future__ import annotations

from typing import Final

TARGET: Final = 'target=~"$target"'
QUEUE: Final = 'queue_name=~"$queue"'
JOB: Final = 'job_id="$job"'
SCRAPE_JOB: Final = 'job=~"$scrape_job"'
#: DLI statuses that mean the job failed and needs a person (ops contract, alert DliJobFailed).
BAD_STATUSES: Final = (
    "job_submit_fail",
    "job_running_exception",
    "job_cancel_fail",
    "job_arrearage_stopped",
)
BAD_STATUS: Final = 'status=~"' + "|".join(BAD_STATUSES) + '"'


def sel(metric: str, *matchers: str) -> str:
    """A vector selector: ``metric{m1, m2}``."""
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def active(selector: str) -> str:
    """The samples of a state set that are 1: each series' current state."""
    return f"{selector} == 1"


def rate(selector: str, window: str = "5m") -> str:
    """Per-second rate of a counter over ``window``."""
    return f"rate({selector}[{window}])"


def increase(selector: str, window: str = "1h") -> str:
    """Increase of a counter over ``window``."""
    return f"increase({selector}[{window}])"


def count_or_zero(expr: str) -> str:
    """How many series ``expr`` has, 0 (not no data) when it has none."""
    return f"count({expr}) or vector(0)"


def milliseconds(seconds: str) -> str:
    """A Unix time in seconds as the milliseconds Grafana's date units expect."""
    return f"{seconds} * 1000"


def info_in_queue() -> str:
    """``dli_job_info`` of the selected targets and queues (to join queue_name or filter by it)."""
    return sel("dli_job_info", TARGET, QUEUE)


def in_queue(expr: str) -> str:
    """``expr`` restricted to jobs in the selected queues."""
    return f"({expr}) and on (target, job_id) {info_in_queue()}"


def bad_status() -> str:
    """Jobs whose DLI status is one of :data:`BAD_STATUSES` (value 1, label ``status``)."""
    return active(sel("dli_job_status", TARGET, BAD_STATUS))


def flink_not_running() -> str:
    """Jobs DLI calls running whose Flink state is something else (value 1, label ``state``)."""
    running = active(sel("dli_job_status", TARGET, 'status="job_running"'))
    flink = active(sel("dli_job_flink_state", TARGET, 'state!="RUNNING"'))
    return f"({flink}) and on (target, job_id) ({running})"


def targets_down() -> str:
    """Targets whose latest poll failed to list the jobs (``dli_up == 0``)."""
    return f"{sel('dli_up', TARGET)} == 0"
