"""Job lifecycles: how a simulated job moves from status to status, one event at a time.

Each step mutates a `SimJob` as of a given time with a caller's random generator and says when
the job's next event is due; reading no clock, it replays exactly under a seeded simulation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from exporter.simulator.jobs import (
    LIVE_STATUSES,
    RUNNING,
    STATUS_DESC,
    STOPPED_FLINK_STATE,
    STOPPED_STATUSES,
    SimJob,
    new_jid,
)

__all__ = ["step"]

#: A lifecycle step mutates the job as of ``now_ms`` and returns seconds until its next step.
_Step = Callable[[SimJob, int, random.Random], float]


def step(job: SimJob, now_ms: int, rng: random.Random) -> float:
    """Move ``job`` one event along its lifecycle; returns seconds until its next event."""
    handler = _STEPS.get(job.status)
    if handler is None:  # an unknown status, set by a test: leave it alone
        return 60.0
    return handler(job, now_ms, rng)


def _set_status(job: SimJob, status: str, now_ms: int, flink_state: str | None = None) -> None:
    if job.status in LIVE_STATUSES and status not in LIVE_STATUSES and job.start_time_ms > 0:
        job.end_time_ms = now_ms
    job.status = status
    job.status_desc = STATUS_DESC.get(status, "")
    job.update_time_ms = now_ms
    if flink_state is not None:
        job.flink_state = flink_state
    elif status in STOPPED_FLINK_STATE:
        job.flink_state = STOPPED_FLINK_STATE[status]


def _start(job: SimJob, now_ms: int, rng: random.Random) -> float:
    """A (re)submitted job comes up: a new Flink job id and start time."""
    _set_status(job, RUNNING, now_ms, "INITIALIZING")
    job.start_time_ms = now_ms
    job.end_time_ms = None
    job.jid = new_jid(rng)
    return rng.uniform(2, 6)


def _step_init(job: SimJob, now_ms: int, rng: random.Random) -> float:
    if rng.random() < 0.3:
        _set_status(job, "job_submitting", now_ms)
        return rng.uniform(5, 30)
    return rng.uniform(60, 300)


def _step_submitting(job: SimJob, now_ms: int, rng: random.Random) -> float:
    if rng.random() < 0.12:
        _set_status(job, "job_submit_fail", now_ms)
        return rng.uniform(60, 600)
    return _start(job, now_ms, rng)


def _step_running(job: SimJob, now_ms: int, rng: random.Random) -> float:
    if job.flink_state == "INITIALIZING":
        job.flink_state = "CREATED"
        return rng.uniform(2, 6)
    if job.flink_state == "RESTARTING":
        if rng.random() < 0.2:
            _set_status(job, "job_running_exception", now_ms)
            return rng.uniform(60, 300)
        job.flink_state = "RUNNING"
        return rng.uniform(20, 120)
    if job.flink_state != "RUNNING":  # CREATED, or anything a test set
        job.flink_state = "RUNNING"
        return rng.uniform(20, 120)
    return _running_event(job, now_ms, rng)


def _running_event(job: SimJob, now_ms: int, rng: random.Random) -> float:
    # Per event (every ~70 s) a running job mostly keeps running; it stops for good about once
    # in 15 events, so about three quarters of a long-lived population runs.
    roll = rng.random()
    if roll < 0.08:
        job.flink_state = "RESTARTING"
        job.restart_times += 1
        return rng.uniform(5, 20)
    if roll < 0.13:
        _set_status(job, "job_savepointing", now_ms)
        return rng.uniform(5, 15)
    if roll < 0.16:
        _set_status(job, "job_canceling", now_ms)
        return rng.uniform(3, 10)
    if roll < 0.175:
        _set_status(job, "job_finish", now_ms)
        return rng.uniform(60, 300)
    if roll < 0.18:
        _set_status(job, "job_arrearage_stopped", now_ms)
        return rng.uniform(60, 300)
    return rng.uniform(20, 120)


def _step_savepointing(job: SimJob, now_ms: int, rng: random.Random) -> float:
    _set_status(job, RUNNING, now_ms, "RUNNING")
    job.has_savepoint = True
    return rng.uniform(20, 120)


def _step_canceling(job: SimJob, now_ms: int, rng: random.Random) -> float:
    if rng.random() < 0.1:
        _set_status(job, "job_cancel_fail", now_ms, "RUNNING")
        return rng.uniform(10, 60)
    _set_status(job, "job_cancel_success", now_ms)
    return rng.uniform(60, 600)


def _step_cancel_fail(job: SimJob, now_ms: int, rng: random.Random) -> float:
    if rng.random() < 0.5:
        _set_status(job, "job_canceling", now_ms)
        return rng.uniform(3, 10)
    _set_status(job, RUNNING, now_ms, "RUNNING")
    return rng.uniform(20, 120)


def _step_arrearage(job: SimJob, now_ms: int, rng: random.Random) -> float:
    _set_status(job, "job_arrearage_recovering", now_ms)
    return rng.uniform(10, 60)


def _step_stopped(job: SimJob, now_ms: int, rng: random.Random) -> float:
    """Someone resubmits a stopped job now and then (it keeps its id and restart count)."""
    if rng.random() < 0.5:
        _set_status(job, "job_submitting", now_ms)
        return rng.uniform(5, 30)
    return rng.uniform(60, 300)


def _step_resubmit(job: SimJob, now_ms: int, rng: random.Random) -> float:
    _set_status(job, "job_submitting", now_ms)
    return rng.uniform(5, 30)


_STEPS: Final[dict[str, _Step]] = {
    "job_init": _step_init,
    "job_submitting": _step_submitting,
    RUNNING: _step_running,
    "job_savepointing": _step_savepointing,
    "job_canceling": _step_canceling,
    "job_cancel_fail": _step_cancel_fail,
    "job_arrearage_stopped": _step_arrearage,
    "job_arrearage_recovering": _start,
    "job_downloading": _step_resubmit,
    "job_idle": _step_resubmit,
    **dict.fromkeys(STOPPED_STATUSES, _step_stopped),
}
