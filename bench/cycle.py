"""Poll-cycle benchmark: one poll of N jobs against the API's bound, and /metrics while it runs.

``python bench/cycle.py`` starts the DLI simulator in its own process (``--jobs`` jobs, a third
running, lifecycles off, ``--latency`` per request). It first makes a poll's calls itself with a
bare `DliClient` (no poller, no metrics): the API floor, what the simulator and the client
library alone allow. Then, for each mode, it runs the exporter in its own process through
``bench/_cycle_exporter.py`` (one target, ``--concurrency``, a rate limit too high to matter)
and measures:

- ``--cycles`` consecutive polls with nothing else going on: their duration against the API
  bound (the first list page, the other pages ``concurrency`` at a time, then the running jobs'
  execute-graph calls ``concurrency`` at a time, each round taking ``latency``) and their API
  calls against the minimum (one call per list page and per running job);
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
import gzip
import json
import math
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import aiohttp
from _process import start_wrapped_exporter

from exporter.auth import AkSkCredentials
from exporter.client import PAGE_SIZE, DliClient
from exporter.collector import build_catalogue
from exporter.config import MetricOptions, parse_duration
from exporter.model import JobState, Snapshot, parse_execute_graph, parse_job
from exporter.secret import Secret
from exporter.simulator import Simulator
from exporter.writer import ExpositionWriter

BENCH_DIR: Final = Path(__file__).resolve().parent
WRAPPER: Final = BENCH_DIR / "_cycle_exporter.py"
MODES: Final = ("cached", "naive")
#: The wrapper's pseudo result code for the summed duration of an operation's calls.
SECONDS: Final = "seconds"

#: What Prometheus 2.x sends (scrape.go's scrapeAcceptHeader, up to 2.x with OpenMetrics on).
PROMETHEUS_HEADERS: Final = {
    "Accept": "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
SCRAPERS: Final = 8
#: The scrape timeout the headers announce; slower scrapes are counted (Prometheus fails them).
SCRAPE_TIMEOUT: Final = 10.0
#: The scrapers themselves wait longer, so that naive scrapes get a real latency.
SCRAPE_CLIENT_TIMEOUT: Final = 600.0
#: Scrapers start this long after the poll's predicted start (polls start on a fixed grid).
SCRAPE_START_DELAY: Final = 0.05
RUNNING_FRACTION: Final = 1 / 3
#: The exporter's per-request timeout (at most half the poll interval: it must be shorter).
REQUEST_TIMEOUT: Final = 10.0
RATE_LIMIT: Final = 100_000
STATUS_POLL: Final = 0.02
START_TIMEOUT: Final = 120.0
STOP_TIMEOUT: Final = 10.0

# The targets, for N = 10,000 jobs on 2 cores.
CYCLE_RATIO: Final = 1.3
MEDIAN_MS: Final = 20.0
P99_MS: Final = 100.0
NAIVE_RATIO: Final = 20.0
RSS_MB: Final = 300.0
STALL_MS: Final = 100.0


# --- the API's bound ------------------------------------------------------------------------


def list_pages(jobs: int) -> int:
    """List calls for ``jobs`` jobs: full pages, and at least one."""
    return max(1, math.ceil(jobs / PAGE_SIZE))


def api_bound(jobs: int, running: int, concurrency: int, latency: float) -> float:
    """The fastest a poll can be when every call takes ``latency``.

    As the client fetches them: the first list page alone (it gives the total), the other pages
    ``concurrency`` at a time, then the running jobs' execute-graph calls ``concurrency`` at a
    time.
    """
    return listing_bound(jobs, concurrency, latency) + math.ceil(running / concurrency) * latency


def listing_bound(jobs: int, concurrency: int, latency: float) -> float:
    """The listing part of `api_bound`."""
    return (1 + math.ceil((list_pages(jobs) - 1) / concurrency)) * latency


def minimum_calls(jobs: int, running: int) -> int:
    """API calls a poll cannot do without: every list page and one execute-graph per running job."""
    return list_pages(jobs) + running


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


# --- scrapes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scrape:
    """One ``GET /metrics``: when it was sent (wall clock), how long it took, what came back."""

    issued: float
    seconds: float
    gzip_bytes: int
    problem: str | None


async def scrape(session: aiohttp.ClientSession, url: str) -> tuple[Scrape, bytes]:
    """One scrape as Prometheus makes it; the body stays compressed."""
    issued, started = time.time(), time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=SCRAPE_CLIENT_TIMEOUT)
    body = b""
    try:
        async with session.get(url, headers=PROMETHEUS_HEADERS, timeout=timeout) as response:
            body = await response.read()
            problem = _problem(response)
    except (aiohttp.ClientError, TimeoutError) as exc:
        problem = type(exc).__name__
    return Scrape(issued, time.perf_counter() - started, len(body), problem), body


def _problem(response: aiohttp.ClientResponse) -> str | None:
    if response.status != 200:
        return f"HTTP {response.status}"
    if response.headers.get("Content-Encoding") != "gzip":
        return "not gzip"
    if not response.content_type.startswith("application/openmetrics-text"):
        return "not OpenMetrics"
    return None


async def scrape_until(
    session: aiohttp.ClientSession, url: str, stop: asyncio.Event, out: list[Scrape]
) -> None:
    """Scrape back to back until ``stop`` is set (the scrape in flight then is finished)."""
    while not stop.is_set():
        record, _body = await scrape(session, url)
        out.append(record)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` 0.5 = median, 0.99 = p99)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def count_series(exposition: bytes) -> int:
    """Sample lines of an exposition."""
    return sum(1 for line in exposition.splitlines() if line and not line.startswith(b"#"))


# --- processes ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used, from ``/proc/PID/stat``."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size of ``pid`` (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/PID/status")


async def stop_process(process: asyncio.subprocess.Process) -> int | None:
    """SIGTERM, then SIGKILL after `STOP_TIMEOUT`; the exit code (``None``: killed)."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None


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


