"""A token bucket that spaces out one target's API calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    """Allows ``rate`` acquisitions per second on average, in bursts of at most ``burst``.

    Over any one-second window at most ``rate + burst`` calls get through. Waiters are served in
    arrival order.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._capacity = max(1.0, burst if burst is not None else rate)
        self._tokens = self._capacity
        self._monotonic = monotonic
        self._updated = monotonic()
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float:
        """Acquisitions per second, on average."""
        return self._rate

    @property
    def burst(self) -> float:
        """The most acquisitions granted at once after a quiet spell."""
        return self._capacity

    async def acquire(self) -> None:
        """Wait until a call may go out, and take its token."""
        async with self._lock:
            while True:
                now = self._monotonic()
                self._tokens = min(
                    self._capacity, self._tokens + (now - self._updated) * self._rate
                )
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)
