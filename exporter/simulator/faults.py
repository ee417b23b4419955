"""`Fault`: a canned failure, and `Faults`: the ones queued or standing, matched per operation."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.dli.api import IAM_TOKEN

__all__ = ["Fault", "Faults"]


@dataclass(frozen=True, slots=True)
class Fault:
    """A canned failure answered instead of the real response (after the signature check).

    ``body=None`` gives the JSON error body the real service sends for ``status``.
    ``delay`` seconds pass before answering (to trip client timeouts).
    ``operation=None`` matches any DLI operation; IAM faults need ``operation="iam_token"``.
    ``reset=True`` answers nothing: the connection is reset (TCP RST); logged as status 0.
    ``truncate=True`` announces the whole body's ``Content-Length``, sends its first half and
    closes the connection.
    """

    status: int = 500
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    operation: str | None = None
    reset: bool = False
    truncate: bool = False


class Faults:
    """Faults queued for the next matching requests, and standing ones until cleared."""

    def __init__(self) -> None:
        self._queued: deque[Fault] = deque()
        #: Persistent faults by operation (``None``: any DLI operation), until `clear`.
        self._standing: dict[str | None, Fault] = {}

    def inject(self, fault: Fault, *, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``fault``, in injection order."""
        self._queued.extend([fault] * times)

    def set(self, fault: Fault) -> None:
        """Answer every request matching ``fault.operation`` with ``fault`` until cleared.

        Queued faults (`inject`) go first. A later ``set`` for the same operation replaces
        this one; one for a specific operation wins over one for any (``None``).
        """
        self._standing[fault.operation] = fault

    def clear(self) -> None:
        """Drop every queued and standing fault: requests are answered normally again."""
        self._queued.clear()
        self._standing.clear()

    def take(self, operation: str) -> Fault | None:
        """The first queued fault matching ``operation`` (removed), else the standing one.

        A fault for any operation (``None``) matches every DLI operation but not IAM's.
        """
        for fault in self._queued:
            if fault.operation == operation or (fault.operation is None and operation != IAM_TOKEN):
                self._queued.remove(fault)
                return fault
        standing = self._standing.get(operation)
        if standing is None and operation != IAM_TOKEN:
            standing = self._standing.get(None)
        return standing
