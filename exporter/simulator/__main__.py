"""``python -m exporter.simulator``: serve a populated simulator until SIGINT or SIGTERM.

The first line on stdout is ``listening on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from collections.abc import Sequence

from exporter.simulator.app import serve
from exporter.simulator.state import Simulator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
#: Enough for hours of a demo; the oldest records are dropped beyond it.
_LOG_LIMIT = 10_000


def parse_duration(text: str) -> float:
    """``20ms``, ``1.5s``, ``2m`` or a bare number of seconds, as seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 20ms, 1s, 2m)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def project_ids(project_id: str, projects: int) -> list[str]:
    """The ids ``--projects`` populates: ``project_id`` alone, or ``project_id-NNNN`` each."""
    if projects == 1:
        return [project_id]
    return [f"{project_id}-{index:04d}" for index in range(projects)]


def build_parser() -> argparse.ArgumentParser:
    """The command line of the simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator", description="Serve a simulated DLI API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--jobs", type=int, default=40, help="jobs to populate (default 40)")
    parser.add_argument("--running-fraction", type=_fraction, default=None)
    parser.add_argument(
        "--latency", type=parse_duration, default=0.0, help="per request, e.g. 20ms"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--access-key", default="demo-ak")
    parser.add_argument("--secret-key", default="demo-sk")
    parser.add_argument("--project-id", default="demo-project")
    parser.add_argument(
        "--projects",
        type=_positive,
        default=1,
        help="projects to populate with --jobs each (default 1); with more than one their ids "
        "are PROJECT_ID-0000, PROJECT_ID-0001, ...",
    )
    parser.add_argument(
        "--no-lifecycle", action="store_true", help="freeze job states (no transitions)"
    )
    return parser


async def run(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM."""
    sim = Simulator(
        credentials={args.access_key: args.secret_key},
        seed=args.seed,
        latency=args.latency,
        lifecycle=not args.no_lifecycle,
        request_log_limit=_LOG_LIMIT,
    )
    for project_id in project_ids(args.project_id, args.projects):
        sim.populate(project_id, args.jobs, running_fraction=args.running_fraction)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(sim, args.host, args.port) as url:
        print(f"listening on {url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