@dataclass(frozen=True, slots=True)
class Api:
    """The simulator process and how to reach it."""

    pid: int
    url: str
    access_key: str
    secret_key: str
    project_id: str


async def start_simulator(
    settings: Settings, access_key: str, secret_key: str, project_id: str
) -> tuple[asyncio.subprocess.Process, str]:
    """``python -m exporter.simulator`` on a free port; the process and its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter.simulator",
        "--port",
        "0",
        "--jobs",
        str(settings.jobs),
        "--running-fraction",
        repr(RUNNING_FRACTION),
        "--latency",
        f"{settings.latency * 1000:g}ms",
        "--no-lifecycle",
        "--seed",
        str(settings.seed),
        "--access-key",
        access_key,
        "--secret-key",
        secret_key,
        "--project-id",
        project_id,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
    prefix = b"listening on "
    if not line.startswith(prefix):
        await stop_process(process)
        raise RuntimeError(f"the simulator did not start: {line!r}")
    return process, line[len(prefix) :].decode().strip()


def write_config(path: Path, settings: Settings, api: Api) -> None:
    """One target on the simulator; the secret key comes from ``CYCLE_SECRET_KEY``."""
    path.write_text(
        "\n".join(
            [
                f"poll_interval: {settings.poll_interval:g}s",
                f"timeout: {min(REQUEST_TIMEOUT, settings.poll_interval / 2):g}s",
                f"concurrency: {settings.concurrency}",
                f"rate_limit: {RATE_LIMIT}",
                "targets:",
                "  - name: bench",
                "    region: cn-north-4",
                f'    project_id: "{api.project_id}"',
                f"    endpoint: {api.url}",
                "    auth:",
                f"      access_key: {api.access_key}",
                "      secret_key: ${CYCLE_SECRET_KEY}",
                "",
            ]
        )
    )


async def drain_logs(
    stream: asyncio.StreamReader, levels: Counter[str], listening: asyncio.Future[str]
) -> None:
    """Count the exporter's JSON log lines by level; resolve ``listening`` with its URL."""
    other: list[str] = []
    while line := await stream.readline():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            levels["unparsed"] += 1
            other = [*other[-9:], line.decode(errors="replace").rstrip()]
            continue
        levels[str(event.get("level", "?"))] += 1
        if event.get("msg") == "listening" and not listening.done():
            listening.set_result(str(event["address"]))
    if not listening.done():
        lines = "\n".join(other)
        listening.set_exception(RuntimeError(f"the exporter exited before listening:\n{lines}"))


