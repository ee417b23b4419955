"""`EarlySignals`: SIGHUPs caught before the event loop can handle them (stdlib only)."""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["EarlySignals"]


class EarlySignals:
    """Records SIGHUPs that arrive before the event loop handles them."""

    def __init__(self) -> None:
        self._reload_requested = False

    def install(self) -> None:
        """Catch SIGHUP from now on (until the event loop installs its own handler)."""
        signal.signal(signal.SIGHUP, self._record)

    def take_reload_request(self) -> bool:
        """True when a SIGHUP arrived since the last call."""
        requested, self._reload_requested = self._reload_requested, False
        return requested

    def _record(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload_requested = True
