"""Running the exporter and its companions as real processes, for the process-level tests."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp

EXPORTER = [sys.executable, "-m", "exporter"]


@asynccontextmanager
async def exporter_process(
    *args: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process, list[str]]]:
    """Start the exporter on an ephemeral port; yields its URL, the process and its log lines.

    ``env``: the process's whole environment (default: this one's); later ``args`` win over the
    listen address and log format given first.
    """
    process = await asyncio.create_subprocess_exec(
        *EXPORTER,
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.format",
        "json",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=None if env is None else dict(env),
    )
    assert process.stderr is not None
    lines: list[str] = []
    url = ""
    async with asyncio.timeout(20):
        while not url:
            line = (await process.stderr.readline()).decode()
            assert line, f"exporter exited early: {lines}"
            lines.append(line)
            event = json.loads(line)
            if event["msg"] == "listening":
                url = event["address"]

    async def drain() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            lines.append(raw.decode())

    drainer = asyncio.create_task(drain())
    try:
        yield url, process, lines
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await drainer


async def scrape_when_ready(url: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(10):
            while True:
                async with session.get(f"{url}/-/ready") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.05)
        async with session.get(f"{url}/metrics") as resp:
            return await resp.text()


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(5):
        return await process.wait()


def free_port() -> int:
    """A port free right now on 127.0.0.1, for programs that cannot report an ephemeral one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
