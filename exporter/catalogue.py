"""The metric catalogue: every family the exporter derives from DLI, in exposition order.

The job families (`exporter.dli.jobrows`) come first, then one series per target about its
polls, then one per target and further resource (up, last success), then each resource's own
families (`exporter.dli.registry.RESOURCES`). Families are built anew from immutable snapshots
on every render, so a job that disappears from the listing disappears from ``/metrics`` with no
expiry code. Every family is always emitted with its HELP and TYPE lines, even without samples,
so the exposition's shape does not depend on the data. A field the API did not send gives no
sample.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from exporter.config import MetricOptions
from exporter.dli.jobrows import job_rows
from exporter.dli.registry import RESOURCES
from exporter.dli.resource import Resource
from exporter.metricspec import SECONDS, TARGET_LABELS, MetricSpec, Reading, target_row
from exporter.snapshot import Snapshot, SourceResult

__all__ = ["CATALOGUE", "TARGET_ROWS", "build_catalogue", "source_rows"]

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


def source_rows(resources: tuple[Resource[object], ...]) -> tuple[MetricSpec, ...]:
    """One series per target and further resource it polls: up, and the last success time."""
    names = tuple(resource.name for resource in resources)

    def per_source(
        value_of: Callable[[SourceResult[object]], float | None],
    ) -> Callable[[Snapshot], Iterable[Reading]]:
        def read(snapshot: Snapshot) -> Iterator[Reading]:
            for name in names:
                result = snapshot.sources.get(name)
                value = None if result is None else value_of(result)
                if value is not None:
                    yield (snapshot.target, name), float(value)

        return read

    labels = (*TARGET_LABELS, "source")
    return (
        MetricSpec(
            "dli_source_up",
            "gauge",
            "1 when the latest poll of the source (a resource beyond the job list) worked, 0 "
            "when it failed.",
            labels,
            per_source(lambda result: float(result.ok)),
        ),
        MetricSpec(
            "dli_source_last_success_timestamp_seconds",
            "gauge",
            "When the source was last polled successfully, as a unix timestamp in seconds.",
            labels,
            per_source(lambda result: result.last_success_time),
            SECONDS,
        ),
    )


@functools.cache  # a pure function of a few option sets: built once each, and comparable
def build_catalogue(
    options: MetricOptions, resources: tuple[Resource[object], ...] = RESOURCES
) -> tuple[MetricSpec, ...]:
    """Every family for ``options`` (the cardinality controls) and ``resources``, in order."""
    extra = tuple(spec for resource in resources for spec in resource.rows(options))
    return (*job_rows(options), *TARGET_ROWS, *source_rows(resources), *extra)


#: The catalogue with the default options.
CATALOGUE: Final = build_catalogue(MetricOptions())
