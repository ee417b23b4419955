"""The per-target token bucket, proven on the simulator's request log."""

from __future__ import annotations

import aiohttp
import pytest

from exporter.exposition import SnapshotStore
from exporter.poller import Poller
from exporter.ratelimit import RateLimiter
from exporter.simulator import Simulator
from tests.conftest import PROJECT, jobs_of, make_client, make_target


def busiest_second(times: list[float]) -> int:
    """The most requests seen in any one-second window."""
    times = sorted(times)
    start, best = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_a_poll_never_exceeds_the_rate_by_more_than_one_burst(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    for _ in range(30):
        simulator.add_job(PROJECT, status="job_running")
    limiter = RateLimiter(20, burst=2)
    target = make_target("t", sim_url, concurrency=8)
    client = make_client(session, target, limiter=limiter)

    snapshot = await Poller(
        target, jobs_of(client, target), SnapshotStore(["t"]).publish
    ).poll_once()

    assert snapshot.up and len(snapshot.jobs) == 30
    times = [record.time for record in simulator.request_log]
    assert len(times) == 31  # one list page and one execute-graph per running job
    assert busiest_second(times) <= limiter.rate + limiter.burst


def test_busiest_second_counts_a_sliding_window() -> None:
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.5, 3.0]) == 3
    assert busiest_second([0.0, 0.1, 0.2, 0.3]) == 4
    assert busiest_second([]) == 0


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, 1)])
def test_a_rate_must_be_positive(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate, burst)


async def test_a_burst_goes_out_without_waiting() -> None:
    now = [100.0]
    limiter = RateLimiter(1, burst=3, monotonic=lambda: now[0])
    for _ in range(3):
        await limiter.acquire()  # would sleep (and the clock would not move) if it had to wait
    now[0] += 1.0
    await limiter.acquire()
