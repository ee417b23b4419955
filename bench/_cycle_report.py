"""Bench only: the report of a `bench/cycle.py` run: the table, ratios, verdicts and notes.

`Report` turns the floors and each mode's `ModeResult` into rows judged against the issue's
targets; `cardinality_table` prints the series per cardinality option.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from _cycle_records import (
    SCRAPE_TIMEOUT,
    Cycle,
    Floor,
    ModeResult,
    Settings,
    api_bound,
    listing_bound,
    minimum_by_operation,
    rounds,
)

from exporter.config import MetricOptions

# The targets, for N = 10,000 jobs on 2 cores.
CYCLE_RATIO: Final = 1.3
MEDIAN_MS: Final = 20.0
P99_MS: Final = 100.0
NAIVE_RATIO: Final = 20.0
RSS_MB: Final = 300.0
STALL_MS: Final = 100.0


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` 0.5 = median, 0.99 = p99)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: cells as text, and the last column."""

    metric: str
    target: str
    cached: str
    naive: str
    verdict: str = ""


def _median(values: Iterable[float]) -> float | None:
    listed = list(values)
    return statistics.median(listed) if listed else None


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _pass(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ratio(cached: float | None, naive: float | None) -> str:
    if cached is None or naive is None or cached <= 0:
        return ""
    return f"x{naive / cached:.1f}"


def _calls(cycles: list[Cycle]) -> str:
    totals = sorted({cycle.total_calls for cycle in cycles})
    if not totals:
        return "-"
    return str(totals[0]) if len(totals) == 1 else f"{totals[0]}..{totals[-1]}"


def _cycle_time(result: ModeResult) -> float | None:
    return _median(c.poll.duration for c in result.quiet)


def _scraped_cycle_time(result: ModeResult) -> float | None:
    return _median(c.poll.duration for c in result.loaded)


def _mean_call_ms(result: ModeResult) -> float | None:
    return _median(1000 * c.call_seconds / c.total_calls for c in result.quiet)


def _failed_calls(result: ModeResult) -> float:
    return sum(c.failed_calls for c in result.quiet)


def _scrapes(share: float, *, rendering: bool = False) -> Callable[[ModeResult], float | None]:
    """A percentile of the scrapes issued while polling (or while rendering), in ms."""

    def value(result: ModeResult) -> float | None:
        scrapes = result.rendering if rendering else result.polling
        return percentile([s.seconds * 1000 for s in scrapes], share) if scrapes else None

    return value


def _idle_scrape_ms(result: ModeResult) -> float:
    return result.idle_scrape_ms


def _scrape_counts(result: ModeResult | None) -> str:
    if result is None:
        return "-"
    slow = sum(1 for s in result.polling if s.seconds > SCRAPE_TIMEOUT)
    failed = sum(1 for s in result.polling if s.problem is not None)
    return f"{len(result.polling)} ({slow}, {failed})"


def _cpu_per_poll(result: ModeResult) -> float | None:
    return _median(c.poll.cpu for c in result.quiet)


def _render_wall(result: ModeResult) -> float | None:
    return _median(r.end - r.start for r in result.renders)


def _render_cpu(result: ModeResult) -> float | None:
    return _median(r.cpu for r in result.renders)


def _simulator_cpu(result: ModeResult) -> float | None:
    return _median(c.simulator_cpu for c in result.quiet if c.simulator_cpu is not None)


def _floor(floors: list[Floor], name: str) -> str:
    return _cell(_median(getattr(floor, name) for floor in floors), ".2f")


class Report:
    """The table for the results of one or both modes."""

    def __init__(
        self, settings: Settings, floors: dict[bool, list[Floor]], results: dict[str, ModeResult]
    ) -> None:
        self.settings = settings
        #: The bare client's runs, with ``trust_env`` off and on.
        self.floors = floors[False]
        self.floors_trust_env = floors[True]
        self.cached = results.get("cached")
        self.naive = results.get("naive")
        first = next(iter(results.values())).quiet[0].poll
        self.jobs, self.running = first.jobs, first.running
        #: The pools the bare client's pool list found (``None``: sources off).
        self.pools = self.floors[0].pools if self.floors else None
        self.rounds = rounds(self.jobs, self.running, settings.concurrency, self.pools)
        self.bound = api_bound(
            self.jobs, self.running, settings.concurrency, settings.latency, self.pools
        )
        self.minimum_by_operation = minimum_by_operation(self.jobs, self.running, self.pools)
        self.minimum = sum(self.minimum_by_operation.values())
        self.verdicts: list[bool] = []

    def _both(
        self, value: Callable[[ModeResult], float | None]
    ) -> tuple[float | None, float | None]:
        return (
            value(self.cached) if self.cached else None,
            value(self.naive) if self.naive else None,
        )

    def _judged(
        self, metric: str, value: Callable[[ModeResult], float | None], fmt: str, limit: float
    ) -> Row:
        """A row with a target: the cached value must be at most ``limit``."""
        cached, naive = self._both(value)
        verdict = ""
        if cached is not None:
            self.verdicts.append(cached <= limit)
            verdict = _pass(cached <= limit)
        return Row(metric, f"<= {limit:g}", _cell(cached, fmt), _cell(naive, fmt), verdict)

    def _info(
        self,
        metric: str,
        value: Callable[[ModeResult], float | None],
        fmt: str,
        *,
        ratio: bool = False,
    ) -> Row:
        """A row without a target, optionally with the naive/cached ratio."""
        cached, naive = self._both(value)
        verdict = _ratio(cached, naive) if ratio else ""
        return Row(metric, "", _cell(cached, fmt), _cell(naive, fmt), verdict)

    def _same(self, metric: str, text: str) -> Row:
        """A row whose value does not depend on the mode."""
        return Row(metric, "", text, text)

    def rows(self) -> list[Row]:
        """Every row, in reading order."""
        info, judged, same = self._info, self._judged, self._same
        settings, bound = self.settings, self.bound
        floor = _median(f.seconds for f in self.floors) or 0.0
        listing = _median(f.listing_seconds for f in self.floors) or 0.0
        list_bound = listing_bound(self.jobs, settings.concurrency, settings.latency, self.pools)
        stages = " / ".join(str(self.rounds[stage]) for stage in ("listing", "graphs", "cloud_eye"))
        trust_env = f"{_floor(self.floors_trust_env, 'seconds')} / " + _floor(
            self.floors_trust_env, "cpu"
        )
        return [
            same("jobs / running", f"{self.jobs} / {self.running}"),
            same("API bound (s)", f"{bound:.2f}"),
            same("  rounds: listing / graphs / Cloud Eye", stages),
            same("API floor: bare client, same calls (s)", f"{floor:.2f}"),
            same("  listing: floor / bound (s)", f"{listing:.2f} / {list_bound:.2f}"),
            same("  client CPU per run (s)", _floor(self.floors, "cpu")),
            same("  with trust_env=True: time / CPU (s)", trust_env),
            info("cycle time, median (s)", _cycle_time, ".2f", ratio=True),
            judged("cycle / API bound", lambda r: _div(_cycle_time(r), bound), ".2f", CYCLE_RATIO),
            info("cycle / API floor", lambda r: _div(_cycle_time(r), floor), ".2f"),
            info("cycle time while scraped (s)", _scraped_cycle_time, ".2f", ratio=True),
            info("mean API call as the exporter saw it (ms)", _mean_call_ms, ".1f"),
            self._calls_row(),
            same("minimum calls", str(self.minimum)),
            info("  calls not answered 200", _failed_calls, ".0f"),
            judged("/metrics median while polling (ms)", _scrapes(0.5), ".1f", MEDIAN_MS),
            judged("/metrics p99 while polling (ms)", _scrapes(0.99), ".1f", P99_MS),
            self._naive_ratio_row(),
            info("/metrics, one scrape between polls (ms)", _idle_scrape_ms, ".1f", ratio=True),
            Row("  scrapes counted (over 10 s, failed)", "", *map(_scrape_counts, self._modes)),
            info("/metrics median while rendering (ms)", _scrapes(0.5, rendering=True), ".1f"),
            info("/metrics p99 while rendering (ms)", _scrapes(0.99, rendering=True), ".1f"),
            info("exposition plain (MB)", lambda r: r.plain_bytes / 1e6, ".2f"),
            info("exposition gzip (MB)", lambda r: r.gzip_bytes / 1e6, ".2f"),
            info("series (sample lines)", lambda r: r.series, ".0f"),
            info("RSS max in the quiet cycles (MB)", lambda r: r.quiet_rss_mb, ".0f"),
            judged("peak RSS (MB)", lambda r: r.peak_rss_mb, ".0f", RSS_MB),
            info("longest loop stall, quiet cycles (ms)", lambda r: r.quiet_stall_ms, ".0f"),
            info("longest GC pause (ms)", lambda r: r.gc_pause_ms, ".0f"),
            info("GC per quiet cycle, poll + render (s)", lambda r: _median(r.gc_per_cycle), ".2f"),
            judged("longest event-loop stall (ms)", lambda r: r.stall_ms, ".0f", STALL_MS),
            info("exporter CPU per poll (s)", _cpu_per_poll, ".2f"),
            info("render after a poll, wall (s)", _render_wall, ".2f"),
            info("render after a poll, CPU (s)", _render_cpu, ".2f"),
            info("simulator CPU per poll (s)", _simulator_cpu, ".2f"),
            same("simulator CPU per floor run (s)", _floor(self.floors, "simulator_cpu")),
        ]

    @property
    def _modes(self) -> tuple[ModeResult | None, ModeResult | None]:
        return self.cached, self.naive

    def _calls_row(self) -> Row:
        minimum = self.minimum
        verdict = ""
        if self.cached is not None:
            passed = all(c.total_calls == minimum and not c.failed_calls for c in self.cached.quiet)
            self.verdicts.append(passed)
            verdict = _pass(passed)
        cached, naive = (_calls(r.quiet) if r else "-" for r in self._modes)
        return Row("API calls per cycle", f"= {minimum}", cached, naive, verdict)

    def operations_table(self) -> list[str]:
        """API calls per poll by operation (quiet cycles) against each operation's floor."""
        operations = list(self.minimum_by_operation)
        for result in (r for r in self._modes if r is not None):
            for cycle in result.quiet:
                operations += [op for op, _code in cycle.calls if op not in operations]
        pools = "sources off" if self.pools is None else f"{self.pools} pools"
        rows = [("operation", "floor", "bare client", "cached", "naive", "cached/floor")]
        for op in operations:
            floor = self.minimum_by_operation.get(op, 0)
            bare = _median(f.calls[op] for f in self.floors)
            cached, naive = (_op_calls(r.quiet, op) if r else [] for r in self._modes)
            ratio = _div(_median(cached), floor) if floor and cached else None
            cells = (_cell(bare, ".0f"), _spread(cached), _spread(naive), _cell(ratio, ".2f"))
            rows.append((op, str(floor), *cells))
        total = sum(self.minimum_by_operation.values())
        header = f"API calls per poll by operation (quiet cycles; {pools}; floor {total}):"
        return [header, *_aligned(rows)]

    def _naive_ratio_row(self) -> Row:
        cached, naive = self._both(_scrapes(0.5))
        target = f">= {NAIVE_RATIO:g}"
        if cached is None or naive is None or cached <= 0:
            return Row("naive / cached median", target, "", "", "-")
        ratio = naive / cached
        self.verdicts.append(ratio >= NAIVE_RATIO)
        return Row(
            "naive / cached median", target, "", "", f"x{ratio:.0f} {_pass(ratio >= NAIVE_RATIO)}"
        )

    def table(self) -> list[str]:
        """The formatted table."""
        header = Row("metric", "target", "cached", "naive", "ratio/verdict")
        rows = [header, *self.rows()]
        widths = [max(len(getattr(row, name)) for row in rows) for name in Row.__slots__]
        lines = []
        for row in rows:
            cells = [getattr(row, name) for name in Row.__slots__]
            lines.append(
                "  ".join(
                    cell.ljust(width) if index == 0 else cell.rjust(width)
                    for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
                ).rstrip()
            )
        return lines

    def notes(self) -> list[str]:
        """Per-cycle detail and anything unusual."""
        notes = []
        for result in (self.cached, self.naive):
            if result is None:
                continue
            quiet = " ".join(f"{c.poll.duration:.2f}" for c in result.quiet)
            loaded = " ".join(f"{c.poll.duration:.2f}" for c in result.loaded)
            notes.append(f"{result.mode}: cycles {quiet} s quiet, {loaded} s scraped")
            if result.stall_where:
                notes.append(f"{result.mode}: longest loop stall: {result.stall_where}")
            calls = Counter[tuple[str, str]]()
            for cycle in result.quiet:
                calls.update(cycle.calls)
            notes.append(f"{result.mode}: API calls in the quiet cycles: {_by_call(calls)}")
            for cycle in result.quiet + result.loaded:
                if not cycle.poll.up:
                    notes.append(f"{result.mode}: a poll failed; calls: {_by_call(cycle.calls)}")
                elif cycle.poll.graphs < cycle.poll.running:
                    notes.append(
                        f"{result.mode}: a poll got {cycle.poll.graphs} of "
                        f"{cycle.poll.running} execute graphs; calls: {_by_call(cycle.calls)}"
                    )
            problems = Counter(s.problem for s in result.polling + result.rendering if s.problem)
            if problems:
                notes.append(f"{result.mode}: scrape problems: {dict(problems)}")
            if result.exit_code != 0 or result.log_levels["error"]:
                notes.append(
                    f"{result.mode}: exporter exit code {result.exit_code}, "
                    f"log levels {dict(result.log_levels)}"
                )
        return notes


def _by_call(calls: Counter[tuple[str, str]]) -> str:
    return ", ".join(f"{op} {code}: {n}" for (op, code), n in sorted(calls.items()))


def _op_calls(cycles: list[Cycle], operation: str) -> list[int]:
    """Each cycle's calls of ``operation``, all codes."""
    return [sum(n for (op, _code), n in c.calls.items() if op == operation) for c in cycles]


def _spread(counts: list[int]) -> str:
    if not counts:
        return "-"
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}..{high}"


def _aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """The first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _div(value: float | None, by: float) -> float | None:
    return None if value is None else value / by


def cardinality_table(jobs: int, rows: list[tuple[MetricOptions, int, int]]) -> list[str]:
    """Series per cardinality option combination."""
    lines = [
        f"series for {jobs} jobs by metrics options (writer in-process, OpenMetrics):",
        f"{'job_info_labels':>17}  {'state_sets':>10}  {'series':>8}  {'plain MB':>8}",
    ]
    for options, series, size in rows:
        labels = "true" if options.job_info_labels else "false"
        lines.append(f"{labels:>17}  {options.state_sets:>10}  {series:>8}  {size / 1e6:>8.2f}")
    return lines
