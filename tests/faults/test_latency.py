"""A DLI that answers, but only after the client's timeout."""

from __future__ import annotations

from exporter.dli.api import LIST_JOBS
from tests.faults.conftest import FAULTY, Harness


async def test_latency_beyond_the_timeout_is_counted_as_timeout(harness: Harness) -> None:
    harness.faulty.latency = harness.settings.timeout * 2.5

    scrape = await harness.wait_down(LIST_JOBS, "timeout")

    assert set(scrape.codes(FAULTY, LIST_JOBS)) <= {"200", "timeout"}
    errors = harness.logged_errors()
    assert errors and all("code=timeout" in error for error in errors)
    await harness.recover()
