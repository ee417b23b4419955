"""`LoopLag`: how late the event loop runs a task that asked to wake up, as a self-metric.

A task sleeps `INTERVAL` seconds over and over; each wake-up later than asked is the time the
loop spent on something else that would not yield (a long render step, a garbage-collection
pause, a blocking call). The lag goes into ``dli_exporter_event_loop_lag_seconds``, a histogram
whose buckets include 0.1 s, so ``count - bucket{le="0.1"}`` counts the stalls over 100 ms.
"""

from __future__ import annotations

import asyncio
from typing import Final

from prometheus_client import CollectorRegistry, Histogram

__all__ = ["INTERVAL", "LAG_BUCKETS", "LoopLag"]

#: How often the probe asks to be woken, in seconds.
INTERVAL: Final = 0.1
#: Lag buckets in seconds: from a busy but healthy loop to a stall scrapes would notice.
LAG_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LoopLag:
    """Measures the event loop's lag into ``registry`` while `run` runs."""

    def __init__(self, registry: CollectorRegistry, interval: float = INTERVAL) -> None:
        self._interval = interval
        self._lag = Histogram(
            "dli_exporter_event_loop_lag_seconds",
            "How much later than asked the event loop woke a task sleeping 100 ms, in seconds.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )

    async def run(self) -> None:
        """Probe until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            self._lag.observe(max(0.0, loop.time() - asked))
