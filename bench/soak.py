"""Soak test: the real exporter polling the simulator under random faults, watched for growth.

``python bench/soak.py --duration 10m`` starts a DLI simulator in this process (two projects,
lifecycles on), runs the exporter as a separate process against it (through
``bench/_soak_exporter.py``, which reports the exporter's asyncio task counts), injects a random
fault about every second, throws a hostile scraper or config file at the exporter about every
five seconds (``bench/_attacks.py``: partial connections past the connection limit, bcrypt
floods, cross-origin reloads, alias bombs, FIFO and ``/dev/zero`` secret files, reloads through
HTTP and SIGHUP), scrapes ``/metrics`` every half second with basic auth and samples the
exporter's RSS, open file descriptors, threads and tasks every five seconds (between attacks).
At the end it prints one table and a verdict; the exit code is 1 when anything grew past its
tolerance after the warm-up, a scrape failed, an attack was answered wrongly, the exporter
logged a traceback or it did not exit cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import bcrypt
from _attacks import ATTACK_KINDS, Attacker, AttackStats, basic_auth
from _process import start_wrapped_exporter

from exporter.config import parse_duration
from exporter.simulator import EXECUTE_GRAPH, LIST_JOBS, Fault, Simulator, serve

BENCH_DIR: Final = Path(__file__).resolve().parent
WRAPPER: Final = BENCH_DIR / "_soak_exporter.py"

POLL_INTERVAL: Final = "2s"
CONCURRENCY: Final = 16
TARGETS: Final = 2
#: The exporter never holds more connections to the API than it has requests in flight.
MAX_API_CONNECTIONS: Final = TARGETS * CONCURRENCY
REQUEST_TIMEOUT_SECONDS: Final = 1.0
FAULT_INTERVAL: Final = 1.0
FAULT_PROBABILITY: Final = 0.5
SCRAPE_INTERVAL: Final = 0.5
#: A hostile scraper or config file every ATTACK_INTERVAL seconds with this probability.
ATTACK_INTERVAL: Final = 3.0
ATTACK_PROBABILITY: Final = 0.6
#: The exporter's web limits during the soak: low, so that the attacks reach them.
MAX_WEB_CONNECTIONS: Final = 32
HEADER_TIMEOUT_SECONDS: Final = 2.0
SOAK_USER: Final = "soak"
#: Open fds the exporter may have besides its API and web connections (logs, epoll, files).
OTHER_FDS_ALLOWANCE: Final = 16
SCRAPE_TIMEOUT: Final = 5.0
SAMPLE_INTERVAL: Final = 5.0
START_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 5.0
#: Growth is judged from the fifth of the run after the warm-up (this share of the run, at
#: least MIN_WARMUP seconds) to the last fifth.
WARMUP_SHARE: Final = 0.2
MIN_WARMUP: Final = 15.0
MIN_DURATION: Final = 30.0
RSS_TOLERANCE_MB: Final = 10.0
COUNT_TOLERANCE: Final = 2

#: What Prometheus 2.x/3.x sends when it prefers OpenMetrics.
OPENMETRICS_ACCEPT: Final = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TEXT_ACCEPT: Final = "text/plain;version=0.0.4"
FAULT_KINDS: Final = (
    "500",
    "502",
    "503",
    "429",
    "delay",
    "html",
    "bad_json",
    "graph_404",
    "401",
    "redirect",
    "hostile_values",
    "hostile_headers",
    "invalid_utf8",
)
_HTML_BODY: Final = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
_BAD_JSON_BODY: Final = b'{"is_success": "true", "job_list": {"total_count": 3, "jobs": [{'
#: A page with impossible numbers and broken text (issue 8's hostile values).
_HOSTILE_VALUES_BODY: Final = (
    b'{"is_success": "true", "job_list": {"total_count": 1000000000, "jobs": [{"job_id": 7, '
    b'"name": "lone \\ud800", "restart_times": ' + b"9" * 400 + b', "duration": -5, '
    b'"create_time": 1e400, "queue_name": "' + b"q" * 60_000 + b'"}]}}'
)
_INVALID_UTF8_BODY: Final = (
    b'{"is_success": "true", "job_list": {"total_count": 1, "jobs": [{"job_id": 8, '
    b'"name": "bad \xff byte"}]}}'
)
_HOSTILE_HEADERS: Final = (
    {"Retry-After": "\u00b2"},
    {"Retry-After": "9" * 5000},
    {"Retry-After": "Wed, 99 Foo 2026 99:99:99 GMT"},
)
_AUTH_BODY: Final = (
    b'{"error_code": "APIG.0301", "error_msg": "Incorrect IAM authentication information: '
    b'verify aksk signature fail", "request_id": "soak"}'
)
_REQUESTS_LINE: Final = re.compile(r"^dli_api_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)")
_LABEL: Final = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


# --- what we measure -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """The exporter process at one moment."""

    elapsed: float
    rss_mb: float
    fds: int
    #: Of ``fds``: TCP connections to the simulator (the client's connection pool).
    api_connections: int
    threads: int
    #: Live asyncio tasks, and those alive for 5 s or more (``None``: no count yet).
    tasks: int | None
    long_lived_tasks: int | None


@dataclass(slots=True)
class LogStats:
    """The exporter's stderr, line by line."""

    levels: Counter[str] = field(default_factory=Counter)
    tracebacks: int = 0
    first_traceback: str | None = None
    unparsed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ScrapeStats:
    """Scrapes of ``/metrics`` and what went wrong with them."""

    count: int = 0
    seconds: list[float] = field(default_factory=list)
    formats: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    last_body: str = ""


