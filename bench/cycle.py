"""Poll-cycle benchmark: one poll of N jobs against the API's bound, and /metrics while it runs.

``python bench/cycle.py`` starts the DLI simulator in its own process (``--jobs`` jobs, a third
running, lifecycles off, ``--latency`` per request; it serves Cloud Eye, queues and pools too).
It first makes a poll's calls itself with a bare `JobsApi` and, with ``--sources on`` (the
default), the bare Cloud Eye, queue and pool sources (no poller, no metrics): the API floor,
what the simulator and the client library alone allow. Then, for each mode, it runs the
exporter in its own process through ``bench/_cycle_exporter.py`` (one target,
``--concurrency``, a rate limit too high to matter; ``--sources off`` turns the three sources
off in its config) and measures:

- ``--cycles`` consecutive polls with nothing else going on: their duration against the API
  bound (the first list page, the other pages ``concurrency`` at a time, with the queue and
  pool calls alongside; then the running jobs' execute-graph calls ``concurrency`` at a time,
  and alongside them the Cloud Eye batches ``concurrency`` at a time; each round taking
  ``latency``) and their API calls against the minimum, in all and by operation (one call per
  list page and per running job; ceil(12 x running / 500) Cloud Eye batches, one queue list
  and one call per pool page);
- ``--cycles`` more polls, each scraped by 8 concurrent scrapers sending Prometheus' request
  headers back to back from the poll's start until it ended (and its exposition was rendered):
  the latency of the scrapes issued while the poll ran, and of those issued while the new
  exposition was being rendered;
- the exposition's size (plain and gzip) and series, the exporter's peak RSS (``VmHWM``) and the
  longest stall of its event loop over both phases.

Modes: ``cached`` is the product (rendered once per poll, served from memory); ``naive`` renders
with prometheus_client's ``generate_latest`` and gzips on every scrape (bench wrapper only).
``--mode both`` (the default) runs them one after the other against the same simulator and
prints them side by side. A second table gives the series count of each cardinality option
(``metrics.job_info_labels`` x ``metrics.state_sets``) for the same jobs, from the writer run in
this process. The exit code is 1 when the cached exporter missed a target.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _cycle_records import MODES, RUNNING_FRACTION, SCRAPERS, Settings, api_bound
from _cycle_report import Report, cardinality_table
from _cycle_run import cardinality, run

from exporter.config import parse_duration


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's flags."""
    parser = argparse.ArgumentParser(
        prog="python bench/cycle.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", type=_positive, default=10_000, help="jobs (a third running)")
    parser.add_argument(
        "--latency", type=_duration, default=0.02, help="per API request (default 20ms)"
    )
    parser.add_argument("--concurrency", type=_positive, default=16, help="the exporter's")
    parser.add_argument(
        "--cycles", type=_positive, default=3, help="polls measured quiet, and as many scraped"
    )
    parser.add_argument("--mode", choices=("both", *MODES), default="both")
    parser.add_argument(
        "--poll-interval",
        type=_duration,
        default=None,
        help="the exporter's (default: 3x the API bound, at least 2s)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the simulator's jobs")
    parser.add_argument(
        "--sources",
        choices=("on", "off"),
        default="on",
        help="poll Cloud Eye, queues and elastic resource pools too (default on; off: jobs only)",
    )
    parser.add_argument(
        "--exporter-env",
        type=_assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the exporter (repeatable), e.g. CYCLE_SWITCH_INTERVAL=0.001",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="cProfile the exporter's event-loop thread into DIR/cycle-<mode>.pstats",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when the cached exporter met every target, 1 otherwise."""
    args = build_parser().parse_args(argv)
    running = round(args.jobs * RUNNING_FRACTION)
    sources = args.sources == "on"
    # The pool count is read by the floor run; its one page overlaps the listing anyway.
    pools = 0 if sources else None
    bound = api_bound(args.jobs, running, args.concurrency, args.latency, pools)
    interval = args.poll_interval or max(2.0, float(math.ceil(3 * bound)))
    settings = Settings(
        args.jobs,
        args.latency,
        args.concurrency,
        args.cycles,
        interval,
        args.seed,
        args.profile,
        dict(args.exporter_env),
        sources,
    )
    modes = MODES if args.mode == "both" else (args.mode,)
    started = time.monotonic()
    floors, results = asyncio.run(run(settings, modes))
    report = Report(settings, floors, results)
    table = report.table()
    cpus = len(os.sched_getaffinity(0))
    print(
        f"dli-exporter poll cycle: {args.jobs} jobs, latency {args.latency * 1000:g}ms, "
        f"concurrency {args.concurrency}, poll_interval {interval:g}s, {args.cycles} quiet + "
        f"{args.cycles} scraped cycles per mode, {SCRAPERS} scrapers, sources {args.sources}; "
        f"{cpus} CPUs, Python {sys.version.split()[0]}"
    )
    print(*table, sep="\n")
    print(*report.operations_table(), sep="\n")
    print(*report.notes(), sep="\n")
    print(*cardinality_table(args.jobs, cardinality(args.jobs, args.seed)), sep="\n")
    print(f"took {time.monotonic() - started:.0f}s", file=sys.stderr)
    return 0 if all(report.verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
