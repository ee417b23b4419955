"""`RestartHistory`: how often each job of one target restarted within the last 15 minutes.

The status page's "restart loop" is the alert rule's: ``restart_times`` grew by more than
`LOOP_RESTARTS` within `WINDOW_SECONDS` (``dli_job_restarts_total -
min_over_time(dli_job_restarts_total[15m]) > 3``). Only changes of the count are kept, at most
`MAX_CHANGES` per job, and only for the jobs of the latest listing: bounded by the job count.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from exporter.dli.jobmodel import FlinkJob

__all__ = ["LOOP_RESTARTS", "MAX_CHANGES", "WINDOW_SECONDS", "RestartHistory"]

#: The window the restarts are counted in.
WINDOW_SECONDS: Final = 15 * 60.0
#: More restarts than this within the window is a restart loop.
LOOP_RESTARTS: Final = 3
#: Changes kept per job; beyond that the oldest go (the count then is a lower bound).
MAX_CHANGES: Final = 32


class RestartHistory:
    """Per job: the times its ``restart_times`` changed, within the window (owned by a poller)."""

    __slots__ = ("_changes",)

    def __init__(self) -> None:
        #: job id -> (monotonic time, restart_times) at each change, oldest first
        self._changes: dict[int, deque[tuple[float, int]]] = {}

    def record(self, jobs: Iterable[FlinkJob], now: float) -> Mapping[int, int]:
        """Note the listed ``jobs``' counts at ``now``; returns the restarts in the window, for
        the jobs that restarted in it. Jobs no longer listed are forgotten."""
        changes: dict[int, deque[tuple[float, int]]] = {}
        recent: dict[int, int] = {}
        start = now - WINDOW_SECONDS
        for job in jobs:
            count = job.restart_times
            if count is None:
                continue
            history = self._changes.get(job.job_id) or deque(maxlen=MAX_CHANGES)
            if not history or history[-1][1] != count:
                history.append((now, count))
            # Keep one change at or before the window's start: the count the window began with.
            while len(history) > 1 and history[1][0] <= start:
                history.popleft()
            changes[job.job_id] = history
            grown = count - min(value for _, value in history)
            if grown > 0:
                recent[job.job_id] = grown
        self._changes = changes
        return MappingProxyType(recent)