@dataclass(slots=True)
class SoakResult:
    """Everything the report needs."""

    duration: float
    seed: int
    jobs: tuple[int, int]
    samples: list[Sample]
    scrapes: ScrapeStats
    faults: Counter[str]
    attacks: AttackStats
    logs: LogStats
    exit_code: int | None
    stop_seconds: float


# --- the exporter process ------------------------------------------------------------------


def read_status(pid: int) -> tuple[float, int]:
    """RSS in MB and threads of ``pid``, from ``/proc/PID/status``."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields_ = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields_["VmRSS"].split()[0]) / 1024, int(fields_["Threads"])


def read_fds(pid: int, api_port: int) -> tuple[int, int]:
    """Open fds of ``pid``, and how many of them are TCP connections to ``api_port``."""
    api_inodes = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        columns = line.split()
        if int(columns[2].rpartition(":")[2], 16) == api_port:
            api_inodes.add(f"socket:[{columns[9]}]")
    fds = os.listdir(f"/proc/{pid}/fd")
    api = 0
    for fd in fds:
        with contextlib.suppress(OSError):  # closed since the listing
            api += os.readlink(f"/proc/{pid}/fd/{fd}") in api_inodes
    return len(fds), api


def read_tasks(path: Path) -> tuple[int | None, int | None]:
    """The latest task counts the wrapper wrote, or ``(None, None)`` before the first."""
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None, None
    return int(record["tasks"]), int(record["long_lived"])


def take_sample(pid: int, api_port: int, tasks_file: Path, elapsed: float) -> Sample:
    """One `Sample` of ``pid`` (blocking reads of ``/proc``; run it in a thread)."""
    rss_mb, threads = read_status(pid)
    fds, api_connections = read_fds(pid, api_port)
    tasks, long_lived = read_tasks(tasks_file)
    return Sample(elapsed, rss_mb, fds, api_connections, threads, tasks, long_lived)


def config_text(base_url: str, access_key: str, projects: list[str]) -> str:
    """A config with one target per project; the secret key comes from ``SOAK_SECRET_KEY``."""
    lines = [
        f"poll_interval: {POLL_INTERVAL}",
        f"timeout: {REQUEST_TIMEOUT_SECONDS:g}s",
        f"concurrency: {CONCURRENCY}",
        "rate_limit: 500",
        "targets:",
    ]
    for index, project_id in enumerate(projects):
        lines += [
            f"  - name: soak-{index + 1}",
            "    region: cn-north-4",
            f'    project_id: "{project_id}"',
            f"    endpoint: {base_url}",
            f"    ces_endpoint: {base_url}",
            "    auth:",
            f"      access_key: {access_key}",
            "      secret_key: ${SOAK_SECRET_KEY}",
        ]
    return "\n".join(lines) + "\n"


def web_config_text(user: str, password: str) -> str:
    """A web config with one basic-auth user (bcrypt cost 10, as operators would set)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return f"basic_auth_users:\n  {user}: '{hashed}'\n"


