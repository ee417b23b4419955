"""A burst of 429s (API gateway throttling, ``APIG.0308``) asking to come back later."""

from __future__ import annotations

from exporter.dli.api import LIST_JOBS
from exporter.simulator import Fault
from tests.faults.conftest import FAULTY, Harness

BURST = 3


async def test_a_429_burst_with_retry_after_is_waited_out(harness: Harness) -> None:
    # Retry-After (1 s) is beyond the poll's deadline (0.27 s): each poll gives up after one
    # attempt instead of hammering a throttled API; the burst lasts BURST polls.
    throttled = Fault(status=429, headers={"Retry-After": "1"}, operation=LIST_JOBS)
    harness.faulty.inject_fault(throttled, times=BURST)

    await harness.wait_down(LIST_JOBS, "429")
    scrape = await harness.recover(clear=False)  # the burst ends on its own

    assert scrape.requests(FAULTY, LIST_JOBS, "429") == BURST
    answered = [r.status for r in harness.faulty.request_log if r.operation == LIST_JOBS]
    assert answered.count(429) == BURST
    errors = harness.logged_errors()
    assert errors and all("code=429" in e and "APIG.0308" in e for e in errors)
    assert harness.retried_with("429") == []
