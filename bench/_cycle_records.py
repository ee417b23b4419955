"""Bench only: the records of a `bench/cycle.py` run, from `_cycle_run` to `_cycle_report`.

The API's bound, what the wrapper reports (`Status` with its `Poll` and `Render` records),
scrapes, the run's settings, what each mode measured (`Cycle`, `ModeResult`) and the bare
client's `Floor`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from exporter.dli.api import (
    BATCH_QUERY_METRIC_DATA,
    CES_MAX_METRICS_PER_CALL,
    EXECUTE_GRAPH,
    LIST_ELASTIC_RESOURCE_POOLS,
    LIST_JOBS,
    LIST_QUEUES,
)
from exporter.dli.cloudeye import METRICS
from exporter.dli.paging import PAGE_SIZE, PAGE_STEP

MODES: Final = ("cached", "naive")
#: The wrapper's pseudo result code for the summed duration of an operation's calls.
SECONDS: Final = "seconds"
SCRAPERS: Final = 8
#: The scrape timeout the headers announce; slower scrapes are counted (Prometheus fails them).
SCRAPE_TIMEOUT: Final = 10.0
RUNNING_FRACTION: Final = 1 / 3

# --- the API's bound ------------------------------------------------------------------------


def list_pages(jobs: int) -> int:
    """List calls for ``jobs`` jobs: pages `PAGE_STEP` apart (neighbours overlap by one job)
    until the first one that is not full, as the client pages."""
    if jobs < PAGE_SIZE:
        return 1
    return (jobs - PAGE_SIZE) // PAGE_STEP + 2


def ces_batches(running: int) -> int:
    """Cloud Eye batch queries for ``running`` jobs: 12 metrics each, 500 queries a call."""
    return math.ceil(len(METRICS) * running / CES_MAX_METRICS_PER_CALL)


def rounds(jobs: int, running: int, concurrency: int, pools: int | None) -> dict[str, int]:
    """Latency rounds of each stage of a poll, as the exporter makes its calls.

    ``listing``: the first list page alone (it gives the total), the other pages
    ``concurrency`` at a time; the queue call and the pool pages run alongside it (``pools``
    ``None``: the sources are off). Then, once the listing is in, ``graphs``: the running jobs'
    execute-graph calls ``concurrency`` at a time, and alongside them (under a semaphore of
    their own) the ``cloud_eye`` batches ``concurrency`` at a time.
    """
    listing = 1 + math.ceil((list_pages(jobs) - 1) / concurrency)
    stages = {"listing": listing, "graphs": math.ceil(running / concurrency), "cloud_eye": 0}
    if pools is not None:
        pool_rounds = 1 + math.ceil((list_pages(pools) - 1) / concurrency)
        stages["listing"] = max(listing, pool_rounds)  # the queue call is one round
        stages["cloud_eye"] = math.ceil(ces_batches(running) / concurrency)
    return stages


def api_bound(
    jobs: int, running: int, concurrency: int, latency: float, pools: int | None = None
) -> float:
    """The fastest a poll can be when every call takes ``latency`` (see `rounds`):
    listing + max(execute-graph rounds, Cloud Eye rounds), each round ``latency``."""
    stages = rounds(jobs, running, concurrency, pools)
    return (stages["listing"] + max(stages["graphs"], stages["cloud_eye"])) * latency


def listing_bound(jobs: int, concurrency: int, latency: float, pools: int | None = None) -> float:
    """The listing part of `api_bound` (queues and pools overlap it)."""
    return rounds(jobs, 0, concurrency, pools)["listing"] * latency


def minimum_by_operation(jobs: int, running: int, pools: int | None) -> dict[str, int]:
    """API calls a poll cannot do without, by operation: every list page, one execute-graph
    per running job and, with the sources on (``pools`` not ``None``), the Cloud Eye batches,
    the queue list and every pool page."""
    calls = {LIST_JOBS: list_pages(jobs), EXECUTE_GRAPH: running}
    if pools is not None:
        calls[BATCH_QUERY_METRIC_DATA] = ces_batches(running)
        calls[LIST_QUEUES] = 1
        calls[LIST_ELASTIC_RESOURCE_POOLS] = list_pages(pools)
    return calls


def minimum_calls(jobs: int, running: int, pools: int | None = None) -> int:
    """The sum of `minimum_by_operation`."""
    return sum(minimum_by_operation(jobs, running, pools).values())


# --- what the wrapper reports ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Poll:
    """A finished poll as the wrapper recorded it (wall-clock times)."""

    end: float
    duration: float
    up: bool
    jobs: int
    running: int
    graphs: int
    #: Cumulative ``dli_api_requests_total`` at its end, by operation and code.
    requests: dict[str, dict[str, float]]
    #: Process CPU seconds from its start to its end.
    cpu: float
    #: Seconds the process spent in garbage collection so far.
    gc_seconds: float

    @property
    def start(self) -> float:
        """When the poll started."""
        return self.end - self.duration

    def calls_since(self, earlier: Poll) -> Counter[tuple[str, str]]:
        """API calls made after ``earlier`` ended, by (operation, code)."""
        calls: Counter[tuple[str, str]] = Counter()
        for operation, by_code in self.requests.items():
            for code, count in by_code.items():
                if code != SECONDS:
                    before = earlier.requests.get(operation, {}).get(code, 0.0)
                    calls[(operation, code)] = round(count - before)
        return +calls

    def call_seconds_since(self, earlier: Poll) -> float:
        """Seconds the API calls made after ``earlier`` ended took, summed."""
        return sum(
            by_code.get(SECONDS, 0.0) - earlier.requests.get(operation, {}).get(SECONDS, 0.0)
            for operation, by_code in self.requests.items()
        )


@dataclass(frozen=True, slots=True)
class Render:
    """One refresh of the cached exposition (every format scrapers use)."""

    start: float
    end: float
    cpu: float


@dataclass(frozen=True, slots=True)
class Status:
    """The wrapper's status file."""

    polls: tuple[Poll, ...]
    renders: tuple[Render, ...]
    late_ms_by_second: dict[int, float]
    stalls: tuple[tuple[float, float], ...]
    #: Garbage collections over `STALL_EVENT_MS`: (time, ms, generation).
    gc_pauses: tuple[tuple[float, float, int], ...]
    rss_mb_by_second: dict[int, float]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Status:
        """From the file's JSON."""
        polls = tuple(
            Poll(
                end=float(p["end"]),
                duration=float(p["duration"]),
                up=bool(p["up"]),
                jobs=int(p["jobs"]),
                running=int(p["running"]),
                graphs=int(p["graphs"]),
                requests=p["requests"],
                cpu=float(p["cpu"]),
                gc_seconds=float(p["gc_seconds"]),
            )
            for p in raw["polls"]
        )
        renders = tuple(
            Render(float(r["start"]), float(r["end"]), float(r["cpu"])) for r in raw["renders"]
        )
        late = {int(second): float(ms) for second, ms in raw["late_ms_by_second"].items()}
        stalls = tuple((float(t), float(ms)) for t, ms in raw["stalls"])
        pauses = tuple((float(t), float(ms), int(g)) for t, ms, g in raw["gc"]["pauses"])
        rss = {int(second): float(mb) for second, mb in raw["rss_mb_by_second"].items()}
        return cls(polls, renders, late, stalls, pauses, rss)

    def poll_started_after(self, moment: float) -> Poll | None:
        """The first finished poll that started after ``moment``."""
        return next((p for p in self.polls if p.start > moment), None)

    def render_after(self, poll: Poll) -> Render | None:
        """The render of the exposition ``poll`` produced, once it finished."""
        return next((r for r in self.renders if r.start >= poll.end), None)