async def drain_logs(
    stream: asyncio.StreamReader, stats: LogStats, listening: asyncio.Future[str]
) -> None:
    """Read the exporter's JSON log lines until EOF; resolve ``listening`` with its URL."""
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip("\n")
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            stats.levels["unparsed"] += 1
            stats.unparsed = [*stats.unparsed[-9:], text]
            continue
        stats.levels[str(event.get("level", "?"))] += 1
        if "exception" in event:
            stats.tracebacks += 1
            logged = f"{event.get('logger')}: {event.get('msg')}\n{event['exception']}"
            stats.first_traceback = stats.first_traceback or logged
        if event.get("msg") == "listening" and not listening.done():
            listening.set_result(str(event["address"]))
    if not listening.done():
        listening.set_exception(RuntimeError("the exporter exited before listening"))


# --- faults and scrapes --------------------------------------------------------------------


def make_fault(kind: str, rng: random.Random) -> Fault:
    """A `Fault` of ``kind`` (one of `FAULT_KINDS`) for a random DLI operation."""
    operation = rng.choice((None, LIST_JOBS, EXECUTE_GRAPH))
    if kind == "429":
        return Fault(429, headers={"Retry-After": str(rng.randint(0, 2))}, operation=operation)
    if kind == "delay":
        delay = REQUEST_TIMEOUT_SECONDS + rng.uniform(0.2, 1.0)
        return Fault(503, delay=delay, operation=operation)
    if kind == "html":
        return Fault(502, body=_HTML_BODY, content_type="text/html", operation=operation)
    if kind == "bad_json":
        return Fault(200, body=_BAD_JSON_BODY, operation=operation)
    if kind == "graph_404":
        return Fault(404, operation=EXECUTE_GRAPH)
    if kind == "401":
        return Fault(401, body=_AUTH_BODY, operation=operation)
    if kind == "redirect":
        location = "http://127.0.0.2:9/v1.0/elsewhere"
        return Fault(rng.choice((301, 302, 307, 308)), headers={"Location": location})
    if kind == "hostile_values":
        return Fault(200, body=_HOSTILE_VALUES_BODY, operation=LIST_JOBS)
    if kind == "invalid_utf8":
        return Fault(200, body=_INVALID_UTF8_BODY, operation=LIST_JOBS)
    if kind == "hostile_headers":
        headers = rng.choice(_HOSTILE_HEADERS)
        return Fault(rng.choice((200, 503)), body=b"{}", headers=headers, operation=operation)
    return Fault(int(kind), operation=operation)


async def scrape(
    session: aiohttp.ClientSession,
    url: str,
    auth: dict[str, str],
    rng: random.Random,
    stats: ScrapeStats,
) -> None:
    """One scrape, text or OpenMetrics and plain or gzip at random; problems are counted."""
    openmetrics = rng.random() < 0.5
    gzip = rng.random() < 0.5
    headers = {
        "Accept": OPENMETRICS_ACCEPT if openmetrics else TEXT_ACCEPT,
        "Accept-Encoding": "gzip" if gzip else "identity",
        **auth,
    }
    stats.count += 1
    stats.formats[f"{'openmetrics' if openmetrics else 'text'}+{'gzip' if gzip else 'plain'}"] += 1
    started = time.monotonic()
    try:
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
        async with session.get(url, headers=headers, timeout=timeout) as response:
            body = await response.read()  # decompressed by aiohttp
            problem = _scrape_problem(response, body, openmetrics=openmetrics, gzip=gzip)
    except (aiohttp.ClientError, TimeoutError) as exc:
        problem = type(exc).__name__
    stats.seconds.append(time.monotonic() - started)
    if problem:
        stats.failures[problem] += 1
    else:
        stats.last_body = body.decode()


