"""`CallRecorder`: the API calls of one target's latest poll, by operation and status code.

The status page's "last poll" table, as blackbox_exporter's probe debug output: per
(operation, code) the attempts made, their total and longest latency, and how many of them were
retries. Bounded by the (operation, code) pairs (a fixed vocabulary), never by the call count.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CallRecorder", "CallSummary"]


@dataclass(frozen=True, slots=True)
class CallSummary:
    """The attempts of one (operation, code) in one poll."""

    operation: str
    #: The HTTP status, ``timeout``, ``redirect`` or ``error``.
    code: str
    #: Attempts answered with ``code``, retries included.
    count: int
    total_seconds: float
    max_seconds: float
    #: How many of ``count`` were attempts beyond a call's first (a retry or a re-signed call).
    retries: int = 0


class CallRecorder:
    """Collects one target's attempts between two `reset` calls (a poll's start)."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        #: (operation, code) -> [count, total seconds, max seconds, retries]
        self._calls: dict[tuple[str, str], list[float]] = {}

    def reset(self) -> None:
        """A new poll starts: forget the previous poll's calls."""
        self._calls = {}

    def observe(self, operation: str, code: str, seconds: float) -> None:
        """One attempt finished with ``code`` after ``seconds``."""
        row = self._calls.setdefault((operation, code), [0, 0.0, 0.0, 0])
        row[0] += 1
        row[1] += seconds
        row[2] = max(row[2], seconds)

    def retried(self, operation: str, code: str) -> None:
        """The attempt just observed with (``operation``, ``code``) was not its call's first."""
        row = self._calls.get((operation, code))
        if row is not None:
            row[3] += 1

    def summary(self) -> tuple[CallSummary, ...]:
        """The calls so far, sorted by operation and code."""
        return tuple(
            CallSummary(operation, code, int(row[0]), row[1], row[2], int(row[3]))
            for (operation, code), row in sorted(self._calls.items())
        )
