"""Connections that break: reset without an answer, or closed in the middle of the body."""

from __future__ import annotations

from exporter.dli.api import LIST_JOBS
from exporter.simulator import Fault
from tests.faults.conftest import FAULTY, LATE_RETRY, Harness, encode, list_page_body


async def test_a_connection_reset_is_counted_as_error(harness: Harness) -> None:
    harness.faulty.set_fault(Fault(reset=True, operation=LIST_JOBS))

    scrape = await harness.wait_down(LIST_JOBS, "error")

    assert set(scrape.codes(FAULTY, LIST_JOBS)) <= {"200", "error", LATE_RETRY}
    errors = harness.logged_errors(retried=True)
    assert errors and all("Connection reset" in error for error in errors)
    assert 0 in {r.status for r in harness.faulty.request_log}
    await harness.recover()


async def test_a_truncated_body_is_counted_as_error(harness: Harness) -> None:
    body = encode(list_page_body(harness.faulty))
    harness.faulty.set_fault(Fault(status=200, body=body, truncate=True, operation=LIST_JOBS))

    scrape = await harness.wait_down(LIST_JOBS, "error")

    assert set(scrape.codes(FAULTY, LIST_JOBS)) <= {"200", "error", LATE_RETRY}
    assert harness.logged_errors(retried=True)
    await harness.recover()