def _scrape_problem(
    response: aiohttp.ClientResponse, body: bytes, *, openmetrics: bool, gzip: bool
) -> str | None:
    if response.status != 200:
        return f"HTTP {response.status}"
    if (response.headers.get("Content-Encoding") == "gzip") != gzip:
        return "wrong Content-Encoding"
    if response.content_type.startswith("application/openmetrics-text") != openmetrics:
        return "wrong Content-Type"
    if openmetrics and not body.endswith(b"# EOF\n"):
        return "OpenMetrics body without # EOF"
    if b"dli_up{" not in body:
        return "no dli_up in body"
    return None


def api_requests(exposition: str) -> Counter[tuple[str, str]]:
    """``dli_api_requests_total`` summed over targets, by (operation, code)."""
    totals: Counter[tuple[str, str]] = Counter()
    for line in exposition.splitlines():
        match = _REQUESTS_LINE.match(line)
        if match:
            labels = dict(_LABEL.findall(match["labels"]))
            key = (labels.get("operation", "?"), labels.get("code", "?"))
            totals[key] += round(float(match["value"]))
    return totals


async def repeat(interval: float, until: float, action: Callable[[], Awaitable[None]]) -> None:
    """Run ``action`` every ``interval`` seconds until the monotonic time ``until``."""
    next_run = time.monotonic()
    while next_run < until:
        await action()
        next_run += interval
        await asyncio.sleep(max(0.0, next_run - time.monotonic()))


# --- the run -------------------------------------------------------------------------------


