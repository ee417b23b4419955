"""Listing jobs against a job list that lies about its size or changes while it is paged.

The stand-in here is a plain loopback server (no signature check) whose list answers come from
an in-memory list of jobs in creation order; tests make its ``total_count`` wrong, or create
and delete jobs between every page, and check what `JobsApi.list_jobs` returns.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from exporter.dli.paging import PAGE_SIZE
from exporter.errors import DliApiError
from tests.conftest import PROJECT, make_client, make_target

TotalCount = Callable[[int], object]


@dataclass
class ChangingList:
    """Jobs by id in creation order; ``churn`` runs after every page is answered."""

    ids: list[int]
    #: What the answers report as ``total_count`` for the real count (default: the truth).
    total_count: TotalCount | None = None
    newest_first: bool = False
    churn: Callable[[ChangingList], None] | None = None
    next_id: int = 1_000_000
    requests: list[tuple[int, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        offset = int(request.query["offset"])
        limit = int(request.query["limit"])
        self.requests.append((offset, request.query.get("order", "desc")))
        ordered = self.ids[::-1] if self.newest_first else self.ids
        page = ordered[offset : offset + limit]
        total = len(self.ids)
        body = {
            "is_success": "true",
            "job_list": {
                "total_count": total if self.total_count is None else self.total_count(total),
                "jobs": [
                    {"job_id": job_id, "name": f"job-{job_id}", "status": "job_idle"}
                    for job_id in page
                ],
            },
        }
        if self.churn is not None:
            self.churn(self)
        return web.json_response(body)

    def create(self) -> int:
        self.next_id += 1
        self.ids.append(self.next_id)
        return self.next_id


#: Serves a `ChangingList` on loopback; returns its base URL.
Serve = Callable[[ChangingList], Awaitable[str]]


@pytest.fixture
async def serve_list() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(jobs: ChangingList) -> str:
        app = web.Application()
        app.router.add_get(f"/v1.0/{PROJECT}/streaming/jobs", jobs.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def listed(session: aiohttp.ClientSession, url: str, concurrency: int = 4) -> set[int]:
    client = make_client(session, make_target("t", url, concurrency=concurrency))
    return {job.job_id for job in await client.list_jobs()}


@pytest.mark.parametrize("total", [10**9, 2**53])
async def test_a_huge_total_count_ends_at_the_first_short_page(
    total: int, serve_list: Serve, session: aiohttp.ClientSession
) -> None:
    jobs = ChangingList(list(range(1, 151)), total_count=lambda _n: total)
    url = await serve_list(jobs)

    assert await listed(session, url, concurrency=4) == set(range(1, 151))
    # Pages at 0 and 99 hold the jobs; at most the pages already in flight are wasted.
    assert len(jobs.requests) <= 2 + 3


@pytest.mark.parametrize("total", [50, 0, -1, -(10**9), None, "many", 10**400])
async def test_a_total_count_too_small_or_unusable_does_not_cut_the_listing(
    total: object,
    serve_list: Serve,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jobs = ChangingList(list(range(1, 151)), total_count=lambda _n: total)
    url = await serve_list(jobs)
    client = make_client(session, make_target("t", url))
    caplog.set_level(logging.WARNING)

    for _ in range(3):
        assert {job.job_id for job in await client.list_jobs()} == set(range(1, 151))

    disagreed = [r for r in caplog.records if "total_count disagrees" in r.getMessage()]
    rejected = [r for r in caplog.records if "were dropped or repaired" in r.getMessage()]
    if total in (0, 50):
        assert len(disagreed) == 1  # logged once, not on every listing
    elif total is not None:  # impossible (negative, huge) or not a number: dropped, logged once
        assert disagreed == []
        assert len(rejected) == 1


async def test_a_correct_total_count_costs_no_extra_page(
    serve_list: Serve, session: aiohttp.ClientSession
) -> None:
    jobs = ChangingList(list(range(1, 1001)))
    url = await serve_list(jobs)

    assert await listed(session, url) == set(range(1, 1001))
    # 1,000 jobs with pages 99 apart: offsets 0, 99, ..., 990 (the last holds 10 jobs).
    assert sorted(offset for offset, _ in jobs.requests) == [99 * i for i in range(11)]
    assert {order for _, order in jobs.requests} == {"asc"}


async def test_an_empty_page_ends_the_listing(
    serve_list: Serve, session: aiohttp.ClientSession
) -> None:
    jobs = ChangingList(list(range(1, PAGE_SIZE + 1)))
    url = await serve_list(jobs)

    assert await listed(session, url) == set(range(1, PAGE_SIZE + 1))
    assert sorted(offset for offset, _ in jobs.requests) == [0, 99]


class Churn:
    """Between every two pages: create ``create`` jobs and delete ``delete`` random ones."""

    def __init__(self, seed: int, *, create: int = 1, delete: int = 1) -> None:
        self.rng = random.Random(seed)
        self.create, self.delete = create, delete
        self.deleted: set[int] = set()
        self.created: set[int] = set()

    def __call__(self, jobs: ChangingList) -> None:
        for _ in range(self.create):
            self.created.add(jobs.create())
        for _ in range(min(self.delete, len(jobs.ids))):
            victim = jobs.ids.pop(self.rng.randrange(len(jobs.ids)))
            self.deleted.add(victim)


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
@pytest.mark.parametrize("seed", range(4))
async def test_a_job_that_exists_for_the_whole_listing_is_never_missed(
    seed: int, newest_first: bool, serve_list: Serve, session: aiohttp.ClientSession
) -> None:
    """Jobs created and deleted between every page, in either listing order the API might use.

    Without overlapping pages, each deletion before an unfetched page's offset slides a job
    into a page already fetched: a different job is missing on every listing.
    """
    jobs = ChangingList(list(range(1, 1201)), newest_first=newest_first)
    url = await serve_list(jobs)
    client = make_client(session, make_target("t", url, concurrency=4))
    for _ in range(5):
        churn = Churn(seed)
        jobs.churn = None
        existing = set(jobs.ids)
        jobs.churn = churn
        got = {job.job_id for job in await client.list_jobs()}
        throughout = existing - churn.deleted
        assert throughout <= got, f"missed {sorted(throughout - got)[:10]}"
        assert got <= existing | churn.created  # nothing made up


async def test_churn_beyond_what_paging_can_bridge_fails_the_listing(
    serve_list: Serve, session: aiohttp.ClientSession
) -> None:
    """Half the list deleted and re-created between pages: refuse rather than publish a part."""
    jobs = ChangingList(list(range(1, 1001)))
    jobs.churn = Churn(0, create=500, delete=500)
    url = await serve_list(jobs)

    with pytest.raises(DliApiError) as caught:
        await make_client(session, make_target("t", url)).list_jobs()

    assert caught.value.code == "inconsistent"
