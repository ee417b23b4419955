"""``python -m exporter.simulator --projects N``: N populated projects, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from exporter.signing import sign_request

AK = "cli-test-ak"
SK = "cli-test-sk-not-a-real-secret"
BASE_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def simulator_url() -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter.simulator",
        "--projects",
        "3",
        "--jobs",
        "5",
        "--port",
        "0",
        "--no-lifecycle",
        "--project-id",
        BASE_ID,
        "--access-key",
        AK,
        "--secret-key",
        SK,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        prefix = "listening on "
        assert line.startswith(prefix), line
        yield line[len(prefix) :].strip()
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def list_jobs(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    headers = sign_request("GET", url, {}, b"", access_key=AK, secret_key=SK, now=datetime.now(UTC))
    async with session.get(url, headers=headers) as resp:
        return resp.status, json.loads(await resp.text())


async def test_each_project_lists_its_jobs_and_an_unknown_one_does_not(
    simulator_url: str,
) -> None:
    async with aiohttp.ClientSession() as session:
        job_ids: set[int] = set()
        for index in range(3):
            url = f"{simulator_url}/v1.0/{BASE_ID}-{index:04d}/streaming/jobs?limit=100"
            status, body = await list_jobs(session, url)
            assert status == 200, body
            jobs = body["job_list"]["jobs"]
            assert body["job_list"]["total_count"] == len(jobs) == 5
            job_ids.update(job["job_id"] for job in jobs)
        assert len(job_ids) == 15
        for project in (BASE_ID, f"{BASE_ID}-0003"):
            status, body = await list_jobs(
                session, f"{simulator_url}/v1.0/{project}/streaming/jobs"
            )
            assert status == 404, body
