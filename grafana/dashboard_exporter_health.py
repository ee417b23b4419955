"""The exporter health: polls, DLI API traffic, errors and latency, build and config reload."""

from __future__ import annotations

from typing import Final

from grafana.board import dashboard, even_row, full_row
from grafana.panels import stat, state_timeline, timeseries
from grafana.presets import health_flag_stat, problem_count_stat, timestamp_stat, total_stat
from grafana.promql import SCRAPE_JOB, TARGET, rate, sel, targets_down
from grafana.schema import EXPORTER_HEALTH_UID, Json
from grafana.styles import TEXT, flag_mappings
from grafana.targets import queries, query
from grafana.variables import datasource_variable, scrape_job_variable, target_variable

#: The default poll interval (config ``poll_interval``); the exporter does not export it.
DEFAULT_POLL_INTERVAL_SECONDS: Final = 60
#: The latency quantiles shown: 0.5, 0.9 and 0.99.
LATENCY_QUANTILES: Final = (0.5, 0.9, 0.99)


def exporter_health() -> Json:
    """Exporter health: polls, DLI API traffic, errors and latency, build and config reload."""
    return dashboard(
        EXPORTER_HEALTH_UID,
        "DLI exporter health",
        "Is dli-exporter polling DLI: target and source status, poll timing, API requests, errors, "
        "latency.",
        [datasource_variable(), target_variable(), scrape_job_variable()],
        [
            even_row(
                4,
                targets_up(),
                targets_down_count(),
                exporter_scrape(),
                config_reload(),
                config_loaded(),
                version(),
            ),
            full_row(5, target_status()),
            full_row(5, source_status()),
            even_row(8, time_since_source_success(), cloud_eye_lag()),
            even_row(8, poll_duration(), time_since_last_poll()),
            even_row(8, api_requests_by_operation(), api_error_ratio()),
            even_row(8, api_requests_by_code(), api_latency_quantiles()),
            even_row(8, jobs_published(), average_api_latency()),
        ],
    )


# --- status -------------------------------------------------------------------------------------


def targets_up() -> Json:
    """Stat: targets whose latest poll worked."""
    return total_stat(
        "Targets up",
        "Targets whose latest poll listed the jobs (sum of dli_up).",
        sel("dli_up", TARGET),
        graph=False,
    )


def targets_down_count() -> Json:
    """Stat: targets whose latest poll failed."""
    return problem_count_stat(
        "Targets down",
        "Targets whose latest poll failed (dli_up == 0; alert DliTargetDown after 5 minutes).",
        targets_down(),
    )


def exporter_scrape() -> Json:
    """Stat: whether Prometheus scrapes the exporter."""
    return health_flag_stat(
        "Exporter scrape",
        "Whether Prometheus can scrape the exporter (up of the scrape job in the Scrape job "
        "variable; alert DliExporterAbsent).",
        f"min({sel('up', SCRAPE_JOB)})",
        bad_text="down",
        good_text="up",
    )


def config_reload() -> Json:
    """Stat: whether the latest configuration reload worked."""
    return health_flag_stat(
        "Config reload",
        "Whether the latest configuration reload (SIGHUP or POST /-/reload) worked; on failure "
        "the previous configuration stays in use (dli_config_last_reload_successful).",
        f"min({sel('dli_config_last_reload_successful', SCRAPE_JOB)})",
        bad_text="failed",
        good_text="ok",
    )


def config_loaded() -> Json:
    """Stat: when the configuration was last loaded."""
    loaded = sel("dli_config_last_reload_success_timestamp_seconds", SCRAPE_JOB)
    return timestamp_stat(
        "Config loaded",
        "When the configuration was last loaded successfully "
        "(dli_config_last_reload_success_timestamp_seconds).",
        f"max({loaded})",
        unit="dateTimeFromNow",
        steps=TEXT,
    )


def version() -> Json:
    """Stat: the exporter and Python version of each instance."""
    return stat(
        "Version",
        "Exporter and Python versions of each exporter instance (dli_exporter_build_info).",
        [
            query(
                sel("dli_exporter_build_info", SCRAPE_JOB),
                "{{version}} (Python {{python_version}})",
            )
        ],
        text_mode="name",
        steps=TEXT,
        unit="none",
    )


def target_status() -> Json:
    """State timeline: each target up or down over time."""
    return state_timeline(
        "Target status",
        "dli_up per target over time: up when the poll listed the jobs, down when listing "
        "failed (after retries).",
        [query(sel("dli_up", TARGET), "{{target}}")],
        mappings=flag_mappings(("down", "red"), ("up", "green")),
    )


def source_status() -> Json:
    """State timeline: each further source of each target up or down over time."""
    return state_timeline(
        "Source status",
        "dli_source_up per target and source (cloud_eye, queues, elastic_resource_pools) over "
        "time: down when the source's poll failed while the job list may still work (alert "
        "DliSourceDown after 15 minutes).",
        [query(sel("dli_source_up", TARGET), "{{target}} / {{source}}")],
        mappings=flag_mappings(("down", "red"), ("up", "green")),
    )