class Soak:
    """One soak run: the simulator, the exporter process and the measuring loops."""

    def __init__(self, duration: float, seed: int, jobs: int) -> None:
        self.duration = duration
        self.seed = seed
        self.jobs = (jobs, max(1, jobs // 5))  # one per target
        # Separate streams, so the faults drawn do not depend on how many scrapes ran.
        self._fault_rng = random.Random(f"faults-{seed}")
        self._scrape_rng = random.Random(f"scrapes-{seed}")
        self._attack_rng = random.Random(f"attacks-{seed}")
        self._password = secrets.token_urlsafe(16)
        self._auth = basic_auth(SOAK_USER, self._password)
        self._access_key = "SOAK" + secrets.token_hex(8).upper()
        self._secret_key = secrets.token_urlsafe(30)
        self._sim = Simulator(
            credentials={self._access_key: self._secret_key},
            seed=seed,
            lifecycle=True,
            request_log_limit=10_000,
        )
        self._projects = [secrets.token_hex(16) for _ in range(TARGETS)]
        for project_id, count in zip(self._projects, self.jobs, strict=True):
            self._sim.add_project(project_id)
            self._sim.populate(project_id, count)
        self._samples: list[Sample] = []
        self._scrapes = ScrapeStats()
        self._faults: Counter[str] = Counter()
        self._attacks = AttackStats()
        self._logs = LogStats()

    async def run(self) -> SoakResult:
        """Run for the whole duration and return what was measured."""
        async with serve(self._sim) as base_url:
            with tempfile.TemporaryDirectory(prefix="dli-soak-") as tmp:
                workdir = Path(tmp)
                config = workdir / "config.yaml"
                good_config = config_text(base_url, self._access_key, self._projects)
                config.write_text(good_config)
                web_config = workdir / "web.yaml"
                web_config.write_text(web_config_text(SOAK_USER, self._password))
                process = await self._start_exporter(config, web_config, workdir / "tasks.json")
                listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                assert process.stderr is not None
                drain = asyncio.create_task(drain_logs(process.stderr, self._logs, listening))
                try:
                    address = await asyncio.wait_for(listening, START_TIMEOUT)
                    api_port = int(base_url.rpartition(":")[2])

                    async def count_fds() -> int:
                        fds, _api = await asyncio.to_thread(read_fds, process.pid, api_port)
                        return fds

                    attacker = Attacker(
                        base_url=address,
                        pid=process.pid,
                        config_path=config,
                        good_config=good_config,
                        user=SOAK_USER,
                        password=self._password,
                        max_connections=MAX_WEB_CONNECTIONS,
                        header_timeout=HEADER_TIMEOUT_SECONDS,
                        workdir=workdir,
                        count_fds=count_fds,
                        stats=self._attacks,
                    )
                    await self._measure(attacker, api_port, workdir / "tasks.json")
                finally:
                    exit_code, stop_seconds = await _stop(process)
                    await asyncio.wait_for(drain, STOP_TIMEOUT)
        return SoakResult(
            duration=self.duration,
            seed=self.seed,
            jobs=self.jobs,
            samples=self._samples,
            scrapes=self._scrapes,
            faults=self._faults,
            attacks=self._attacks,
            logs=self._logs,
            exit_code=exit_code,
            stop_seconds=stop_seconds,
        )

    async def _start_exporter(
        self, config: Path, web_config: Path, tasks_file: Path
    ) -> asyncio.subprocess.Process:
        env = os.environ | {
            "SOAK_SECRET_KEY": self._secret_key,
            "SOAK_TASKS_FILE": str(tasks_file),
        }
        flags = (
            f"--web.config.file={web_config}",
            "--web.enable-lifecycle",
            f"--web.max-connections={MAX_WEB_CONNECTIONS}",
            f"--web.header-timeout={HEADER_TIMEOUT_SECONDS:g}s",
        )
        return await start_wrapped_exporter(WRAPPER, config, env, flags)

    async def _measure(self, attacker: Attacker, api_port: int, tasks_file: Path) -> None:
        base_url, pid = attacker.base_url, attacker.pid
        started = time.monotonic()
        # Samples are taken between attacks: an attack's own connections are not a leak.
        quiet = asyncio.Lock()

        async def sample() -> None:
            async with quiet:
                elapsed = time.monotonic() - started
                taken = await asyncio.to_thread(take_sample, pid, api_port, tasks_file, elapsed)
            self._samples.append(taken)

        async def attack() -> None:
            if self._attack_rng.random() < ATTACK_PROBABILITY:
                kind = self._attack_rng.choice(ATTACK_KINDS)
                async with quiet:
                    await attacker.run(kind, self._attack_rng)

        async def inject() -> None:
            if self._fault_rng.random() < FAULT_PROBABILITY:
                kind = self._fault_rng.choice(FAULT_KINDS)
                self._sim.inject_fault(make_fault(kind, self._fault_rng))
                self._faults[kind] += 1

        await sample()  # the start values, right after "listening"
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, base_url, self._auth)
            started = time.monotonic()
            until = started + self.duration

            async def scrape_once() -> None:
                await scrape(
                    session, f"{base_url}/metrics", self._auth, self._scrape_rng, self._scrapes
                )

            await asyncio.gather(
                repeat(SAMPLE_INTERVAL, until, sample),
                repeat(FAULT_INTERVAL, until, inject),
                repeat(ATTACK_INTERVAL, until, attack),
                repeat(SCRAPE_INTERVAL, until, scrape_once),
            )
            await sample()  # the end values


async def wait_ready(session: aiohttp.ClientSession, base_url: str, auth: dict[str, str]) -> None:
    """Wait until ``/-/ready`` answers 200 (every target polled once), at most `START_TIMEOUT`."""
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            async with session.get(f"{base_url}/-/ready", headers=auth) as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.1)


async def _stop(process: asyncio.subprocess.Process) -> tuple[int | None, float]:
    """SIGTERM the exporter; its exit code (``None``: killed after `STOP_TIMEOUT`) and seconds."""
    started = time.monotonic()
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        code: int | None = await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        code = None
    return code, time.monotonic() - started


# --- the report ----------------------------------------------------------------------------


def windows(samples: list[Sample], duration: float) -> tuple[list[Sample], list[Sample]]:
    """The samples of the fifth of the run after the warm-up, and of the last fifth.

    The warm-up is the first fifth of the run, and at least `MIN_WARMUP` seconds.
    """
    warm = max(WARMUP_SHARE * duration, MIN_WARMUP)
    settled = [s for s in samples if warm <= s.elapsed <= warm + WARMUP_SHARE * duration]
    final = [s for s in samples if s.elapsed >= (1 - WARMUP_SHARE) * duration]
    return settled, final


