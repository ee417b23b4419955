"""Where the console script and ``python -m exporter`` start: SIGHUP is caught first.

SIGHUP's default action ends the process, and importing the rest of the exporter (aiohttp,
prometheus_client, ...) and starting it take a while. So this module imports nothing but
``signal``, installs a handler that only records the signal, and then hands over to
:func:`exporter.cli.main`, which reloads once it serves if a SIGHUP came meanwhile.
"""

from __future__ import annotations

import signal
from types import FrameType


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


def main() -> int:
    """Catch SIGHUP, then run the command line; returns the exit code."""
    early = EarlySignals()
    early.install()
    from exporter.cli import main as cli_main  # noqa: PLC0415  # only after the handler

    return cli_main(early=early)
