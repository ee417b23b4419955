"""Cost-at-scale benchmark: the exporter's readiness, memory, CPU, scrapes and loop at scale.

``python bench/scale.py`` starts the DLI simulator in its own process with ``--targets``
projects of ``--jobs-per-target`` jobs each (a third running, lifecycles off, ``--latency`` per
request), then runs the exporter in its own process with one target per project
(``--interval`` poll interval, timeout 10s, concurrency 16, a rate limit too high to matter;
``--sources off`` turns Cloud Eye, queues and pools off). Two shapes matter: many targets
(``--targets 500 --jobs-per-target 40``) and one big target (``--targets 1
--jobs-per-target 10000``). It measures:

- ready: seconds from starting the exporter until ``/-/ready`` answers 200 (polled every 50 ms);
- then, over a window of ``--rounds`` full poll intervals, with ``--scrapers`` scrapers sending
  Prometheus's headers (gzip, OpenMetrics) back to back: the ``/metrics`` latency (p50, p99,
  max), the exporter's RSS (median and max of ``VmRSS`` sampled every 0.5 s; peak ``VmHWM`` of
  the whole run), its CPU seconds per round, the exposition's size and series;
- stalls of the event loop from ``dli_exporter_event_loop_lag_seconds`` (probes over 100 ms
  late, and the bucket bound the longest one fits in), in the window and since the start;
- API calls per round by operation from ``dli_api_requests_total`` against the minimum.

Each figure is printed with its target and ``ratio = measured / target``. ``--compare-single
JOBS`` also runs one target of JOBS jobs and compares the CPU per round. The exit code is 1
when the exporter failed (a failed scrape, never ready, a non-zero exit), not for a missed
target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from _scale_run import RUNNING_FRACTION, Case, Result, run_case

from exporter.config import parse_duration

CPU_RATIO_TARGET = 1.5


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be at least 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's flags."""
    parser = argparse.ArgumentParser(
        prog="python bench/scale.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--targets", type=_positive, default=500, help="targets, one simulated project each")
    add("--jobs-per-target", type=_positive, default=40, help="jobs per project (a third running)")
    add("--sources", choices=("on", "off"), default="on", help="Cloud Eye, queues and pools too")
    add("--interval", type=_duration, default=60.0, help="the poll interval (default 60s)")
    add("--latency", type=_duration, default=0.02, help="per API request (default 20ms)")
    add("--rounds", type=_positive, default=1, help="poll intervals measured (default 1)")
    add("--scrapers", type=_count, default=8, help="back-to-back scrapers (0: quiet CPU)")
    add("--ready-timeout", type=_duration, default=None, help="default max(120s, 2 intervals)")
    add("--ready-target", type=_duration, default=None, help="default 10s with many targets")
    add("--rss-target-mb", type=float, default=None, help="default 150 (many targets) / 120")
    add("--p99-target-ms", type=float, default=100.0, help="/metrics p99 target")
    add("--max-target-ms", type=float, default=250.0, help="/metrics max target")
    add("--compare-single", type=_positive, default=None, metavar="JOBS", help="also run 1xJOBS")
    add("--json", type=Path, default=None, metavar="PATH", help="write the figures as JSON")
    return parser


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "exporter")
    return (git("rev-parse", "--short", "HEAD") or "?") + (" (exporter/ modified)" if dirty else "")


def _ratio(measured: float, target: float | None, unit: str) -> str:
    if target is None:
        return ""
    if target == 0:
        return f"  (target {target:g}{unit})"
    return f"  (target {target:g}{unit}, ratio = {measured / target:.2f})"


def _bound(bound: float | None) -> str:
    if bound is None:
        return "no probes"
    return "longest > 5 s" if bound == float("inf") else f"longest <= {bound:g} s"


