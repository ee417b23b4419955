"""A job deleted between the listing and its execute-graph call (which then answers 404)."""

from __future__ import annotations

import pytest

from exporter.dli.api import EXECUTE_GRAPH, LIST_JOBS
from tests.conftest import PROJECT
from tests.faults.conftest import FAULTY, FaultSettings, Harness, Scrape


@pytest.fixture
def settings() -> FaultSettings:
    """Slower polls: the snapshot that still has the deleted job lives one interval."""
    return FaultSettings(poll_interval=1.0)


async def test_a_job_deleted_before_its_execute_graph_is_published_without_flink_state(
    harness: Harness,
) -> None:
    doomed = next(job for job in harness.faulty.jobs(PROJECT) if job.status == "job_running")
    harness.faulty.delete_after_next_list(PROJECT, doomed.job_id)

    def published_without_flink_state(s: Scrape) -> bool:
        return (
            s.requests(FAULTY, EXECUTE_GRAPH, "404") >= 1
            and doomed.job_id in s.job_ids(FAULTY)
            and s.flink_state(FAULTY, doomed.job_id) is None
        )

    scrape = await harness.wait_for(published_without_flink_state, "the 404 round published")

    assert scrape.up(FAULTY) == 1.0
    assert scrape.job_value("dli_job_status", FAULTY, doomed.job_id, status="job_running") == 1
    others = [job for job in harness.faulty.jobs(PROJECT) if job.status == "job_running"]
    assert all(scrape.flink_state(FAULTY, job.job_id) == "RUNNING" for job in others)
    assert set(scrape.codes(FAULTY, LIST_JOBS)) == {"200"}
    assert set(scrape.codes(FAULTY, EXECUTE_GRAPH)) == {"200", "404"}
    harness.assert_healthy_untouched(scrape)
    assert [f["failed_jobs"] for f in harness.log_fields("execute-graph calls failing")] == [1]
    assert not harness.log_fields("target is down")
    # The next listing no longer has the job: its series vanish.
    scrape = await harness.recover(until=lambda s: doomed.job_id not in s.job_ids(FAULTY))
    assert scrape.requests(FAULTY, EXECUTE_GRAPH, "404") == 1