def time_since_source_success() -> Json:
    """Time series: the age of each source's data."""
    return timeseries(
        "Time since last successful source poll",
        "Age of each further source's data: now minus "
        "dli_source_last_success_timestamp_seconds, per target and source.",
        queries(
            (
                f"time() - {sel('dli_source_last_success_timestamp_seconds', TARGET)}",
                "{{target}} / {{source}}",
            )
        ),
        unit="s",
    )


def cloud_eye_lag() -> Json:
    """Time series: how old Cloud Eye's newest datapoint was when polled."""
    return timeseries(
        "Cloud Eye lag",
        "Age of the newest Cloud Eye datapoint when the poll read it (dli_cloud_eye_lag_seconds): "
        "how far the job throughput, latency, backpressure, CPU and memory panels are behind.",
        queries((sel("dli_cloud_eye_lag_seconds", TARGET), "{{target}}")),
        unit="s",
    )


# --- polls --------------------------------------------------------------------------------------


def poll_duration() -> Json:
    """Time series: poll duration against the default interval and the poll deadline."""
    interval = DEFAULT_POLL_INTERVAL_SECONDS
    return timeseries(
        "Poll duration",
        "How long each target's latest poll took (dli_poll_duration_seconds). The poll interval "
        f"is not exported: the dashed lines are the default {interval}s interval and the poll "
        "deadline (90% of it); move them (panel thresholds) if you configured another "
        "poll_interval.",
        queries((sel("dli_poll_duration_seconds", TARGET), "{{target}}")),
        unit="s",
        threshold_line=((None, "green"), (interval * 0.9, "orange"), (interval, "red")),
    )


def time_since_last_poll() -> Json:
    """Time series: the age of each target's data against the stale-data alert."""
    stale_after = 3 * DEFAULT_POLL_INTERVAL_SECONDS
    return timeseries(
        "Time since last successful poll",
        "Age of each target's data: now minus dli_last_poll_success_timestamp_seconds. "
        f"DliStaleData fires above 3 poll intervals ({stale_after}s with the default interval, "
        "dashed line); the job series are dropped at that age.",
        queries(
            (
                f"time() - {sel('dli_last_poll_success_timestamp_seconds', TARGET)}",
                "{{target}}",
            )
        ),
        unit="s",
        threshold_line=((None, "green"), (stale_after, "red")),
    )


def jobs_published() -> Json:
    """Time series: jobs published per target."""
    return timeseries(
        "Jobs published",
        "Jobs the exporter publishes per target (dli_target_jobs).",
        queries((sel("dli_target_jobs", TARGET), "{{target}}")),
        unit="short",
        decimals=0,
    )


# --- DLI and IAM API ----------------------------------------------------------------------------


def api_requests_by_operation() -> Json:
    """Time series: API request rate per operation."""
    return timeseries(
        "API requests by operation",
        "DLI and IAM API requests per second, retries included "
        "(target_operation:dli_api_requests:rate5m).",
        queries(
            (sel("target_operation:dli_api_requests:rate5m", TARGET), "{{target}} {{operation}}")
        ),
        unit="reqps",
    )


def api_error_ratio() -> Json:
    """Time series: API error ratio per operation against the alert's 20%."""
    ratio = sel("target_operation:dli_api_request_errors:ratio_rate5m", TARGET)
    return timeseries(
        "API error ratio by operation",
        "Share of API requests that did not get a 2xx answer, over 5 minutes "
        "(target_operation:dli_api_request_errors:ratio_rate5m). DliApiErrorRatioHigh fires "
        "above 20% (dashed line).",
        queries((ratio, "{{target}} {{operation}}")),
        unit="percentunit",
        threshold_line=((None, "green"), (0.2, "red")),
    )


def api_requests_by_code() -> Json:
    """Time series: API request rate per operation and result, stacked."""
    requests = rate(sel("dli_api_requests_total", TARGET))
    return timeseries(
        "API requests by code",
        "API requests per second by operation and result: HTTP status, timeout, or error "
        "(connection failure or unusable body), stacked.",
        queries((f"sum by (operation, code) ({requests})", "{{operation}} {{code}}")),
        unit="reqps",
        stacked=True,
    )


def api_latency_quantiles() -> Json:
    """Time series: latency quantiles per operation from the request duration histogram."""
    buckets = rate(sel("dli_api_request_duration_seconds_bucket", TARGET))
    return timeseries(
        "API latency quantiles",
        "Median, 90th and 99th percentile of API request latency by operation over 5 minutes "
        "(dli_api_request_duration_seconds).",
        queries(
            *(
                (
                    f"histogram_quantile({q}, sum by (operation, le) ({buckets}))",
                    f"p{round(q * 100)} {{{{operation}}}}",
                )
                for q in LATENCY_QUANTILES
            )
        ),
        unit="s",
    )


def average_api_latency() -> Json:
    """Time series: mean API latency per operation."""
    total = rate(sel("dli_api_request_duration_seconds_sum", TARGET))
    count = rate(sel("dli_api_request_duration_seconds_count", TARGET))
    return timeseries(
        "Average API latency",
        "Mean API request latency by operation over 5 minutes.",
        queries(
            (f"sum by (operation) ({total})\n/\nsum by (operation) ({count})", "{{operation}}")
        ),
        unit="s",
    )