# --- one mode -------------------------------------------------------------------------------


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


class ModeRun:
    """The exporter in one mode, from start to SIGTERM."""

    def __init__(self, mode: str, settings: Settings, api: Api) -> None:
        self.mode = mode
        self.settings = settings
        self.api = api
        self.result = ModeResult(mode)
        self._status_file = Path()
        self._process: asyncio.subprocess.Process | None = None
        #: (start, end) wall times of the phases in which scrapers ran.
        self._scraped: list[tuple[float, float]] = []
        #: When the quiet cycles (and the render after the last one) were over.
        self._quiet_until = 0.0

    @property
    def naive(self) -> bool:
        """True in the naive mode."""
        return self.mode == "naive"

    async def run(self) -> ModeResult:
        """Start the exporter, measure, stop it."""
        with tempfile.TemporaryDirectory(prefix="dli-cycle-") as tmp:
            config = Path(tmp) / "config.yaml"
            write_config(config, self.settings, self.api)
            self._status_file = Path(tmp) / "status.json"
            process = self._process = await self._start_exporter(config)
            listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            assert process.stderr is not None
            drain = asyncio.create_task(
                drain_logs(process.stderr, self.result.log_levels, listening)
            )
            try:
                address = await asyncio.wait_for(listening, START_TIMEOUT)
                measured_from = await self._measure(f"{address}/metrics")
                self.result.peak_rss_mb = peak_rss_mb(process.pid)
            finally:
                self.result.exit_code = await stop_process(process)
                await asyncio.wait_for(drain, STOP_TIMEOUT)
            status = await asyncio.to_thread(read_status, self._status_file)
        if status is not None:
            self._note_stalls(status, measured_from)
        return self.result

    async def _start_exporter(self, config: Path) -> asyncio.subprocess.Process:
        env = (
            os.environ
            | self.settings.exporter_env
            | {
                "CYCLE_SECRET_KEY": self.api.secret_key,
                "CYCLE_STATUS_FILE": str(self._status_file),
                "CYCLE_NAIVE": "1" if self.naive else "0",
            }
        )
        if self.settings.profile_dir is not None:
            env["CYCLE_PROFILE"] = str(self.settings.profile_dir / f"cycle-{self.mode}.pstats")
        return await start_wrapped_exporter(WRAPPER, config, env)

    async def _measure(self, url: str) -> float:
        """Warm up, then the quiet and the scraped cycles; returns when measuring began."""
        connector = aiohttp.TCPConnector(limit=SCRAPERS + 1)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            status = await self._wait(
                lambda s: bool(s.polls) and (self.naive or bool(s.renders)), START_TIMEOUT
            )
            if not status.polls[-1].up:
                raise RuntimeError("the first poll failed; see the exporter's log")
            # The first Prometheus scrape: from now on the OpenMetrics bytes are kept fresh.
            await scrape(session, url)
            await self._quiet_cycles(status)
            measured_from = self.result.quiet[0].poll.start
            # Sized after a quiet poll: a naive scraped poll may lack execute graphs.
            await self._exposition(session, url)
            await self._scraped_cycles(session, url)
        return measured_from

    async def _wait(self, ready: Callable[[Status], bool], patience: float) -> Status:
        """The first status for which ``ready`` holds; fails if the exporter exits first."""
        async with asyncio.timeout(patience):
            while True:
                status = await asyncio.to_thread(read_status, self._status_file)
                if status is not None and ready(status):
                    return status
                if self._process is not None and self._process.returncode is not None:
                    raise RuntimeError(f"the exporter exited ({self._process.returncode})")
                await asyncio.sleep(STATUS_POLL)

    @staticmethod
    def _polls_beyond(seen: int) -> Callable[[Status], bool]:
        return lambda status: len(status.polls) > seen

    def _poll_timeout(self) -> float:
        return 3 * self.settings.poll_interval + 30.0

    async def _quiet_cycles(self, status: Status) -> None:
        previous, seen = status.polls[-1], len(status.polls)
        simulator_cpu = cpu_seconds(self.api.pid)
        for _ in range(self.settings.cycles):
            status = await self._wait(self._polls_beyond(seen), self._poll_timeout())
            poll = status.polls[seen]
            now_cpu = cpu_seconds(self.api.pid)
            self.result.quiet.append(
                Cycle(
                    poll,
                    poll.calls_since(previous),
                    poll.call_seconds_since(previous),
                    now_cpu - simulator_cpu,
                )
            )
            previous, seen, simulator_cpu = poll, seen + 1, now_cpu
        # The render after the last quiet poll, so the scraped phase starts from a quiet process.
        await self._wait(lambda s: self.naive or s.render_after(previous) is not None, 60.0)
        self._quiet_until = time.time()
        final = await asyncio.to_thread(read_status, self._status_file)
        assert final is not None
        polls = [status.polls[-1]] + [cycle.poll for cycle in self.result.quiet]
        self.result.gc_per_cycle = [b.gc_seconds - a.gc_seconds for a, b in pairwise(polls)]
        for cycle in self.result.quiet:
            render = final.render_after(cycle.poll)
            if render is not None:
                self.result.renders.append(render)

    async def _scraped_cycles(self, session: aiohttp.ClientSession, url: str) -> None:
        for _ in range(self.settings.cycles):
            await self._scraped_cycle(session, url)

    async def _scraped_cycle(self, session: aiohttp.ClientSession, url: str) -> None:
        """Scrape from the next poll's start until it ended and its exposition was rendered."""
        status = await asyncio.to_thread(read_status, self._status_file)
        assert status is not None
        last = status.polls[-1]
        interval = self.settings.poll_interval
        # Polls start on a fixed grid; the next start still ahead (one may be running now).
        ahead = max(1, math.ceil((time.time() + 0.2 - last.start) / interval))
        predicted = last.start + ahead * interval
        await asyncio.sleep(max(0.0, predicted + SCRAPE_START_DELAY - time.time()))
        stop, records = asyncio.Event(), list[Scrape]()
        scrapers = [
            asyncio.create_task(scrape_until(session, url, stop, records)) for _ in range(SCRAPERS)
        ]
        started = time.time()
        try:
            status = await self._wait(
                lambda s: s.poll_started_after(predicted - interval / 2) is not None,
                self._poll_timeout(),
            )
            poll = status.poll_started_after(predicted - interval / 2)
            assert poll is not None
            seen = status.polls.index(poll)
            rendered = poll.end
            if not self.naive:
                status = await self._wait(lambda s: s.render_after(poll) is not None, 60.0)
                render = status.render_after(poll)
                assert render is not None
                rendered = render.end
        finally:
            stop.set()
            await asyncio.gather(*scrapers)
        self._scraped.append((started, time.time()))
        before = status.polls[seen - 1]
        self.result.loaded.append(
            Cycle(poll, poll.calls_since(before), poll.call_seconds_since(before))
        )
        self.result.polling += [r for r in records if poll.start <= r.issued <= poll.end]
        self.result.rendering += [r for r in records if poll.end < r.issued <= rendered]

    async def _exposition(self, session: aiohttp.ClientSession, url: str) -> None:
        record, body = await scrape(session, url)
        if record.problem is not None:
            raise RuntimeError(f"scrape failed: {record.problem}")
        plain = await asyncio.to_thread(gzip.decompress, body)
        self.result.idle_scrape_ms = record.seconds * 1000
        self.result.gzip_bytes, self.result.plain_bytes = len(body), len(plain)
        self.result.series = await asyncio.to_thread(count_series, plain)

    def _note_stalls(self, status: Status, since: float) -> None:
        """The longest loop stalls and GC pauses from the first measured poll on."""
        result = self.result
        late = {sec: ms for sec, ms in status.late_ms_by_second.items() if sec >= int(since)}
        result.stall_ms = max(late.values(), default=0.0)
        quiet = (ms for sec, ms in late.items() if sec <= self._quiet_until)
        result.quiet_stall_ms = max(quiet, default=0.0)
        result.quiet_rss_mb = max(
            (
                mb
                for sec, mb in status.rss_mb_by_second.items()
                if since <= sec <= self._quiet_until
            ),
            default=0.0,
        )
        pauses = [(ms, at, gen) for at, ms, gen in status.gc_pauses if at >= since]
        result.gc_pause_ms = max((ms for ms, _at, _gen in pauses), default=0.0)
        events = [(ms, at) for at, ms in status.stalls if at >= since]
        if not events:
            return
        ms, at = max(events)
        result.stall_where = f"{ms:.0f} ms {self._phase(status, at)}"
        # The monitor notices a stall when it ends: a collection ending within it caused it.
        overlapping = [p for p in pauses if at - ms / 1000 - 0.01 <= p[1] <= at + 0.01]
        if overlapping:
            gc_ms, _at, generation = max(overlapping)
            result.stall_where += f", with a {gc_ms:.0f} ms generation-{generation} GC in it"

    def _phase(self, status: Status, at: float) -> str:
        phases = [
            name
            for name, spans in (
                ("poll", [(p.start, p.end) for p in status.polls]),
                ("render", [(r.start, r.end) for r in status.renders]),
                ("scrapers", self._scraped),
            )
            if any(start <= at <= end for start, end in spans)
        ]
        return "during " + " + ".join(phases) if phases else "between polls"


