"""The job calls over a Transport against the simulator: paging, filters, errors, observations."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

import aiohttp
import pytest
import trustme
from aiohttp import web

from exporter.auth import AkSkCredentials
from exporter.config import Filters, TlsClientConfig
from exporter.dli.api import EXECUTE_GRAPH, LIST_JOBS
from exporter.dli.jobs import JobsApi
from exporter.dli.paging import PAGE_SIZE
from exporter.errors import DliApiError
from exporter.http import ssl_setting
from exporter.secret import Secret
from exporter.simulator import Fault, Simulator
from exporter.values import parse_retry_after
from tests.conftest import (
    ACCESS_KEY,
    FAST_RETRY,
    PROJECT,
    SECRET_KEY,
    make_api,
    make_client,
    make_target,
)


def list_requests(simulator: Simulator) -> list[dict[str, str]]:
    return [dict(r.query) for r in simulator.request_log if r.operation == "list_jobs"]


@pytest.mark.parametrize(
    ("count", "pages"), [(0, 1), (1, 1), (99, 1), (100, 2), (101, 2), (198, 2), (199, 3), (250, 3)]
)
async def test_list_jobs_pages_through_everything(
    count: int, pages: int, simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    """Oldest first, pages overlapping by one job, until a page that is not full."""
    created = {simulator.add_job(PROJECT).job_id for _ in range(count)}
    client = make_client(session, make_target("t", sim_url))

    jobs = await client.list_jobs()

    assert sorted(job.job_id for job in jobs) == sorted(created)
    queries = list_requests(simulator)
    assert len(queries) == pages
    step = PAGE_SIZE - 1
    assert sorted(int(q["offset"]) for q in queries) == [step * i for i in range(pages)]
    assert all(q["limit"] == "100" and q["show_detail"] == "true" for q in queries)
    assert all(q["order"] == "asc" for q in queries)


async def test_list_jobs_passes_single_filters_to_the_api(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.add_job(PROJECT, job_type="flink_jar_job", queue_name="q1")
    wanted = simulator.add_job(PROJECT, job_type="flink_sql_job", queue_name="q1")
    simulator.add_job(PROJECT, job_type="flink_sql_job", queue_name="q2")
    target = make_target(
        "t", sim_url, filters=Filters(job_types=("flink_sql_job",), queue_names=("q1",))
    )

    jobs = await make_client(session, target).list_jobs()

    assert [job.job_id for job in jobs] == [wanted.job_id]
    (query,) = list_requests(simulator)
    assert query["job_type"] == "flink_sql_job"
    assert query["queue_name"] == "q1"


async def test_several_job_types_are_filtered_locally(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    jar = simulator.add_job(PROJECT, job_type="flink_jar_job")
    sql = simulator.add_job(PROJECT, job_type="flink_sql_job")
    simulator.add_job(PROJECT, job_type="flink_opensource_sql_job")
    target = make_target(
        "t", sim_url, filters=Filters(job_types=("flink_jar_job", "flink_sql_job"))
    )

    jobs = await make_client(session, target).list_jobs()

    assert sorted(job.job_id for job in jobs) == sorted([jar.job_id, sql.job_id])
    assert "job_type" not in list_requests(simulator)[0]


async def test_list_jobs_reads_the_detail_fields(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    sim_job = simulator.add_job(
        PROJECT, name='odd "name" ✓', status="job_running", cu_number=7, parallel_number=3
    )

    (job,) = await make_client(session, make_target("t", sim_url)).list_jobs()

    assert job.job_id == sim_job.job_id
    assert job.name == 'odd "name" ✓'
    assert job.status == "job_running"
    assert job.config.cu_number == 7
    assert job.config.parallel_number == 3
    assert job.restart_times == sim_job.restart_times
    assert job.create_time_ms == sim_job.create_time_ms


async def test_execute_graph_of_a_running_job(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    job = simulator.add_job(PROJECT, status="job_running", flink_state="RESTARTING")

    graph = await make_client(session, make_target("t", sim_url)).execute_graph(job.job_id)

    assert graph.state == "RESTARTING"
    assert graph.duration_ms is not None


async def test_execute_graph_of_a_stopped_job_is_an_api_error(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    job = simulator.add_job(PROJECT, status="job_cancel_success")

    with pytest.raises(DliApiError) as caught:
        await make_client(session, make_target("t", sim_url)).execute_graph(job.job_id)

    assert caught.value.status == 400
    assert caught.value.code == "400"
    assert caught.value.error_code


async def test_wrong_secret_key_gives_the_gateway_error(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    client = make_api(
        session,
        endpoint=sim_url,
        project_id=PROJECT,
        credentials=AkSkCredentials("TESTAKEXAMPLE0000001", Secret("wrong-secret")),
        timeout=5,
    )
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()

    assert caught.value.status == 401
    assert caught.value.error_code == "APIG.0301"
    assert "wrong-secret" not in str(caught.value)


async def test_every_attempt_is_observed(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    running = simulator.add_job(PROJECT, status="job_running")
    stopped = simulator.add_job(PROJECT, status="job_finish")
    seen: list[tuple[str, str]] = []
    client = make_client(
        session, make_target("t", sim_url), observe=lambda op, code, _s: seen.append((op, code))
    )

    await client.list_jobs()
    await client.execute_graph(running.job_id)
    with pytest.raises(DliApiError):
        await client.execute_graph(stopped.job_id)

    assert seen == [(LIST_JOBS, "200"), (EXECUTE_GRAPH, "200"), (EXECUTE_GRAPH, "400")]


async def test_timeout_is_reported_as_timeout(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.latency = 1.0
    seen: list[str] = []
    client = make_client(
        session,
        make_target("t", sim_url, timeout=0.05),
        observe=lambda _o, code, _s: seen.append(code),
    )

    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()

    assert caught.value.code == "timeout"
    assert seen == ["timeout"] * FAST_RETRY.max_attempts


# A stand-in for a misbehaving proxy or gateway in front of DLI.
BROKEN_RESPONSES = {
    "/html": (502, "text/html", b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"),
    "/notjson": (200, "application/json", b'{"is_success": "true", "job_list": {"total'),
    "/wrongshape": (200, "application/json", b'{"is_success": "true", "job_list": []}'),
    "/camel": (403, "application/json", b'{"errorCode": "DLI.0003", "errorMsg": "Forbidden"}'),
    "/failed": (200, "application/json", b'{"is_success": false, "message": "busy"}'),
}


@pytest.fixture
async def broken_url() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        prefix = "/" + request.path.split("/")[1]
        status, content_type, body = BROKEN_RESPONSES[prefix]
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("prefix", "code", "error_code", "message_part"),
    [
        ("/html", "502", None, "502 Bad Gateway nginx"),
        ("/notjson", "error", None, "not JSON"),
        ("/wrongshape", "error", None, "job_list"),
        ("/camel", "403", "DLI.0003", "Forbidden"),
        ("/failed", "error", None, "busy"),
    ],
)
async def test_unusable_responses_become_typed_errors(
    prefix: str,
    code: str,
    error_code: str | None,
    message_part: str,
    broken_url: str,
    session: aiohttp.ClientSession,
) -> None:
    seen: list[str] = []
    client = make_client(
        session, make_target("t", broken_url + prefix), observe=lambda _o, c, _s: seen.append(c)
    )

    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()

    assert caught.value.code == code
    assert caught.value.error_code == error_code
    assert message_part in caught.value.error_msg
    assert seen[-1] == code


def codes_seen(seen: list[tuple[str, str]]) -> list[str]:
    return [code for _operation, code in seen]


def observing_client(
    session: aiohttp.ClientSession, url: str, **kwargs: object
) -> tuple[JobsApi, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    client = make_client(
        session, make_target("t", url), observe=lambda op, c, _s: seen.append((op, c)), **kwargs
    )
    return client, seen


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_throttling_and_server_errors_are_retried(
    status: int, simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    job = simulator.add_job(PROJECT)
    simulator.inject_fault(Fault(status=status, headers={"Retry-After": "0"}), times=2)
    client, seen = observing_client(session, sim_url)

    jobs = await client.list_jobs()

    assert [j.job_id for j in jobs] == [job.job_id]
    assert codes_seen(seen) == [str(status), str(status), "200"]


async def test_retries_stop_after_the_last_attempt(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.inject_fault(Fault(status=503), times=10)
    client, seen = observing_client(session, sim_url)

    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()

    assert caught.value.status == 503
    assert codes_seen(seen) == ["503"] * FAST_RETRY.max_attempts


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_client_errors_are_not_retried(
    status: int, simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.inject_fault(Fault(status=status), times=3)
    client, seen = observing_client(session, sim_url)

    with pytest.raises(DliApiError):
        await client.list_jobs()

    assert codes_seen(seen) == [str(status)]


async def test_a_retry_after_beyond_the_deadline_gives_up_at_once(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.inject_fault(Fault(status=429, headers={"Retry-After": "30"}), times=3)
    client, seen = observing_client(session, sim_url)

    with pytest.raises(DliApiError) as caught:
        await client.list_jobs(deadline=time.monotonic() + 5)

    assert caught.value.status == 429
    assert codes_seen(seen) == ["429"]


async def test_retry_after_sets_the_least_wait(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.add_job(PROJECT)
    simulator.inject_fault(Fault(status=429, headers={"Retry-After": "1"}))
    client, seen = observing_client(session, sim_url)
    started = time.monotonic()

    await client.list_jobs()

    # A lower bound only: asyncio.sleep never returns early, however busy the machine.
    assert time.monotonic() - started >= 1.0
    assert codes_seen(seen) == ["429", "200"]


async def test_a_passed_deadline_sends_nothing(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    client, seen = observing_client(session, sim_url)

    with pytest.raises(DliApiError) as caught:
        await client.list_jobs(deadline=time.monotonic() - 1)

    assert caught.value.code == "timeout"
    assert "deadline" in caught.value.error_msg
    assert seen == [] and simulator.request_log == []


class RotatingCredentials:
    """Signs with a stale secret until refreshed, like an expired temporary key would."""

    def __init__(self) -> None:
        self.current = AkSkCredentials(ACCESS_KEY, Secret("stale-secret"))
        self.refreshes = 0

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        return await self.current.authorize(method, url, headers, body)

    async def refresh(self) -> bool:
        self.refreshes += 1
        self.current = AkSkCredentials(ACCESS_KEY, Secret(SECRET_KEY))
        return True


async def test_a_401_refreshes_the_credentials_once_and_retries(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    job = simulator.add_job(PROJECT)
    credentials = RotatingCredentials()
    seen: list[str] = []
    client = make_api(
        session,
        endpoint=sim_url,
        project_id=PROJECT,
        credentials=credentials,
        timeout=5,
        observe=lambda _o, code, _s: seen.append(code),
    )

    jobs = await client.list_jobs()

    assert [j.job_id for j in jobs] == [job.job_id]
    assert credentials.refreshes == 1
    assert seen == ["401", "200"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("-1", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now) == expected


@pytest.fixture
async def tls_sim_url(simulator: Simulator) -> AsyncIterator[tuple[str, str]]:
    """The simulator over HTTPS with a certificate from a private CA: (URL, the CA's PEM)."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    runner = web.AppRunner(simulator.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context).start()
    host, port = runner.addresses[0][:2]
    yield f"https://{host}:{port}", ca.cert_pem.bytes().decode()
    await runner.cleanup()


@pytest.mark.parametrize(
    ("tls", "works"),
    [
        ("private-ca", True),
        ("insecure", True),
        ("system-store", False),
    ],
)
async def test_a_private_ca_is_trusted_per_target(
    tls: str,
    works: bool,
    simulator: Simulator,
    tls_sim_url: tuple[str, str],
    session: aiohttp.ClientSession,
) -> None:
    url, ca_pem = tls_sim_url
    job = simulator.add_job(PROJECT)
    config = {
        "private-ca": TlsClientConfig(ca_file="ca.pem", ca_pem=ca_pem),
        "insecure": TlsClientConfig(insecure_skip_verify=True),
        "system-store": TlsClientConfig(),
    }[tls]
    client, seen = observing_client(session, url, ssl_option=ssl_setting(config))

    if works:
        assert [j.job_id for j in await client.list_jobs()] == [job.job_id]
    else:
        with pytest.raises(DliApiError) as caught:
            await client.list_jobs()
        assert caught.value.code == "error"
        assert "certificate" in caught.value.error_msg.lower()
        assert set(codes_seen(seen)) == {"error"}
