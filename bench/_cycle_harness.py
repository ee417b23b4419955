"""Bench only: the processes and requests a `bench/cycle.py` run is made of.

The simulator's process, the exporter's config and log, scrapes as Prometheus makes them, and
what ``/proc`` says about a process's CPU and memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Final

import aiohttp
from _cycle_records import RUNNING_FRACTION, Api, Scrape, Settings

#: What Prometheus 2.x sends (scrape.go's scrapeAcceptHeader, up to 2.x with OpenMetrics on).
PROMETHEUS_HEADERS: Final = {
    "Accept": "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
#: The scrapers themselves wait longer, so that naive scrapes get a real latency.
SCRAPE_CLIENT_TIMEOUT: Final = 600.0
#: The exporter's per-request timeout (at most half the poll interval: it must be shorter).
REQUEST_TIMEOUT: Final = 10.0
#: The config's highest rate limit: far above what a poll needs, so it never throttles.
RATE_LIMIT: Final = 10_000
START_TIMEOUT: Final = 120.0
#: The config line of ``--sources off``: the job list and execute graphs only.
SOURCES_OFF: Final = "sources: {cloud_eye: false, queues: false, elastic_resource_pools: false}"
STOP_TIMEOUT: Final = 10.0

# --- scrapes --------------------------------------------------------------------------------------


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


# --- processes ------------------------------------------------------------------------------------


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
    """One target on the simulator (its Cloud Eye too, unless the sources are off); the secret
    key comes from ``CYCLE_SECRET_KEY``."""
    path.write_text(
        "\n".join(
            [
                f"poll_interval: {settings.poll_interval:g}s",
                f"timeout: {min(REQUEST_TIMEOUT, settings.poll_interval / 2):g}s",
                f"concurrency: {settings.concurrency}",
                f"rate_limit: {RATE_LIMIT}",
                *([] if settings.sources else [SOURCES_OFF]),
                "targets:",
                "  - name: bench",
                "    region: cn-north-4",
                f'    project_id: "{api.project_id}"',
                f"    endpoint: {api.url}",
                f"    ces_endpoint: {api.url}",
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
