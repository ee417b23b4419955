"""Where the console script and ``python -m exporter`` start: SIGHUP is caught first.

SIGHUP's default action ends the process, and importing the rest of the exporter (aiohttp,
prometheus_client, ...) and starting it take a while. So this module imports nothing but
`exporter.signals` (which needs only ``signal``), installs a handler that only records the
signal, and then hands over to :func:`exporter.cli.main`, which reloads once it serves if a
SIGHUP came meanwhile.
"""

from __future__ import annotations

from exporter.signals import EarlySignals


def main() -> int:
    """Catch SIGHUP, then run the command line; returns the exit code."""
    early = EarlySignals()
    early.install()
    from exporter.cli import main as cli_main  # noqa: PLC0415  # only after the handler

    return cli_main(early=early)