def read_status(path: Path) -> Status | None:
    """The wrapper's latest status, or ``None`` before the first (blocking; use a thread)."""
    try:
        return Status.parse(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return None


# --- scrapes and runs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scrape:
    """One ``GET /metrics``: when it was sent (wall clock), how long it took, what came back."""

    issued: float
    seconds: float
    gzip_bytes: int
    problem: str | None


def count_series(exposition: bytes) -> int:
    """Sample lines of an exposition."""
    return sum(1 for line in exposition.splitlines() if line and not line.startswith(b"#"))


@dataclass(frozen=True, slots=True)
class Settings:
    """The run's parameters."""

    jobs: int
    latency: float
    concurrency: int
    cycles: int
    poll_interval: float
    seed: int
    profile_dir: Path | None
    #: Extra environment for the exporter process (experiments: allocator, switch interval).
    exporter_env: dict[str, str] = field(default_factory=dict)
    #: Cloud Eye, queues and elastic resource pools polled too (off: the job list only).
    sources: bool = True


@dataclass(frozen=True, slots=True)
class Api:
    """The simulator process and how to reach it."""

    pid: int
    url: str
    access_key: str
    secret_key: str
    project_id: str


# --- one mode -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cycle:
    """One measured poll and the API calls made for it."""

    poll: Poll
    calls: Counter[tuple[str, str]]
    #: Seconds the calls took, summed, as the exporter timed them.
    call_seconds: float
    #: CPU seconds the simulator used from the previous poll's end to this one's.
    simulator_cpu: float | None = None

    @property
    def total_calls(self) -> int:
        """Every API call of the poll, retries included."""
        return self.calls.total()

    @property
    def failed_calls(self) -> int:
        """Calls that were not answered 200."""
        return sum(n for (_operation, code), n in self.calls.items() if code != "200")


@dataclass(slots=True)
class ModeResult:
    """Everything measured for one mode."""

    mode: str
    quiet: list[Cycle] = field(default_factory=list)
    loaded: list[Cycle] = field(default_factory=list)
    #: Scrapes issued while a poll ran, and while its exposition was then rendered.
    polling: list[Scrape] = field(default_factory=list)
    rendering: list[Scrape] = field(default_factory=list)
    renders: list[Render] = field(default_factory=list)
    plain_bytes: int = 0
    gzip_bytes: int = 0
    series: int = 0
    #: One scrape with nothing else going on (between polls, no other scraper).
    idle_scrape_ms: float = 0.0
    peak_rss_mb: float = 0.0
    #: Longest event-loop stall over the whole measurement, and over the quiet cycles only.
    stall_ms: float = 0.0
    quiet_stall_ms: float = 0.0
    stall_where: str = ""
    #: Longest garbage collection, and GC seconds per quiet cycle (poll and render).
    gc_pause_ms: float = 0.0
    gc_per_cycle: list[float] = field(default_factory=list)
    #: Highest RSS sampled during the quiet cycles (the peak of the run is ``peak_rss_mb``).
    quiet_rss_mb: float = 0.0
    log_levels: Counter[str] = field(default_factory=Counter)
    exit_code: int | None = 0


@dataclass(frozen=True, slots=True)
class Floor:
    """A poll's calls made by a bare `JobsApi` (and the bare sources) in this process: what
    the API side allows."""

    seconds: float
    listing_seconds: float
    #: CPU seconds this process (the client) and the simulator used.
    cpu: float
    simulator_cpu: float
    #: Calls made, by operation (all codes).
    calls: Counter[str] = field(default_factory=Counter)
    #: Elastic resource pools the pool list returned (``None``: sources off).
    pools: int | None = None
