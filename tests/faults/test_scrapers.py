"""Scrapers that misbehave: hundreds of idle half-sent requests against a process with few fds.

The exporter runs as a real subprocess with ``RLIMIT_NOFILE`` at 256, as under ``ulimit -n 256``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp

from tests.processes import EXPORTER, free_port

FD_LIMIT = 256
PARTIAL_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"
#: Words of the lines asyncio logs for every failed accept(), and of the exporter's own warning.
EXHAUSTION_WORDS = ("out of system resource", "Too many open files", "cannot accept connections")


def limit_fds(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@asynccontextmanager
async def process(
    command: list[str], log_path: Path, limit: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log_path.open("wb") as log_file:
        child = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            preexec_fn=limit_fds(limit),
        )
    try:
        yield child
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


async def wait_for_line(log_path: Path, text: str) -> None:
    async with asyncio.timeout(30):
        while text not in log_path.read_text():
            await asyncio.sleep(0.05)


async def open_partial(port: int, count: int, stack: AsyncExitStack) -> int:
    """Open ``count`` connections that send half a request; returns how many connected."""
    opened = 0
    for _ in range(count):
        try:
            async with asyncio.timeout(5):
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(PARTIAL_REQUEST)
            stack.callback(writer.close)
            opened += 1
        except (OSError, TimeoutError):
            pass  # the backlog is full: the kernel stopped completing handshakes
    return opened


def exhaustion_lines(log_path: Path) -> list[str]:
    lines = log_path.read_text().splitlines()
    return [line for line in lines if any(word in line for word in EXHAUSTION_WORDS)]


async def test_partial_connections_do_not_starve_a_scrape_under_ulimit_256(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "stderr.log"
    command = [
        *EXPORTER,
        "--demo",
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--log.format",
        "json",
        "--web.max-connections",
        "1000",  # lowered to a quarter of the fd limit
    ]
    async with process(command, log_path, FD_LIMIT) as child, AsyncExitStack() as stack:
        await wait_for_line(log_path, '"msg": "listening"')
        assert await open_partial(port, 300, stack) > 200
        async with (
            aiohttp.ClientSession() as session,
            asyncio.timeout(30),
        ):
            while True:  # the demo's first polls finish on their own
                async with session.get(f"http://127.0.0.1:{port}/-/ready") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.05)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
        assert child.returncode is None
    assert "dli_job_info" in text
    assert "dli_exporter_http_connections_limit 64.0" in text
    lowered = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if "--web.max-connections lowered" in line
    ]
    assert [(e["requested"], e["max_connections"]) for e in lowered] == [(1000, 64)]
    assert len(exhaustion_lines(log_path)) <= 2, exhaustion_lines(log_path)


#: A guarded site with a limit far above its fds, so that accept() itself runs out of them.
EXHAUSTED_SERVER = """
import asyncio
from aiohttp import web
from exporter.listener import ConnectionLimits, GuardedSite
from exporter.logs import configure_logging

async def main() -> None:
    configure_logging("info", "json")
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    limits = ConnectionLimits(max_connections=100_000, header_timeout=120)
    site = GuardedSite(runner, "127.0.0.1", 0, limits=limits, quiet_period=2.5)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_running_out_of_fds_is_logged_once_per_episode(tmp_path: Path) -> None:
    log_path = tmp_path / "stderr.log"
    command = [sys.executable, "-c", EXHAUSTED_SERVER]
    async with process(command, log_path, 64) as child:
        assert child.stdout is not None
        async with asyncio.timeout(20):
            port = int(await child.stdout.readline())
        async with AsyncExitStack() as stack:
            await open_partial(port, 120, stack)
            await wait_for_line(log_path, "cannot accept connections")
            await asyncio.sleep(3)  # the fault lasts a while: asyncio retries every second
        await wait_for_line(log_path, "accept() failures stopped")  # the fds came back
        events = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [e["msg"] for e in events if e["level"] == "warning"] == [
        "cannot accept connections: out of file descriptors or memory; retrying every second"
    ]
    again = next(e for e in events if e["msg"] == "accept() failures stopped")
    assert again["failed_accepts"] >= 2  # many failed accept() calls, one warning
    assert exhaustion_lines(log_path) == [
        line for line in log_path.read_text().splitlines() if "cannot accept connections" in line
    ]
    assert "Traceback" not in log_path.read_text()
