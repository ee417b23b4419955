"""Bench only: one `bench/scale.py` case, from starting the simulator to stopping the exporter.

The simulator serves ``targets`` projects; the exporter polls one target per project. The run
measures the time to ready, then a window of full poll intervals under back-to-back scrapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import secrets
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
from _cycle_harness import (
    RATE_LIMIT,
    REQUEST_TIMEOUT,
    SOURCES_OFF,
    START_TIMEOUT,
    cpu_seconds,
    drain_logs,
    peak_rss_mb,
    scrape,
    stop_process,
)
from _cycle_records import Scrape, count_series
from _process import start_wrapped_exporter
from _scale_metrics import Sample, Stalls, minimum_calls, parse, polled_since, stalls

#: The normal CLI (the wrapper adds nothing without its ``CYCLE_*`` variables).
WRAPPER: Final = Path(__file__).with_name("_cycle_exporter.py")
SECRET_ENV: Final = "SCALE_SECRET_KEY"
PROJECT_ID: Final = "0123456789abcdef0123456789abcdef"
CONCURRENCY: Final = 16
READY_POLL: Final = 0.05
#: A third of the jobs run (as the simulator is asked; the count is read back).
RUNNING_FRACTION: Final = 0.333
RSS_SAMPLE: Final = 0.5
#: How long past the window the last round's render is awaited, in intervals; how often.
END_GRACE: Final = 1.0
END_CHECK: Final = 1.0


@dataclass(frozen=True, slots=True)
class Case:
    """One shape to run."""

    targets: int
    jobs: int
    sources: bool
    interval: float
    latency: float
    rounds: int
    scrapers: int
    running_fraction: float
    ready_timeout: float


@dataclass(slots=True)
class Result:
    """What a case measured; ``problems`` non-empty means the exporter failed."""

    case: Case
    ready: float | None = None
    scrapes: list[Scrape] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    rss_peak: float = 0.0
    cpu_per_round: float = 0.0
    plain_bytes: int = 0
    gzip_bytes: int = 0
    series: int = 0
    window: Stalls | None = None
    whole_run: Stalls | None = None
    calls: dict[str, float] = field(default_factory=dict)
    failed_calls: dict[str, float] = field(default_factory=dict)
    minimum: dict[str, int] = field(default_factory=dict)
    running: int = 0
    exit_code: int | None = None
    log_levels: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    window_seconds: float = 0.0

    def rss_steady(self) -> tuple[float, float]:
        """Median and max of the window's VmRSS samples, in MB."""
        return (statistics.median(self.rss), max(self.rss)) if self.rss else (0.0, 0.0)

    def latencies(self) -> tuple[float, float, float]:
        """p50, p99 and max of the successful scrapes, in seconds."""
        values = sorted(s.seconds for s in self.scrapes if s.problem is None)
        if not values:
            return 0.0, 0.0, 0.0
        return (
            values[len(values) // 2],
            values[min(len(values) - 1, len(values) * 99 // 100)],
            values[-1],
        )


def project_ids(targets: int) -> list[str]:
    """The simulator's project ids (as ``--projects`` names them)."""
    return [PROJECT_ID] if targets == 1 else [f"{PROJECT_ID}-{i:04d}" for i in range(targets)]


def target_names(targets: int) -> list[str]:
    return [f"t{index:04d}" for index in range(targets)]


async def start_simulator(
    case: Case, access_key: str, secret_key: str
) -> tuple[asyncio.subprocess.Process, str]:
    """``python -m exporter.simulator --projects`` on a free port; the process and its URL."""
    flags = {
        "--port": "0",
        "--projects": str(case.targets),
        "--project-id": PROJECT_ID,
        "--jobs": str(case.jobs),
        "--running-fraction": repr(case.running_fraction),
        "--latency": f"{case.latency * 1000:g}ms",
        "--access-key": access_key,
        "--secret-key": secret_key,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter.simulator",
        "--no-lifecycle",
        *(part for pair in flags.items() for part in pair),
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


def write_config(path: Path, case: Case, url: str, access_key: str) -> None:
    """One target per simulated project; the secret key comes from `SECRET_ENV`."""
    lines = [
        f"poll_interval: {case.interval * 1000:g}ms",
        f"timeout: {min(REQUEST_TIMEOUT, case.interval / 2) * 1000:g}ms",
        f"concurrency: {CONCURRENCY}",
        f"rate_limit: {RATE_LIMIT}",
        *([] if case.sources else [SOURCES_OFF]),
        "targets:",
    ]
    for name, project in zip(target_names(case.targets), project_ids(case.targets), strict=True):
        lines += [
            f"  - name: {name}",
            "    region: cn-north-4",
            f'    project_id: "{project}"',
            f"    endpoint: {url}",
            f"    ces_endpoint: {url}",
            "    auth:",
            f"      access_key: {access_key}",
            f"      secret_key: ${{{SECRET_ENV}}}",
        ]
    path.write_text("\n".join([*lines, ""]))


def vm_rss_mb(pid: int) -> float:
    """The resident set size of ``pid`` now (``VmRSS``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_ready(session: aiohttp.ClientSession, url: str, deadline: float) -> bool:
    """Poll ``/-/ready`` every `READY_POLL` seconds until it answers 200 or ``deadline``."""
    while time.perf_counter() < deadline:
        try:
            async with session.get(f"{url}/-/ready") as response:
                if response.status == 200:
                    return True
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(READY_POLL)
    return False


async def _scrape_loop(
    session: aiohttp.ClientSession, url: str, stop: asyncio.Event, result: Result, last: list[bytes]
) -> None:
    while not stop.is_set():
        record, body = await scrape(session, url)
        result.scrapes.append(record)
        if record.problem is None:
            last[:] = [body]


async def _sample_rss(pid: int, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        out.append(vm_rss_mb(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RSS_SAMPLE)


async def _snapshot(
    session: aiohttp.ClientSession, url: str, result: Result, parser: ProcessPoolExecutor
) -> Sample | None:
    """Scrape and parse in another process, so that the scrapers' timings stay the server's."""
    record, body = await scrape(session, url)
    if record.problem is not None:
        result.problems.append(f"a /metrics scrape failed: {record.problem}")
        return None
    return await asyncio.get_running_loop().run_in_executor(parser, parse, body)


async def measure(session: aiohttp.ClientSession, url: str, pid: int, result: Result) -> None:
    """The window: ``rounds`` poll intervals of back-to-back scrapes and RSS samples.

    The exposition (the self-metrics with it) changes only when a poll's data is rendered, so
    the window runs on past ``rounds`` intervals until a scrape shows every target `rounds`
    polls further than at the start (or `END_GRACE` intervals more have passed).
    """
    case = result.case
    metrics, names = f"{url}/metrics", target_names(case.targets)
    parser = ProcessPoolExecutor(max_workers=1)
    before = await _snapshot(session, metrics, result, parser)
    cpu, started = cpu_seconds(pid), time.perf_counter()
    stop, last = asyncio.Event(), [b""]
    tasks = [
        asyncio.create_task(_scrape_loop(session, metrics, stop, result, last))
        for _ in range(case.scrapers)
    ]
    tasks.append(asyncio.create_task(_sample_rss(pid, stop, result.rss)))
    await asyncio.sleep(case.rounds * case.interval)
    deadline = time.perf_counter() + END_GRACE * case.interval
    after = await _snapshot(session, metrics, result, parser)
    polled = (case.rounds - 0.5) * case.interval
    while before and after and not polled_since(before, after, names, polled):
        if time.perf_counter() > deadline:
            result.notes.append("the window ended before every target polled `rounds` times")
            break
        await asyncio.sleep(END_CHECK)
        after = await _snapshot(session, metrics, result, parser)
    stop.set()
    await asyncio.gather(*tasks)
    parser.shutdown()
    result.window_seconds = time.perf_counter() - started
    intervals = result.window_seconds / case.interval
    result.cpu_per_round = (cpu_seconds(pid) - cpu) / intervals
    if failed := sum(1 for s in result.scrapes if s.problem is not None):
        result.problems.append(f"{failed} scrapes failed")
    if not last[0]:  # no scrapers: one more scrape for the exposition's size
        record, body = await scrape(session, metrics)
        last[0] = body if record.problem is None else b""
    if last[0]:
        plain = gzip.decompress(last[0])
        result.gzip_bytes, result.plain_bytes = len(last[0]), len(plain)
        result.series = count_series(plain)
    if before is None or after is None:
        return
    result.window, result.whole_run = stalls(before, after), stalls(None, after)
    for op in after.calls:
        result.calls[op] = (after.calls[op] - before.calls[op]) / case.rounds
        result.failed_calls[op] = (after.failed_calls[op] - before.failed_calls[op]) / case.rounds
    names = target_names(case.targets)
    result.minimum = minimum_calls(case.jobs, names, after, sources=case.sources)
    result.running = sum(after.running[name] for name in names)


async def run_case(case: Case, workdir: Path) -> Result:
    """Run one case; never raises for the exporter's failures (they go in ``problems``)."""
    access_key, secret_key = f"scale-{secrets.token_hex(4)}", secrets.token_hex(16)
    result = Result(case)
    simulator, sim_url = await start_simulator(case, access_key, secret_key)
    try:
        config = workdir / f"scale-{case.targets}x{case.jobs}.yaml"
        write_config(config, case, sim_url, access_key)
        env = {**os.environ, SECRET_ENV: secret_key}
        started = time.perf_counter()
        exporter = await start_wrapped_exporter(WRAPPER, config, env)
        assert exporter.stderr is not None
        listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        logs = asyncio.create_task(drain_logs(exporter.stderr, result.log_levels, listening))
        try:
            await _drive(exporter, listening, started, result)
        finally:
            result.exit_code = await stop_process(exporter)
            await logs
        if result.exit_code != 0:
            result.problems.append(f"the exporter exited with {result.exit_code}")
    finally:
        await stop_process(simulator)
    return result


async def _drive(
    exporter: asyncio.subprocess.Process,
    listening: asyncio.Future[str],
    started: float,
    result: Result,
) -> None:
    case = result.case
    try:
        url = await asyncio.wait_for(listening, START_TIMEOUT)
    except (TimeoutError, RuntimeError) as exc:
        result.problems.append(f"the exporter did not listen: {exc}")
        return
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=case.scrapers + 2)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=connector, auto_decompress=False
    ) as session:
        if not await wait_ready(session, url, started + case.ready_timeout):
            result.problems.append(f"not ready within {case.ready_timeout:g}s")
            return
        result.ready = time.perf_counter() - started
        await measure(session, url, exporter.pid, result)
        result.rss_peak = peak_rss_mb(exporter.pid)
