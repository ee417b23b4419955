"""Which jobs of a snapshot need an on-call's attention, and why, for the status page.

A job needs attention when it failed (a DLI failed status, with ``status_desc``), is in a
restart loop (Flink ``RESTARTING``, or more than `LOOP_RESTARTS` restarts within 15 minutes, the
alert rule's test), runs in DLI while Flink is not ``RUNNING``, or, from Cloud Eye, reads no
records while running (stalled) or is back-pressured (level `HIGH_BACKPRESSURE` or more). Pure
functions of one immutable `Snapshot`: no I/O, cheap enough to run on every page request.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from exporter.dli.cloudeye import CLOUD_EYE, METRIC_INDEX, CloudEyeData
from exporter.dli.failure import FAILED_STATUSES, failure_reason
from exporter.dli.jobmodel import JobState
from exporter.dli.resource import result_of
from exporter.restarts import LOOP_RESTARTS
from exporter.snapshot import Snapshot

__all__ = [
    "BACK_PRESSURED",
    "FAILED",
    "FLINK_NOT_RUNNING",
    "HIGH_BACKPRESSURE",
    "RESTART_LOOP",
    "STALLED",
    "Attention",
    "Problem",
    "needing_attention",
]

FAILED: Final = "failed"
RESTART_LOOP: Final = "restart loop"
FLINK_NOT_RUNNING: Final = "Flink not running"
STALLED: Final = "stalled"
BACK_PRESSURED: Final = "back-pressured"
#: Cloud Eye's "high" backpressure level.
HIGH_BACKPRESSURE: Final = 100.0

_READ_RATE: Final = METRIC_INDEX["flink_read_records_per_second"]
_BACKPRESSURE: Final = METRIC_INDEX["flink_max_op_backpressure_level"]
_LATENCY: Final = METRIC_INDEX["flink_max_op_latency"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a job needs attention: its kind, a one-line reason and optional detail."""

    kind: str
    reason: str
    #: Longer text, e.g. what DLI says about a failure (``status_desc``).
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Attention:
    """A job that needs attention and every problem it has, the worst first."""

    state: JobState
    problems: tuple[Problem, ...]


def needing_attention(snapshot: Snapshot) -> Iterator[Attention]:
    """The snapshot's jobs that need attention, in listing order."""
    result = result_of(snapshot, CLOUD_EYE)
    cloud_eye = None if result is None else result.data
    oldest = math.inf if cloud_eye is None else cloud_eye.published_since(snapshot)
    for state in snapshot.jobs:
        restarts = snapshot.recent_restarts.get(state.job.job_id, 0)
        problems = tuple(_problems(state, restarts, cloud_eye, oldest))
        if problems:
            yield Attention(state, problems)


def _problems(
    state: JobState, restarts: int, cloud_eye: CloudEyeData | None, oldest: float
) -> Iterator[Problem]:
    job = state.job
    if job.status in FAILED_STATUSES:
        reason = f"{job.status}: {failure_reason(job.status_desc)}"
        yield Problem(FAILED, reason, job.status_desc or "")
    if not job.is_running:
        return
    flink = state.graph.state if state.graph is not None else None
    if flink == "RESTARTING" or restarts > LOOP_RESTARTS:
        parts = [f"Flink state {flink}"] if flink == "RESTARTING" else []
        if restarts:
            parts.append(f"{restarts} restart{'s' if restarts != 1 else ''} in 15 min")
        yield Problem(RESTART_LOOP, "; ".join(parts))
    elif flink is not None and flink != "RUNNING":
        yield Problem(FLINK_NOT_RUNNING, f"DLI says job_running, Flink state {flink}")
    if cloud_eye is None:
        return
    if cloud_eye.recent(job.job_id, _READ_RATE, oldest) == 0:
        yield Problem(STALLED, "reads 0 records/s (Cloud Eye)")
    level = cloud_eye.recent(job.job_id, _BACKPRESSURE, oldest)
    if level is not None and level >= HIGH_BACKPRESSURE:
        latency = cloud_eye.recent(job.job_id, _LATENCY, oldest)
        extra = f", max operator latency {latency:.1f} s" if latency is not None else ""
        yield Problem(BACK_PRESSURED, f"backpressure level {level:g} (high){extra} (Cloud Eye)")
