"""Bench only: what `bench/scale.py` reads from the exporter's own ``/metrics``.

A line parse of the few families it needs (a full parse of 300k series takes too long): the
event-loop lag histogram, ``dli_api_requests_total`` by operation, the running jobs and pools of
each target; and the API calls a full round needs at least.
"""

from __future__ import annotations

import gzip
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Final

from _cycle_records import ces_batches, list_pages

from exporter.dli.api import (
    BATCH_QUERY_METRIC_DATA,
    EXECUTE_GRAPH,
    LIST_ELASTIC_RESOURCE_POOLS,
    LIST_JOBS,
    LIST_QUEUES,
)

LAG_FAMILY: Final = "dli_exporter_event_loop_lag_seconds"
REQUESTS_SAMPLE: Final = "dli_api_requests_total"
STATUS_FAMILY: Final = "dli_job_status"
POOL_SAMPLE: Final = "dli_elastic_resource_pool_max_compute_units"
LAST_SUCCESS: Final = "dli_last_poll_success_timestamp_seconds"
RUNNING: Final = "job_running"
#: A stall is a lag over this many seconds (the histogram has a bucket here).
STALL_SECONDS: Final = 0.1
_LABEL: Final = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_PREFIXES: Final = (
    LAG_FAMILY,
    REQUESTS_SAMPLE,
    STATUS_FAMILY + "{",
    POOL_SAMPLE + "{",
    LAST_SUCCESS + "{",
)


@dataclass(slots=True)
class Sample:
    """What one scrape said about the families `bench/scale.py` reads."""

    #: ``le`` bound (``math.inf`` for +Inf) -> cumulative count, and the count itself.
    lag_buckets: dict[float, float] = field(default_factory=dict)
    lag_count: float = 0.0
    #: Successful (2xx) and all API requests so far, by operation.
    calls: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    failed_calls: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: Running jobs and elastic resource pools by target.
    running: Counter[str] = field(default_factory=Counter)
    pools: Counter[str] = field(default_factory=Counter)
    #: The end of each target's last successful poll (Unix seconds).
    last_success: dict[str, float] = field(default_factory=dict)


def _split(line: str) -> tuple[str, dict[str, str], float]:
    name, _, rest = line.partition("{")
    if not rest:
        name, _, value = line.partition(" ")
        return name, {}, float(value.split()[0])
    labels_text, _, value = rest.rpartition("}")
    labels = dict(_LABEL.findall(labels_text))
    return name, labels, float(value.split()[0])


def parse(body: bytes) -> Sample:
    """Read a (gzip or plain) exposition's lag, API request, job status and pool lines."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    sample = Sample()
    for line in body.decode().splitlines():
        if not line.startswith(_PREFIXES):
            continue
        name, labels, value = _split(line)
        if name == LAG_FAMILY + "_bucket":
            bound = labels["le"]
            sample.lag_buckets[math.inf if bound == "+Inf" else float(bound)] = value
        elif name == LAG_FAMILY + "_count":
            sample.lag_count = value
        elif name == REQUESTS_SAMPLE:
            sample.calls[labels["operation"]] += value
            if not labels.get("code", "").startswith("2"):
                sample.failed_calls[labels["operation"]] += value
        elif name == STATUS_FAMILY:
            state = labels.get("status", labels.get(STATUS_FAMILY))
            if state == RUNNING and value == 1.0:
                sample.running[labels["target"]] += 1
        elif name == POOL_SAMPLE:
            sample.pools[labels["target"]] += 1
        elif name == LAST_SUCCESS:
            sample.last_success[labels["target"]] = value
    return sample


def polled_since(before: Sample, after: Sample, targets: list[str], seconds: float) -> bool:
    """Every target's last successful poll in ``after`` ended ``seconds`` or more after the one
    in ``before``."""
    return all(
        after.last_success.get(name, 0.0) - before.last_success.get(name, 0.0) >= seconds
        for name in targets
    )


@dataclass(frozen=True, slots=True)
class Stalls:
    """The loop-lag probes between two scrapes."""

    probes: int
    over_100ms: int
    #: The smallest bucket bound at or above every lag seen (``None``: no probe).
    longest_at_most: float | None


def stalls(before: Sample | None, after: Sample) -> Stalls:
    """The lag probes after ``before`` (``None``: since the start) up to ``after``."""
    start = before or Sample()
    count = after.lag_count - start.lag_count
    longest: float | None = None
    below = 0.0
    for bound in sorted(after.lag_buckets):
        cumulative = after.lag_buckets[bound] - start.lag_buckets.get(bound, 0.0)
        if cumulative > below:
            longest = bound
        below = cumulative
    over = count - (
        after.lag_buckets.get(STALL_SECONDS, 0.0) - start.lag_buckets.get(STALL_SECONDS, 0.0)
    )
    return Stalls(int(count), int(over), longest)


def minimum_calls(
    jobs: int, targets: list[str], latest: Sample, *, sources: bool
) -> dict[str, int]:
    """The fewest API calls one full round of ``targets`` (``jobs`` jobs each) can make.

    Per target: the list pages as the client pages them (`list_pages`: pages overlap by one
    job), one execute graph per running job, and with the sources on ceil(12 x running / 500)
    Cloud Eye batches, one queue list and the pool pages. The running jobs and the pools per
    target are read from ``latest``, as the exporter reports them.
    """
    running = latest.running
    minimum = {
        LIST_JOBS: len(targets) * list_pages(jobs),
        EXECUTE_GRAPH: sum(running[name] for name in targets),
    }
    if sources:
        minimum[BATCH_QUERY_METRIC_DATA] = sum(ces_batches(running[name]) for name in targets)
        minimum[LIST_QUEUES] = len(targets)
        minimum[LIST_ELASTIC_RESOURCE_POOLS] = sum(
            list_pages(latest.pools[name]) for name in targets
        )
    return minimum
