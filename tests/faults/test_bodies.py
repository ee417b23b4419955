"""Answers with status 200 whose body is broken, of the wrong shape, or oddly typed."""

from __future__ import annotations

import copy

import pytest

from exporter.dli.api import EXECUTE_GRAPH, LIST_JOBS
from exporter.dli.jobmodel import JOB_STATUSES
from exporter.simulator import Fault
from tests.conftest import PROJECT
from tests.faults.conftest import FAULTY, Harness, Scrape, encode, list_page_body

UNKNOWN_STATUS = "job_quantum_state"
#: Series that only ``job_config`` feeds.
CONFIG_METRICS = (
    "dli_job_compute_units",
    "dli_job_manager_compute_units",
    "dli_job_actual_compute_units",
    "dli_job_parallelism",
    "dli_job_taskmanager_compute_units",
    "dli_job_taskmanager_slots",
)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"is_success": "true", "job_list": {"total_count": 1, "jobs": [{"job_id": 1', "JSON"),
        (b'{"is_success": "true", "job_list": [{"job_id": 1}]}', "job_list is a list"),
    ],
    ids=["malformed-json", "wrong-shape"],
)
async def test_an_unusable_body_is_counted_as_error(
    harness: Harness, body: bytes, detail: str
) -> None:
    harness.faulty.set_fault(Fault(status=200, body=body, operation=LIST_JOBS))

    scrape = await harness.wait_down(LIST_JOBS, "error")

    assert set(scrape.codes(FAULTY, LIST_JOBS)) <= {"200", "error"}
    errors = harness.logged_errors()
    assert errors and all("unusable response" in e and detail in e for e in errors)
    await harness.recover()


async def test_oddly_typed_fields_are_still_published_sensibly(harness: Harness) -> None:
    """A numeric string ``job_id``, ``job_config: null`` and an unknown status."""
    jobs = harness.faulty.jobs(PROJECT)
    running, no_config, odd_status = (job.job_id for job in jobs[:3])
    assert jobs[0].status == "job_running"
    body = copy.deepcopy(list_page_body(harness.faulty))
    listed = body["job_list"]["jobs"]  # type: ignore[index]
    listed[0]["job_id"] = str(running)
    listed[1]["job_config"] = None
    listed[2]["status"] = UNKNOWN_STATUS
    harness.faulty.set_fault(Fault(status=200, body=encode(body), operation=LIST_JOBS))

    def odd_jobs_published(s: Scrape) -> bool:
        return (
            s.job_value("dli_job_status", FAULTY, odd_status, status=UNKNOWN_STATUS) == 1.0
            and s.job_value("dli_job_compute_units", FAULTY, no_config) is None
        )

    scrape = await harness.wait_for(odd_jobs_published, "the oddly typed jobs published")

    assert scrape.up(FAULTY) == 1.0
    assert scrape.job_ids(FAULTY) == {job.job_id for job in jobs}
    # The string id was accepted as the number it is, and execute-graph was asked for it.
    assert scrape.flink_state(FAULTY, running) == "RUNNING"
    assert scrape.job_value("dli_job_compute_units", FAULTY, running) == jobs[0].cu_number
    # No job_config: no CU samples (never a made-up 0), everything else still there.
    assert all(scrape.job_value(m, FAULTY, no_config) is None for m in CONFIG_METRICS)
    assert scrape.job_value("dli_job_info", FAULTY, no_config) == 1.0
    assert scrape.job_value("dli_job_restarts_total", FAULTY, no_config) is not None
    # An unknown status gets its own series in the state set, the documented ones are 0.
    statuses = {
        s.labels["status"]: s.value
        for s in scrape.find("dli_job_status", target=FAULTY, job_id=str(odd_status))
    }
    assert statuses == {**dict.fromkeys(JOB_STATUSES, 0.0), UNKNOWN_STATUS: 1.0}
    assert set(scrape.codes(FAULTY, LIST_JOBS)) == {"200"}
    assert set(scrape.codes(FAULTY, EXECUTE_GRAPH)) == {"200"}
    harness.assert_healthy_untouched(scrape)

    def normal_again(s: Scrape) -> bool:
        return (
            s.job_value("dli_job_compute_units", FAULTY, no_config) == jobs[1].cu_number
            and s.job_value("dli_job_status", FAULTY, odd_status, status=UNKNOWN_STATUS) is None
        )

    await harness.recover(until=normal_again)