# --- cardinality options --------------------------------------------------------------------


def synthetic_snapshot(jobs: int, seed: int) -> Snapshot:
    """``jobs`` simulated jobs (a third running) as one poll would see them."""
    sim = Simulator(credentials={}, seed=seed, lifecycle=False)
    now_ms = sim.now_ms()
    states = []
    for sim_job in sim.populate("bench", jobs, running_fraction=RUNNING_FRACTION):
        job = parse_job(sim_job.to_api(show_detail=True, now_ms=now_ms))
        assert job is not None
        graph = None
        if job.is_running:
            payload = {"is_success": "true", "execute_graph": sim_job.execute_graph(now_ms)}
            graph = parse_execute_graph(payload)
        states.append(JobState(job, graph))
    return Snapshot(
        "bench",
        tuple(states),
        up=True,
        polled=True,
        last_success_time=time.time(),
        poll_duration_seconds=1.0,
    )


def cardinality(jobs: int, seed: int) -> list[tuple[MetricOptions, int, int]]:
    """(options, series, plain OpenMetrics bytes) for each cardinality option combination."""
    snapshot = synthetic_snapshot(jobs, seed)
    rows = []
    for labels in (True, False):
        for state_sets in ("all", "current"):
            options = MetricOptions(job_info_labels=labels, state_sets=state_sets)
            body = ExpositionWriter(build_catalogue(options)).render([snapshot], openmetrics=True)
            rows.append((options, count_series(body), len(body)))
    return rows


