"""Acceptance: the exporter against an independent DLI stand-in that checks signatures with the SDK.

The stand-in (``tests.standin``) shares no code with the exporter: every request's signature is
recomputed by the official ``huaweicloudsdkcore`` signer from what arrived on the wire, and the job
data is a fixed set (two list pages, every documented status, odd names, missing fields). The
exporter app polls it over real HTTP, and every job's series on ``/metrics`` are compared with
what the stand-in reported. The controls show the stand-in rejects what it should.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import aiohttp
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from exporter.config import AkSkAuth, Config, Filters, Sources
from exporter.secret import Secret
from exporter.web import create_app
from tests.conftest import make_target
from tests.standin.data import (
    DOCUMENTED_STATUSES,
    FLINK_STATES,
    RUNNING,
    UNKNOWN_FLINK_STATE,
    UNKNOWN_STATUS,
    Json,
    standin_data,
)
from tests.standin.expect import TARGET, exposition_problems, job_samples
from tests.standin.server import (
    AK,
    APIG_AUTH_ERROR,
    MAX_LIMIT,
    PROJECT,
    SDK_DATE_FORMAT,
    SK,
    TOKEN,
    StandIn,
    serve,
)

#: (url, headers) of a signed request, for the controls that tamper with one.
Tamper = Callable[[str, dict[str, str]], tuple[str, dict[str, str]]]


# --- the exporter under test --------------------------------------------------------------------


async def scrape_after_first_poll(
    standin_url: str, auth: AkSkAuth, filters: Filters | None = None
) -> str:
    """Run the exporter against the stand-in until ``/-/ready``; return its ``/metrics``."""
    target = make_target(
        TARGET,
        standin_url,
        project_id=PROJECT,
        auth=auth,
        concurrency=8,
        rate_limit=1000.0,
        filters=filters or Filters(),
        # The stand-in serves the job APIs only; the further sources are tested on the simulator.
        sources=Sources(cloud_eye=False, queues=False, elastic_resource_pools=False),
    )
    app = create_app(Config(targets=(target,), source="<test>"))
    async with serve(app) as url, aiohttp.ClientSession() as session:
        async with asyncio.timeout(10):
            while True:
                async with session.get(f"{url}/-/ready") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.02)
        async with session.get(f"{url}/metrics", headers={"Accept-Encoding": "identity"}) as resp:
            assert resp.status == 200
            return await resp.text()


# --- the acceptance test ------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, TOKEN], ids=["permanent-aksk", "temporary-aksk"])
async def test_every_job_comes_out_exactly_as_the_standin_reported_it(token: str | None) -> None:
    jobs, graphs = standin_data()
    standin = StandIn(jobs, graphs, security_token=token)
    auth = AkSkAuth(AK, Secret(SK), security_token=Secret(token) if token else None)

    async with serve(standin.app()) as standin_url:
        exposition = await scrape_after_first_poll(standin_url, auth)

    assert standin.rejections == []
    assert standin.violations == []
    assert [r for r in standin.requests if r.status != 200] == []
    list_calls = [r for r in standin.requests if r.path.endswith("/streaming/jobs")]
    limits = [int(dict(r.query)["limit"]) for r in list_calls]
    assert len(list_calls) >= 2 and max(limits) <= MAX_LIMIT
    # Every job listed; pages overlap by one job, so each page boundary's job twice.
    assert set(standin.listed) == {job["job_id"] for job in jobs}
    assert sum(standin.listed.values()) == len(jobs) + len(list_calls) - 1
    running = [job["job_id"] for job in jobs if job.get("status") == RUNNING]
    assert standin.graph_calls == Counter(running)
    assert exposition_problems(exposition, jobs, graphs) == []
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    assert [(s.labels, s.value) for s in families["dli_up"].samples] == [({"target": TARGET}, 1.0)]
    assert [s.value for s in families["dli_target_jobs"].samples] == [len(jobs)]
    assert SK not in exposition and TOKEN not in exposition


ODD_QUEUE: Final = "队列 a+b/c~%20&x=y"
ODD_TAGS: Final = ("team=data", "a&b c+d", "ünï/~%")


async def test_filters_with_odd_characters_are_signed_and_sent_as_the_sdk_expects() -> None:
    jobs, graphs = standin_data()
    for index, job in enumerate(jobs):
        job["queue_name"] = ODD_QUEUE if index % 3 else "other"
    standin = StandIn(jobs, graphs)
    filters = Filters(job_types=("flink_sql_job",), queue_names=(ODD_QUEUE,), tags=ODD_TAGS)
    auth = AkSkAuth(AK, Secret(SK))

    async with serve(standin.app()) as standin_url:
        exposition = await scrape_after_first_poll(standin_url, auth, filters)

    assert standin.rejections == []
    list_calls = [r for r in standin.requests if r.path.endswith("/streaming/jobs")]
    assert list_calls
    for call in list_calls:
        assert [v for k, v in call.query if k == "queue_name"] == [ODD_QUEUE]
        assert [v for k, v in call.query if k == "job_type"] == ["flink_sql_job"]
        assert sorted(v for k, v in call.query if k == "tags") == sorted(ODD_TAGS)
    wanted = {
        str(job["job_id"])
        for job in jobs
        if job.get("queue_name") == ODD_QUEUE and job.get("job_type") == "flink_sql_job"
    }
    assert len(wanted) > 5
    assert set(job_samples(exposition)) == wanted


def test_the_job_set_covers_what_the_acceptance_test_claims() -> None:
    jobs, graphs = standin_data()
    ids = [job["job_id"] for job in jobs]
    statuses = {job.get("status") for job in jobs}
    states = {graph.get("state") for graph in graphs.values()}

    assert len(ids) == len(set(ids)) > MAX_LIMIT + 20
    assert set(DOCUMENTED_STATUSES) | {UNKNOWN_STATUS, None} == statuses
    assert set(FLINK_STATES) | {UNKNOWN_FLINK_STATE, None} == states
    assert set(graphs) == {job["job_id"] for job in jobs if job.get("status") == RUNNING}
    assert any("restart_times" not in job and "job_config" not in job for job in jobs)
    assert any(job.get("start_time") == 0 for job in jobs)
    assert any("name" not in job for job in jobs)
    assert any('"' in job.get("name", "") and "\\" in job.get("name", "") for job in jobs)
    assert any(not job.get("name", "").isascii() for job in jobs)


# --- controls: the stand-in rejects what it should, so the acceptance test can fail -------------


def sdk_signed_get(
    base_url: str,
    path: str,
    query: list[tuple[str, str]],
    *,
    ak: str = AK,
    sk: str = SK,
    token: str | None = None,
    skew: timedelta = timedelta(0),
) -> tuple[str, dict[str, str]]:
    """URL and headers of a GET signed by the official SDK, as an SDK client would send it."""
    credentials = BasicCredentials(ak, sk)
    if token is not None:
        credentials.with_security_token(token)
    sdk_date = (datetime.now(UTC) + skew).strftime(SDK_DATE_FORMAT)
    request = SdkRequest(
        method="GET",
        schema="http",
        host=base_url.removeprefix("http://"),
        resource_path=path,
        query_params=query,
        header_params={"Content-Type": "application/json", "X-Sdk-Date": sdk_date},
        body=b"",
    )
    signed = credentials.sign_request(request)
    return f"{base_url}{signed.uri}", {str(k): str(v) for k, v in signed.header_params.items()}


async def send(url: str, headers: Mapping[str, str]) -> tuple[int, Json]:
    """GET an already-encoded URL with exactly these headers; the status and JSON body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(URL(url, encoded=True), headers=headers) as resp,
    ):
        return resp.status, await resp.json()


