"""`Traffic`: what the gateway does to every request whatever it asks: latency, throttling, log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["UNKNOWN", "RequestRecord", "Traffic"]

#: The operation logged for a request no route matches.
UNKNOWN: Final = "unknown"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the simulator answered (rejected ones included)."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    status: int
    access_key: str | None
    #: ``list_jobs``, ``execute_graph``, ``iam_token`` or ``unknown``.
    operation: str
    #: The IAM user: who asked for a token, or whose token authenticated a DLI request.
    user: str | None = None


class Traffic:
    """Latency, a token-bucket throttle and the request log, on ``clock`` (unix seconds).

    ``latency`` seconds are slept per request; ``rate_limit`` (requests per second, all callers
    together; ``None``: unlimited) is what `admit` enforces. Past ``log_limit`` records the
    oldest half of `log` is dropped (``None``: unbounded). All three are attributes.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        latency: float = 0.0,
        rate_limit: float | None = None,
        log_limit: int | None = 100_000,
    ) -> None:
        self.clock = clock
        self.latency = latency
        self.rate_limit = rate_limit
        self.log_limit = log_limit
        #: Every request answered, oldest first; trimmed in place, so it stays the same list.
        self.log: list[RequestRecord] = []
        self._bucket = (float(rate_limit or 0.0), clock())

    def admit(self) -> bool:
        """Token-bucket throttle on the clock; False when over ``rate_limit``."""
        if self.rate_limit is None:
            return True
        tokens, last = self._bucket
        now = self.clock()
        burst = max(1.0, self.rate_limit)
        tokens = min(burst, tokens + max(0.0, now - last) * self.rate_limit)
        admitted = tokens >= 1.0
        self._bucket = (tokens - 1.0 if admitted else tokens, now)
        return admitted

    def record(
        self,
        *,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        access_key: str | None,
        operation: str,
        user: str | None = None,
    ) -> None:
        """Append a `RequestRecord` stamped with the clock; trims the log when over its limit."""
        entry = RequestRecord(
            self.clock(), method, path, query, status, access_key, operation, user
        )
        self.log.append(entry)
        if self.log_limit is not None and len(self.log) > self.log_limit:
            del self.log[: len(self.log) - self.log_limit // 2]
