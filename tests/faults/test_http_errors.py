"""HTTP error statuses from DLI or a proxy in front of it: 500, 502, 503 and an HTML error page."""

from __future__ import annotations

import pytest

from exporter.dli.api import EXECUTE_GRAPH, LIST_JOBS
from exporter.simulator import Fault
from tests.conftest import PROJECT
from tests.faults.conftest import FAULTY, LATE_RETRY, Harness, Scrape

#: What nginx answers when its upstream is gone.
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_on_listing_takes_the_target_down(
    harness: Harness, status: int
) -> None:
    harness.faulty.set_fault(Fault(status=status, operation=LIST_JOBS))

    scrape = await harness.wait_down(LIST_JOBS, str(status))

    assert set(scrape.codes(FAULTY, LIST_JOBS)) <= {"200", str(status), LATE_RETRY}
    errors = harness.logged_errors(retried=True)
    assert errors and all(f"code={status}" in e and "DLI.0999" in e for e in errors)
    await harness.recover()


async def test_an_html_error_page_from_a_proxy_is_a_readable_error(harness: Harness) -> None:
    harness.faulty.set_fault(
        Fault(status=502, body=NGINX_502, content_type="text/html", operation=LIST_JOBS)
    )

    await harness.wait_down(LIST_JOBS, "502")

    errors = harness.logged_errors(retried=True)
    assert errors and all("502 Bad Gateway" in e and "<" not in e for e in errors)
    _, page = await harness.get("/")
    assert "502 Bad Gateway" in page and "&lt;html" not in page
    await harness.recover()


async def test_execute_graph_failures_only_drop_the_flink_series(harness: Harness) -> None:
    running = [job.job_id for job in harness.faulty.jobs(PROJECT) if job.status == "job_running"]
    harness.faulty.set_fault(Fault(status=503, operation=EXECUTE_GRAPH))

    def flink_series_gone(s: Scrape) -> bool:
        return s.requests(FAULTY, EXECUTE_GRAPH, "503") >= 1 and all(
            s.flink_state(FAULTY, job_id) is None for job_id in running
        )

    scrape = await harness.wait_for(flink_series_gone, "execute-graph 503s counted")

    assert scrape.up(FAULTY) == 1.0
    assert scrape.job_ids(FAULTY) == {job.job_id for job in harness.faulty.jobs(PROJECT)}
    assert all(scrape.job_value("dli_job_compute_units", FAULTY, j) == 2 for j in running)
    harness.assert_healthy_untouched(scrape)
    assert harness.log_fields("execute-graph calls failing")
    await harness.recover()
    assert harness.log_fields("execute-graph calls recovered")


async def test_a_target_down_for_three_intervals_drops_its_job_series(harness: Harness) -> None:
    harness.faulty.set_fault(Fault(status=500, operation=LIST_JOBS))

    scrape = await harness.wait_for(
        lambda s: s.up(FAULTY) == 0.0 and not s.job_ids(FAULTY), "stale job series dropped"
    )

    assert scrape.find("dli_last_poll_success_timestamp_seconds", target=FAULTY)
    harness.assert_healthy_untouched(scrape)
    await harness.recover()


async def test_a_persisting_failure_is_logged_once(harness: Harness) -> None:
    harness.faulty.set_fault(Fault(status=500, operation=LIST_JOBS))

    # At most 3 attempts per poll: 7 answered requests are at least 3 failed polls.
    await harness.wait_for(
        lambda s: s.requests(FAULTY, LIST_JOBS, "500") >= 7, "three failed polls"
    )

    assert len(harness.logged_errors()) == 1
    await harness.recover()
    assert len(harness.log_fields("target is up")) == 1
