"""The simulator's fault knobs the fault suite relies on, checked against a raw HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from exporter.signing import sign_request
from exporter.simulator import EXECUTE_GRAPH, IAM_TOKEN, LIST_JOBS, Fault, Simulator, serve
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY

JOBS_PATH = f"/v1.0/{PROJECT}/streaming/jobs"


@pytest.fixture
def sim() -> Simulator:
    sim = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, lifecycle=False)
    sim.add_project(PROJECT)
    return sim


@pytest.fixture
async def base(sim: Simulator) -> AsyncIterator[str]:
    async with serve(sim) as url:
        yield url


def signed(url: str) -> dict[str, str]:
    return sign_request(
        "GET", url, {}, b"", access_key=ACCESS_KEY, secret_key=SECRET_KEY, now=datetime.now(UTC)
    )


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=signed(url)) as resp:
        return resp.status, await resp.read()


def test_standing_faults_apply_until_cleared_after_queued_ones(sim: Simulator) -> None:
    queued, anything = Fault(status=429), Fault(status=500)
    listing = Fault(status=503, operation=LIST_JOBS)
    sim.inject_fault(queued)
    sim.set_fault(Fault(status=502))
    sim.set_fault(anything)  # replaces the 502: one standing fault per operation
    sim.set_fault(listing)

    assert sim.take_fault(LIST_JOBS) is queued
    assert [sim.take_fault(LIST_JOBS) for _ in range(2)] == [listing, listing]
    assert [sim.take_fault(EXECUTE_GRAPH) for _ in range(2)] == [anything, anything]
    assert sim.take_fault(IAM_TOKEN) is None  # IAM only answers faults meant for it
    sim.clear_faults()
    assert sim.take_fault(LIST_JOBS) is None and sim.take_fault(EXECUTE_GRAPH) is None


async def test_reset_answers_nothing(sim: Simulator, base: str) -> None:
    sim.set_fault(Fault(reset=True))

    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(base + JOBS_PATH)

    assert {(r.operation, r.status) for r in sim.request_log} == {(LIST_JOBS, 0)}


async def test_truncate_announces_the_whole_body_and_sends_half(sim: Simulator, base: str) -> None:
    body = b'{"is_success": "true", "job_list": {"total_count": 0, "jobs": []}}'
    sim.set_fault(Fault(status=200, body=body, truncate=True))
    url = base + JOBS_PATH

    async with aiohttp.ClientSession() as session, session.get(url, headers=signed(url)) as resp:
        assert resp.headers["Content-Length"] == str(len(body))
        assert resp.headers["X-Request-Id"]
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()

    assert sim.request_log[-1].status == 200


async def test_a_job_deleted_after_the_next_listing(sim: Simulator, base: str) -> None:
    job = sim.add_job(PROJECT)
    sim.delete_after_next_list(PROJECT, job.job_id)

    status, listed = await fetch(base + JOBS_PATH)
    assert status == 200 and str(job.job_id).encode() in listed
    status, _ = await fetch(f"{base}{JOBS_PATH}/{job.job_id}/execute-graph")
    assert status == 404
    status, listed = await fetch(base + JOBS_PATH)
    assert status == 200 and str(job.job_id).encode() not in listed