# --- the floor: the same calls without the exporter ----------------------------------------


@dataclass(frozen=True, slots=True)
class Floor:
    """A poll's calls made by a bare `DliClient` in this process: what the API side allows."""

    seconds: float
    listing_seconds: float
    #: CPU seconds this process (the client) and the simulator used.
    cpu: float
    simulator_cpu: float


async def measure_floor(settings: Settings, api: Api, *, trust_env: bool) -> list[Floor]:
    """``settings.cycles`` runs of the calls a poll makes, as the poller makes them.

    The first page, the other pages and then the running jobs' execute graphs, each
    ``concurrency`` at a time, with no poller, metrics or rate limiter: the time the simulator
    and the client alone need, for comparison with the exporter's cycle. ``trust_env`` as the
    exporter's session has it (proxy and netrc lookups from the environment).
    """
    floors = []
    async with aiohttp.ClientSession(trust_env=trust_env) as session:
        client = DliClient(
            session,
            endpoint=api.url,
            project_id=api.project_id,
            credentials=AkSkCredentials(api.access_key, Secret(api.secret_key)),
            timeout=REQUEST_TIMEOUT,
            page_concurrency=settings.concurrency,
        )
        limit = asyncio.Semaphore(settings.concurrency)

        async def graph(job_id: int) -> None:
            async with limit:
                await client.execute_graph(job_id)

        for _ in range(settings.cycles):
            simulator_cpu, cpu = cpu_seconds(api.pid), time.process_time()
            started = time.perf_counter()
            jobs = await client.list_jobs()
            listed = time.perf_counter()
            await asyncio.gather(*(graph(job.job_id) for job in jobs if job.is_running))
            floors.append(
                Floor(
                    time.perf_counter() - started,
                    listed - started,
                    time.process_time() - cpu,
                    cpu_seconds(api.pid) - simulator_cpu,
                )
            )
    return floors