def replace_url(old: str, new: str) -> Tamper:
    """Change the URL after signing."""
    return lambda url, headers: (url.replace(old, new), headers)


def set_header(name: str, value: str | None) -> Tamper:
    """Set (or, with ``None``, remove) a header after signing."""

    def tamper(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        changed = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        if value is not None:
            changed[name] = value
        return url, changed

    return tamper


@dataclass(frozen=True)
class Control:
    """A request signed by the SDK (maybe with wrong inputs or tampered with) and its outcome."""

    status: int
    standin_token: str | None = None
    ak: str = AK
    sk: str = SK
    token: str | None = None
    skew: timedelta = timedelta(0)
    tamper: Tamper | None = None


CONTROLS: Final = {
    "sdk-signed": Control(200),
    "sdk-signed-temporary": Control(200, standin_token=TOKEN, token=TOKEN),
    "wrong-secret-key": Control(401, sk="not-the-secret-key"),
    "unknown-access-key": Control(401, ak="SOMEONEELSE000000000"),
    "query-changed": Control(401, tamper=replace_url("offset=0", "offset=1")),
    "path-changed": Control(401, tamper=replace_url(PROJECT, PROJECT.upper())),
    "signed-header-changed": Control(401, tamper=set_header("Content-Type", "application/xml")),
    "signed-header-dropped": Control(401, tamper=set_header("Content-Type", None)),
    "no-authorization": Control(401, tamper=set_header("Authorization", None)),
    "stale-date": Control(401, skew=timedelta(hours=-1)),
    "token-missing": Control(401, standin_token=TOKEN),
    "token-wrong": Control(401, standin_token=TOKEN, token="some-other-token"),
    "token-unsigned": Control(
        401, standin_token=TOKEN, tamper=set_header("X-Security-Token", TOKEN)
    ),
}


@pytest.mark.parametrize("name", CONTROLS)
async def test_standin_accepts_only_correctly_signed_requests(name: str) -> None:
    control = CONTROLS[name]
    jobs, graphs = standin_data()
    standin = StandIn(jobs, graphs, security_token=control.standin_token)
    async with serve(standin.app()) as base:
        url, headers = sdk_signed_get(
            base,
            f"/v1.0/{PROJECT}/streaming/jobs",
            [("limit", "10"), ("offset", "0"), ("show_detail", "true")],
            ak=control.ak,
            sk=control.sk,
            token=control.token,
            skew=control.skew,
        )
        if control.tamper is not None:
            url, headers = control.tamper(url, headers)
        status, body = await send(url, headers)

    assert status == control.status, body
    assert len(standin.requests) == 1
    if status == 200:
        assert standin.rejections == []
        assert len(body["job_list"]["jobs"]) == 10
    else:
        assert body["error_code"] == APIG_AUTH_ERROR
        assert len(standin.rejections) == 1
        assert SK not in json.dumps(body)


async def test_standin_pages_and_refuses_pages_over_100() -> None:
    jobs, graphs = standin_data()
    standin = StandIn(jobs, graphs)
    path = f"/v1.0/{PROJECT}/streaming/jobs"
    async with serve(standin.app()) as base:
        last = await send(*sdk_signed_get(base, path, [("limit", "100"), ("offset", "100")]))
        too_big = await send(*sdk_signed_get(base, path, [("limit", "101"), ("offset", "0")]))

    assert last[0] == 200
    assert last[1]["job_list"]["total_count"] == len(jobs)
    assert [job["job_id"] for job in last[1]["job_list"]["jobs"]] == [
        job["job_id"] for job in jobs[100:]
    ]
    assert too_big[0] == 400
    assert standin.violations == ["list with limit=101"]


async def test_standin_refuses_execute_graph_of_a_job_that_is_not_running() -> None:
    jobs, graphs = standin_data()
    standin = StandIn(jobs, graphs)
    running = next(job["job_id"] for job in jobs if job.get("status") == RUNNING)
    idle = next(job["job_id"] for job in jobs if job.get("status") == "job_idle")
    graph_path = f"/v1.0/{PROJECT}/streaming/jobs/{{}}/execute-graph"
    async with serve(standin.app()) as base:
        ok = await send(*sdk_signed_get(base, graph_path.format(running), []))
        refused = await send(*sdk_signed_get(base, graph_path.format(idle), []))

    assert ok == (200, {"is_success": True, "message": "", "execute_graph": graphs[running]})
    assert refused[0] == 400
    assert len(standin.violations) == 1 and str(idle) in standin.violations[0]
