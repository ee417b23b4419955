"""The metric catalogue: every family the exporter derives from DLI, in exposition order.

The job families (`exporter.dli.jobrows`) come first, then one series per target about its
polls, then each further resource's families (`exporter.dli.registry.RESOURCES`). Families
are built anew from immutable snapshots on every render, so a job that disappears from the
listing disappears from ``/metrics`` with no expiry code. Every family is always emitted with
its HELP and TYPE lines, even without samples, so the exposition's shape does not depend on the
data. A field the API did not send gives no sample.
"""

from __future__ import annotations

import functools
from typing import Final

from exporter.config import MetricOptions
from exporter.dli.jobrows import job_rows
from exporter.dli.registry import RESOURCES
from exporter.dli.resource import Resource
from exporter.metricspec import SECONDS, MetricSpec, target_row

__all__ = ["CATALOGUE", "TARGET_ROWS", "build_catalogue"]

#: One series per polled target, about its polls and its job list.
TARGET_ROWS: Final = (
    target_row(
        "dli_up",
        "1 when the latest poll of the target listed its jobs successfully, 0 when it failed.",
        lambda s: float(s.up),
    ),
    target_row(
        "dli_last_poll_success_timestamp_seconds",
        "When the target's jobs were last listed successfully, as a unix timestamp in seconds.",
        lambda s: s.last_success_time,
        unit=SECONDS,
    ),
    target_row(
        "dli_poll_duration_seconds",
        "How long the target's latest poll took, in seconds.",
        lambda s: s.poll_duration_seconds,
        unit=SECONDS,
    ),
    target_row(
        "dli_target_jobs",
        "Number of jobs published for the target (from its latest successful listing).",
        lambda s: len(s.jobs),
    ),
)


@functools.cache  # a pure function of a few option sets: built once each, and comparable
def build_catalogue(
    options: MetricOptions, resources: tuple[Resource[object], ...] = RESOURCES
) -> tuple[MetricSpec, ...]:
    """Every family for ``options`` (the cardinality controls) and ``resources``, in order."""
    extra = tuple(spec for resource in resources for spec in resource.rows(options))
    return (*job_rows(options), *TARGET_ROWS, *extra)


#: The catalogue with the default options.
CATALOGUE: Final = build_catalogue(MetricOptions())