def _peak(samples: list[Sample], value: Callable[[Sample], float | None]) -> float | None:
    return max((v for v in map(value, samples) if v is not None), default=None)


@dataclass(frozen=True, slots=True)
class Metric:
    """A row of the resource table and how it is judged."""

    name: str
    value: Callable[[Sample], float | None]
    fmt: str
    #: How much its peak may grow from just after the warm-up to the last fifth.
    growth: float | None = None
    #: A bound it must never exceed.
    limit: float | None = None


METRICS: Final = (
    Metric("RSS (MB)", lambda s: s.rss_mb, ".1f", growth=RSS_TOLERANCE_MB),
    Metric("open fds", lambda s: s.fds, ".0f"),
    Metric("  API connections", lambda s: s.api_connections, ".0f", limit=MAX_API_CONNECTIONS),
    Metric("  other fds", lambda s: s.fds - s.api_connections, ".0f", growth=COUNT_TOLERANCE),
    Metric("threads", lambda s: s.threads, ".0f", growth=COUNT_TOLERANCE),
    Metric(
        "asyncio tasks, long-lived", lambda s: s.long_lived_tasks, ".0f", growth=COUNT_TOLERANCE
    ),
    Metric("asyncio tasks, all", lambda s: s.tasks, ".0f"),
)


def growth(samples: list[Sample], duration: float) -> list[str]:
    """What grew past its tolerance after the warm-up, or went past its bound.

    Growth compares peaks of two windows (the fifth of the run after the warm-up, and the last
    fifth), because fds and tasks dip and recover with polls in flight: a bounded value keeps
    its peak, a leak raises it. API connections may legitimately fill the pool slowly, up to
    one per request in flight, so they are held to that bound instead.
    """
    settled, final = windows(samples, duration)
    grown = []
    for metric in METRICS:
        fmt = metric.fmt
        if metric.growth is not None:
            before, after = _peak(settled, metric.value), _peak(final, metric.value)
            if before is None or after is None:
                grown.append(f"{metric.name.strip()}: no values")
            elif after - before > metric.growth:
                grown.append(f"{metric.name.strip()} {before:{fmt}} -> {after:{fmt}}")
        peak = _peak(samples, metric.value)
        if metric.limit is not None and peak is not None and peak > metric.limit:
            grown.append(f"{metric.name.strip()} {peak:{fmt}} > {metric.limit:{fmt}}")
    return grown


def failures(result: SoakResult) -> list[str]:
    """What went wrong besides growth."""
    found = []
    if result.scrapes.failures:
        found.append(f"{result.scrapes.failures.total()} failed scrapes")
    fds_bound = MAX_API_CONNECTIONS + MAX_WEB_CONNECTIONS + OTHER_FDS_ALLOWANCE
    if result.attacks.peak_fds_under_flood > fds_bound:
        found.append(
            f"{result.attacks.peak_fds_under_flood} fds open under partial connections "
            f"(bound {fds_bound})"
        )
    if result.attacks.problems:
        found.append(f"{len(result.attacks.problems)} attacks answered wrongly")
    if result.logs.tracebacks:
        found.append(f"{result.logs.tracebacks} log lines with a traceback")
    if result.exit_code != 0:
        exit_text = "killed" if result.exit_code is None else f"exit {result.exit_code}"
        found.append(f"exporter did not exit 0 within {STOP_TIMEOUT:g}s on SIGTERM ({exit_text})")
    return found


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def resource_table(samples: list[Sample], duration: float) -> list[str]:
    """Start, peak after the warm-up, peak of the last fifth, end and max of each resource."""
    settled, final = windows(samples, duration)
    lines = [f"{'':27}{'start':>9}{'warm-up':>9}{'last 20%':>9}{'end':>9}{'max':>9}"]
    for metric in METRICS:
        value = metric.value
        cells = (
            value(samples[0]),
            _peak(settled, value),
            _peak(final, value),
            value(samples[-1]),
            _peak(samples, value),
        )
        row = "".join(f"{_cell(cell, metric.fmt):>9}" for cell in cells)
        lines.append(f"{metric.name:27}{row}")
    return lines


