"""Hostile upstream answers, run against every operation the client has (DLI list, execute
graph, IAM token): redirects to another host, impossible numbers, and headers that broke the
poll loop. Each must leave the credentials on their host, /metrics answering, and the loop
polling.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import web

from exporter.dli.api import EXECUTE_GRAPH, IAM_TOKEN, LIST_JOBS
from exporter.simulator import Fault
from tests.conftest import PROJECT
from tests.faults.conftest import (
    FAULTY,
    FaultSettings,
    Harness,
    Scrape,
    encode,
    list_page_body,
)

OPERATIONS = (LIST_JOBS, EXECUTE_GRAPH, IAM_TOKEN)


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> FaultSettings:
    """IAM faults need the faulty target on password auth."""
    operation = getattr(request, "param", LIST_JOBS)
    return FaultSettings(password_auth=operation == IAM_TOKEN)


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """Another origin that records every request (and its headers) it receives."""
    received: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        received.append(dict(request.headers))
        return web.json_response({"is_success": "true", "job_list": {"jobs": []}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", received
    await runner.cleanup()


async def provoke(harness: Harness, operation: str) -> None:
    """Make the next polls call ``operation`` (IAM is only asked when the token must renew)."""
    if operation == IAM_TOKEN:  # past the token's lifetime: the next request renews it
        harness.credentials_clock.offset += 2 * 86_400


def good_answer(harness: Harness, operation: str, headers: dict[str, str]) -> Fault | None:
    """A successful answer of ``operation`` that carries ``headers`` (None for IAM)."""
    if operation == LIST_JOBS:
        return Fault(status=200, body=encode(list_page_body(harness.faulty)), headers=headers)
    if operation == EXECUTE_GRAPH:
        graph = {"is_success": "true", "execute_graph": {"state": "RUNNING", "duration": 5}}
        return Fault(status=200, body=encode(graph), headers=headers, operation=operation)
    return None


@pytest.mark.parametrize("settings", OPERATIONS, indirect=True)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_to_another_host_is_refused_for_every_operation(
    settings: FaultSettings,
    status: int,
    harness: Harness,
    elsewhere: tuple[str, list[dict[str, str]]],
) -> None:
    for operation in (LIST_JOBS, EXECUTE_GRAPH) if not settings.password_auth else (IAM_TOKEN,):
        url, received = elsewhere
        location = f"{url}/v1.0/{PROJECT}/streaming/jobs?token=in-the-path"
        harness.faulty.set_fault(
            Fault(status=status, headers={"Location": location}, operation=operation)
        )
        await provoke(harness, operation)

        scrape = await harness.wait_for(
            lambda s, op=operation: s.requests(FAULTY, op, "redirect") >= 1,
            f"{operation} redirect counted",
        )

        assert received == [], "a request followed the redirect to another host"
        harness.assert_healthy_untouched(scrape)
        errors = [e for e in harness.logged_errors() if "redirect" in e]
        assert all("in-the-path" not in error for error in errors)
        await harness.recover()


def hostile_list_body(harness: Harness) -> bytes:
    """The real jobs, with impossible numbers and broken text in some of them."""
    body = list_page_body(harness.faulty)
    jobs = body["job_list"]["jobs"]  # type: ignore[index]
    jobs[0]["restart_times"] = 10**400
    jobs[0]["name"] = "lone \ud800 surrogate"
    jobs[1]["duration"] = -5
    jobs[1]["create_time"] = float("inf")
    jobs[2]["name"] = "n" * 60_000
    jobs[3]["restart_times"] = -3
    text = json.dumps(body)
    # One invalid UTF-8 byte inside one job's name, as a broken proxy might send.
    return text.replace("n" * 10, "n" * 9 + "\udcff", 1).encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("settings", [LIST_JOBS], indirect=True)
async def test_impossible_values_in_a_list_drop_only_those_values(harness: Harness) -> None:
    harness.faulty.set_fault(
        Fault(status=200, body=hostile_list_body(harness), operation=LIST_JOBS)
    )
    jobs = harness.faulty.jobs(PROJECT)

    def published(s: Scrape) -> bool:
        return any(
            x.labels.get("field") == "restart_times"
            for x in s.find("dli_api_response_values_rejected_total", target=FAULTY)
        )

    scrape = await harness.wait_for(published, "the hostile page published")

    assert scrape.up(FAULTY) == 1.0
    assert scrape.job_ids(FAULTY) == {job.job_id for job in jobs}
    assert scrape.job_value("dli_job_restarts_total", FAULTY, jobs[0].job_id) is None
    assert scrape.job_value("dli_job_restarts_total", FAULTY, jobs[3].job_id) is None
    assert scrape.job_value("dli_job_duration_seconds", FAULTY, jobs[1].job_id) is None or (
        jobs[1].status == "job_running"
    )
    names = {s.labels["job_name"] for s in scrape.find("dli_job_info", target=FAULTY)}
    assert "lone \ufffd surrogate" in names
    assert max(len(name) for name in names) <= 128
    problems = {
        (s.labels["field"], s.labels["problem"])
        for s in scrape.find("dli_api_response_values_rejected_total", target=FAULTY)
    }
    assert {
        ("restart_times", "out_of_range"),
        ("name", "repaired"),
        ("name", "truncated"),
        ("duration", "out_of_range"),
        ("body", "repaired"),
    } <= problems
    harness.assert_healthy_untouched(scrape)
    assert (await harness.get("/-/ready"))[0] == 200
    await harness.recover()


@pytest.mark.parametrize("settings", [EXECUTE_GRAPH], indirect=True)
async def test_impossible_values_in_an_execute_graph_drop_only_those_values(
    harness: Harness,
) -> None:
    body = (
        b'{"is_success": "true", "execute_graph": {"state": "RUNNING", "duration": '
        + b"9" * 400
        + b', "start-time": -1, "isStoppable": "maybe"}}'
    )
    harness.faulty.set_fault(Fault(status=200, body=body, operation=EXECUTE_GRAPH))

    scrape = await harness.wait_for(
        lambda s: any(
            x.labels.get("operation") == EXECUTE_GRAPH
            for x in s.find("dli_api_response_values_rejected_total", target=FAULTY)
        ),
        "execute-graph values rejected",
    )

    assert scrape.up(FAULTY) == 1.0
    running = [job for job in harness.faulty.jobs(PROJECT) if job.status == "job_running"]
    assert all(scrape.flink_state(FAULTY, job.job_id) == "RUNNING" for job in running)
    harness.assert_healthy_untouched(scrape)
    await harness.recover()


@pytest.mark.parametrize("settings", [IAM_TOKEN], indirect=True)
async def test_an_iam_answer_with_impossible_values_is_an_error_not_a_crash(
    harness: Harness,
) -> None:
    body = b'{"token": {"expires_at": ' + b"9" * 400 + b', "issued_at": -1}}'
    harness.faulty.set_fault(
        Fault(status=201, body=body, headers={"X-Subject-Token": "t"}, operation=IAM_TOKEN)
    )
    await provoke(harness, IAM_TOKEN)

    scrape = await harness.wait_down(IAM_TOKEN, "error")

    assert any("expires_at" in error for error in harness.logged_errors())
    harness.assert_healthy_untouched(scrape)
    await harness.recover()


HOSTILE_HEADERS = (
    {"Retry-After": "\u00b2"},  # a Unicode digit: str.isdigit() accepts it, float() raises
    {"Retry-After": "9" * 5000},
    {"Retry-After": "Wed, 99 Foo 2026 99:99:99 GMT"},
    {"X-Request-Id": "r\u00e9q " + "x" * 5000},
)


@pytest.mark.parametrize("settings", OPERATIONS, indirect=True)
@pytest.mark.parametrize("headers", HOSTILE_HEADERS, ids=["unicode-digit", "huge", "date", "id"])
async def test_hostile_headers_on_good_and_failed_answers_never_stop_the_poll_loop(
    settings: FaultSettings, headers: dict[str, str], harness: Harness
) -> None:
    operations = (IAM_TOKEN,) if settings.password_auth else (LIST_JOBS, EXECUTE_GRAPH)
    for operation in operations:
        # A failed answer (retried) carrying the header, then good answers carrying it.
        good = good_answer(harness, operation, headers)
        if good is not None:
            harness.faulty.inject_fault(replace(good, operation=operation), times=3)
        harness.faulty.inject_fault(
            Fault(status=503, headers=headers, operation=operation), times=2
        )
        await provoke(harness, operation)
        await harness.wait_for(
            lambda s, op=operation: s.requests(FAULTY, op, "503") >= 1, f"{operation} 503"
        )
        before = (await harness.scrape()).requests(FAULTY, LIST_JOBS, "200")
        # The loop still polls: more successful listings arrive after the hostile answers.
        scrape = await harness.recover(
            clear=False, until=lambda s, n=before: s.requests(FAULTY, LIST_JOBS, "200") > n + 1
        )
        assert not harness.log_fields("unexpected error in a poll")
        assert not harness.log_fields("unexpected error while listing jobs")
        harness.assert_healthy_untouched(scrape)