# --- the report -----------------------------------------------------------------------------


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
        self.bound = api_bound(self.jobs, self.running, settings.concurrency, settings.latency)
        self.minimum = minimum_calls(self.jobs, self.running)
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
        list_bound = listing_bound(self.jobs, settings.concurrency, settings.latency)
        trust_env = f"{_floor(self.floors_trust_env, 'seconds')} / " + _floor(
            self.floors_trust_env, "cpu"
        )
        return [
            same("jobs / running", f"{self.jobs} / {self.running}"),
            same("API bound (s)", f"{bound:.2f}"),
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


# --- command line ---------------------------------------------------------------------------


async def run(
    settings: Settings, modes: Sequence[str]
) -> tuple[dict[bool, list[Floor]], dict[str, ModeResult]]:
    """Start the simulator, measure the floor and then each mode against it."""
    access_key = "CYCLE" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    project_id = secrets.token_hex(16)
    simulator, url = await start_simulator(settings, access_key, secret_key, project_id)
    api = Api(simulator.pid, url, access_key, secret_key, project_id)
    results = {}
    try:
        print("measuring the API floor ...", file=sys.stderr, flush=True)
        floors = {
            trust_env: await measure_floor(settings, api, trust_env=trust_env)
            for trust_env in (False, True)
        }
        for mode in modes:
            print(f"measuring {mode} ...", file=sys.stderr, flush=True)
            results[mode] = await ModeRun(mode, settings, api).run()
    finally:
        await stop_process(simulator)
    return floors, results


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
    bound = api_bound(args.jobs, running, args.concurrency, args.latency)
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
        f"{args.cycles} scraped cycles per mode, {SCRAPERS} scrapers; "
        f"{cpus} CPUs, Python {sys.version.split()[0]}"
    )
    print(*table, sep="\n")
    print(*report.notes(), sep="\n")
    print(*cardinality_table(args.jobs, cardinality(args.jobs, args.seed)), sep="\n")
    print(f"took {time.monotonic() - started:.0f}s", file=sys.stderr)
    return 0 if all(report.verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