def report(result: Result, args: argparse.Namespace) -> list[str]:
    """The case's figures, one a line."""
    case = result.case
    many = case.targets > 1
    rss_target = args.rss_target_mb or (150.0 if many else 120.0)
    ready_target = args.ready_target or (10.0 if many else None)
    lines = []
    if result.ready is None:
        lines.append("ready: never")
    else:
        lines.append(f"ready: {result.ready:.2f} s" + _ratio(result.ready, ready_target, " s"))
    ok = [s for s in result.scrapes if s.problem is None]
    if ok:
        p50, p99, worst = (seconds * 1000 for seconds in result.latencies())
        failed = len(result.scrapes) - len(ok)
        lines += [
            f"/metrics scrapes: {len(result.scrapes)} ({failed} failed), p50 {p50:.1f} ms",
            f"/metrics p99: {p99:.1f} ms" + _ratio(p99, args.p99_target_ms, " ms"),
            f"/metrics max: {worst:.1f} ms" + _ratio(worst, args.max_target_ms, " ms"),
        ]
    median, high = result.rss_steady()
    lines += [
        f"RSS steady median: {median:.1f} MB" + _ratio(median, rss_target, " MB"),
        f"RSS steady max: {high:.1f} MB" + _ratio(high, rss_target, " MB"),
        f"RSS peak (VmHWM): {result.rss_peak:.1f} MB" + _ratio(result.rss_peak, rss_target, " MB"),
        f"CPU per round: {result.cpu_per_round:.2f} s (scrapes included; window "
        f"{result.window_seconds:.1f} s, scaled to one interval)",
        f"exposition: {result.plain_bytes:,} B plain, {result.gzip_bytes:,} B gzip, "
        f"{result.series:,} series",
    ]
    for label, stalls in (("window", result.window), ("whole run", result.whole_run)):
        if stalls is not None:
            lines.append(
                f"stalls over 100 ms ({label}): {stalls.over_100ms} of {stalls.probes} probes, "
                f"{_bound(stalls.longest_at_most)}  (target 0)"
            )
    if result.calls or result.minimum:
        lines.append(f"running jobs (from dli_job_status): {result.running}")
    for op in sorted(set(result.calls) | set(result.minimum)):
        measured = result.calls.get(op, 0.0)
        minimum = result.minimum.get(op)
        line = f"calls per round: {op}: {measured:g}"
        line += f" (minimum {minimum})" if minimum is not None else " (no minimum)"
        if minimum:
            line += f", ratio = {measured / minimum:.2f}"
        if failed_calls := result.failed_calls.get(op):
            line += f", {failed_calls:g} not 2xx"
        lines.append(line)
    if result.log_levels.get("error") or result.log_levels.get("critical"):
        lines.append(f"log levels: {dict(result.log_levels)}")
    lines += [f"note: {note}" for note in result.notes]
    lines += [f"FAILED: {problem}" for problem in result.problems]
    return lines


def case_line(case: Case, commit: str) -> str:
    """Which case ran."""
    sources = "on" if case.sources else "off"
    return (
        f"case: {case.targets} targets x {case.jobs} jobs, sources {sources}, "
        f"interval {case.interval:g}s, latency {case.latency * 1000:g}ms, {case.rounds} round(s), "
        f"{case.scrapers} scrapers, commit {commit}"
    )


def _figures(result: Result) -> dict[str, Any]:
    median, high = result.rss_steady()
    p50, p99, worst = result.latencies()
    return {
        "case": asdict(result.case),
        "ready_seconds": result.ready,
        "scrapes": len(result.scrapes),
        "failed_scrapes": sum(1 for s in result.scrapes if s.problem is not None),
        "scrape_seconds": {"p50": p50, "p99": p99, "max": worst},
        "rss_mb": {"steady_median": median, "steady_max": high, "peak": result.rss_peak},
        "cpu_seconds_per_round": result.cpu_per_round,
        "window_seconds": result.window_seconds,
        "exposition": {"plain": result.plain_bytes, "gzip": result.gzip_bytes},
        "series": result.series,
        "stalls": {
            "window": asdict(result.window) if result.window else None,
            "whole_run": asdict(result.whole_run) if result.whole_run else None,
        },
        "running_jobs": result.running,
        "calls_per_round": result.calls,
        "minimum_calls_per_round": result.minimum,
        "exit_code": result.exit_code,
        "problems": result.problems,
    }


async def _run(cases: list[Case]) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="dli-scale-") as workdir:
        return [await run_case(case, Path(workdir)) for case in cases]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the case (and the single-target comparison); 1 when the exporter failed."""
    args = build_parser().parse_args(argv)
    ready_timeout = args.ready_timeout or max(120.0, 2 * args.interval)
    base = Case(
        args.targets,
        args.jobs_per_target,
        args.sources == "on",
        args.interval,
        args.latency,
        args.rounds,
        args.scrapers,
        RUNNING_FRACTION,
        ready_timeout,
    )
    cases = [base]
    if args.compare_single:
        cases.append(replace(base, targets=1, jobs=args.compare_single))
    results = asyncio.run(_run(cases))
    commit = _commit()
    for result in results:
        print(case_line(result.case, commit))
        print(*(f"  {line}" for line in report(result, args)), sep="\n")
    if len(results) == 2 and results[1].cpu_per_round > 0:
        many, single = results[0].cpu_per_round, results[1].cpu_per_round
        print(
            f"CPU per round: many-targets / single = {many:.2f} / {single:.2f} = "
            f"{many / single:.2f} (target <= {CPU_RATIO_TARGET:g})"
        )
    if args.json:
        args.json.write_text(json.dumps([_figures(r) for r in results], indent=2) + "\n")
    return 1 if any(result.problems for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