def _latencies(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    ordered = sorted(seconds)
    p50, p99 = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99))
    return f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"


def attack_lines(stats: AttackStats) -> list[str]:
    """What the hostile scrapers and config files did, and every wrong answer."""
    statuses = ", ".join(
        f"{code or 'reset'} {n}" for code, n in sorted(stats.flood_statuses.items())
    )
    return [
        f"attacks: {sum(stats.runs.values())} ({_counts(Counter(stats.runs))})",
        f"  partial connections closed by the exporter: {stats.half_open_closed}; peak open "
        f"fds under them: {stats.peak_fds_under_flood} ({stats.peak_fds_after_burst} right "
        "after a burst)",
        f"  wrong logins answered: {statuses or 'none'}",
        f"  slowest reload answer: {stats.slowest_reload_seconds:.2f}s",
        *(f"  WRONG: {problem}" for problem in stats.problems[:10]),
    ]


def report(result: SoakResult) -> tuple[str, bool]:
    """The table and the verdict line; True when the run passed."""
    scrapes = result.scrapes
    requests = api_requests(scrapes.last_body)
    lines = [
        f"dli-exporter soak: {result.duration:g}s, seed {result.seed}, "
        f"jobs {result.jobs[0]}+{result.jobs[1]}, {len(result.samples)} samples",
        *resource_table(result.samples, result.duration),
        f"scrapes: {scrapes.count}, failed {scrapes.failures.total()}"
        + (f" ({_counts(scrapes.failures)})" if scrapes.failures else ""),
        f"  by format: {_counts(scrapes.formats)}",
        f"  seconds: {_latencies(scrapes.seconds)}",
        f"faults injected: {result.faults.total()} ({_counts(result.faults)})",
        *attack_lines(result.attacks),
    ]
    for operation in sorted({operation for operation, _ in requests}):
        by_code = Counter({code: n for (op, code), n in requests.items() if op == operation})
        lines.append(f"API requests, {operation}: {by_code.total()} ({_counts(by_code)})")
    lines += [
        f"log lines: {_counts(result.logs.levels)}; with a traceback: {result.logs.tracebacks}",
        f"exporter exit code: {result.exit_code} after SIGTERM, {result.stop_seconds:.2f}s",
    ]
    grown, failed = growth(result.samples, result.duration), failures(result)
    if grown:
        lines.append("GROWTH: " + "; ".join(grown))
    if failed:
        lines.append("FAILED: " + "; ".join(failed))
    if not grown and not failed:
        lines.append("verdict: no unbounded growth")
    return "\n".join(lines), not grown and not failed


# --- command line --------------------------------------------------------------------------


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < MIN_DURATION:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_DURATION:g}s")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The soak test's flags."""
    parser = argparse.ArgumentParser(prog="python bench/soak.py", description=__doc__)
    parser.add_argument(
        "--duration", type=_duration, default=600.0, help="how long to run, e.g. 30s, 10m, 1h"
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds jobs, faults and scrapes")
    parser.add_argument(
        "--jobs", type=int, default=300, help="jobs in the first project; the second gets 1/5"
    )
    return parser


def main() -> int:
    """Run the soak test; 0 when it passed, 1 otherwise."""
    args = build_parser().parse_args()
    print(
        f"soak: {args.duration:g}s, seed {args.seed}, jobs {args.jobs}; "
        f"python {sys.version.split()[0]}, {len(os.sched_getaffinity(0))} CPUs",
        file=sys.stderr,
        flush=True,
    )
    result = asyncio.run(Soak(args.duration, args.seed, args.jobs).run())
    table, passed = report(result)
    print(table)
    if result.logs.first_traceback:
        print(f"first traceback:\n{result.logs.first_traceback}", file=sys.stderr)
    if result.logs.unparsed:
        print("last non-JSON stderr lines:", *result.logs.unparsed, sep="\n", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
