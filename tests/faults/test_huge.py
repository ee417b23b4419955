"""Big answers: a full page of jobs with long texts, and a body beyond the client's cap."""

from __future__ import annotations

from exporter.dli.api import LIST_JOBS
from exporter.dli.jobs import MAX_BODY_BYTES
from exporter.dli.paging import PAGE_SIZE
from exporter.simulator import Fault
from tests.conftest import PROJECT
from tests.faults.conftest import FAULTY, LATE_RETRY, Harness, Scrape


async def test_a_body_beyond_the_size_cap_is_refused(harness: Harness) -> None:
    oversized = b" " * (MAX_BODY_BYTES[LIST_JOBS] + 1)
    harness.faulty.set_fault(Fault(status=200, body=oversized, operation=LIST_JOBS))

    scrape = await harness.wait_down(LIST_JOBS, "error")

    assert set(scrape.codes(FAULTY, LIST_JOBS)) <= {"200", "error", LATE_RETRY}
    errors = harness.logged_errors(retried=True)
    assert errors and all("too large" in error for error in errors)
    await harness.recover()


async def test_a_full_page_of_jobs_with_long_texts_is_published(harness: Harness) -> None:
    # A page of ~400 KB: well under the cap, but more than one socket read.
    for index in range(PAGE_SIZE - len(harness.faulty.jobs(PROJECT))):
        harness.faulty.add_job(
            PROJECT,
            name=f"job-{index:03d}-" + "n" * 200,
            desc="d" * 3000,
            status="job_cancel_success",
        )
    expected = {job.job_id for job in harness.faulty.jobs(PROJECT)}

    def settled(s: Scrape) -> bool:  # either outcome of a poll after the jobs were added
        return s.up(FAULTY) == 0.0 or s.job_ids(FAULTY) == expected

    scrape = await harness.wait_for(settled, "a poll of the full page")

    assert scrape.up(FAULTY) == 1.0, harness.logged_errors()
    assert len(scrape.job_ids(FAULTY)) == PAGE_SIZE
    harness.assert_healthy_untouched(scrape)
    await harness.assert_no_secrets()
