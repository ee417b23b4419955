"""The DLI simulator, exercised over real HTTP on 127.0.0.1 with AK/SK-signed requests."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from exporter.signing import QueryValue, canonical_query_string, sign_request
from exporter.simulator import (
    EXECUTE_GRAPH,
    LIST_JOBS,
    UNKNOWN,
    Fault,
    RequestRecord,
    SimJob,
    Simulator,
    serve,
)
from exporter.simulator.__main__ import parse_duration

AK = "test-ak"
SK = "test-sk-not-a-real-secret"
PROJECT = "0123456789abcdef0123456789abcdef"
JOBS_PATH = f"/v1.0/{PROJECT}/streaming/jobs"
T0 = 1_700_000_000.0
T0_MS = int(T0 * 1000)

ALWAYS = {
    "job_id",
    "name",
    "desc",
    "job_type",
    "status",
    "status_desc",
    "create_time",
    "start_time",
    "queue_name",
    "has_savepoint",
    "restart_times",
    "graph_editor_enabled",
}
DETAIL_ONLY = {"user_id", "project_id", "run_mode", "entrypoint_args"}
BRIEF_ONLY = {
    "user_name",
    "duration",
    "root_id",
    "sql_body",
    "main_class",
    "execution_graph",
    "update_time",
}


class Clock:
    """A settable clock, injected into the simulator."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    """A running simulator plus a client session that signs like the exporter does."""

    sim: Simulator
    clock: Clock
    base: str
    session: aiohttp.ClientSession

    async def get(
        self,
        path: str,
        params: Mapping[str, QueryValue] | None = None,
        *,
        access_key: str = AK,
        secret_key: str = SK,
        skew: float = 0.0,
        signed: bool = True,
        raw_query: str | None = None,
    ) -> tuple[int, Any]:
        query = canonical_query_string(params or {}) if raw_query is None else raw_query
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        headers: dict[str, str] = {}
        if signed:
            now = datetime.fromtimestamp(self.clock.now + skew, UTC)
            headers = sign_request(
                "GET", url, {}, b"", access_key=access_key, secret_key=secret_key, now=now
            )
        async with self.session.get(URL(url, encoded=True), headers=headers) as resp:
            text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    async def list_jobs(self, **params: QueryValue) -> dict[str, Any]:
        status, body = await self.get(JOBS_PATH, params)
        assert status == 200, body
        assert body["is_success"] == "true"
        result: dict[str, Any] = body["job_list"]
        return result


def make_sim(clock: Clock, **kwargs: Any) -> Simulator:
    kwargs.setdefault("lifecycle", False)
    sim = Simulator(credentials={AK: SK}, clock=clock, seed=7, **kwargs)
    sim.add_project(PROJECT)
    return sim


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def api(session: aiohttp.ClientSession) -> AsyncIterator[Api]:
    clock = Clock()
    sim = make_sim(clock)
    async with serve(sim) as base:
        yield Api(sim, clock, base, session)


def add_jobs(sim: Simulator, count: int) -> list[SimJob]:
    """Jobs created one minute apart, the first the oldest."""
    return [
        sim.add_job(PROJECT, name=f"job-{i}", create_time_ms=T0_MS - (count - i) * 60_000)
        for i in range(count)
    ]


# --- listing -------------------------------------------------------------------------------


async def test_pages_cover_every_job_once_with_total_count(api: Api) -> None:
    jobs = add_jobs(api.sim, 25)
    pages = [await api.list_jobs(limit=10, offset=offset) for offset in (0, 10, 20, 30)]
    assert [page["total_count"] for page in pages] == [25, 25, 25, 25]
    assert [len(page["jobs"]) for page in pages] == [10, 10, 5, 0]
    listed = [job["job_id"] for page in pages for job in page["jobs"]]
    assert listed == [job.job_id for job in reversed(jobs)]  # newest first by default


async def test_limit_defaults_to_ten(api: Api) -> None:
    add_jobs(api.sim, 12)
    page = await api.list_jobs()
    assert (page["total_count"], len(page["jobs"])) == (12, 10)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 101},
        {"limit": 0},
        {"limit": "ten"},
        {"offset": -1},
        {"show_detail": "yes"},
        {"order": "sideways"},
        {"name": "x" * 58},
        {"job_type": ["flink_jar_job", "flink_sql_job"]},
    ],
    ids=repr,
)
async def test_invalid_list_parameters_get_a_dli_400(
    api: Api, params: dict[str, QueryValue]
) -> None:
    status, body = await api.get(JOBS_PATH, params)
    assert status == 400
    assert body["is_success"] == "false"
    assert body["error_code"] == "DLI.0001"
    assert body["error_msg"] and body["message"] == body["error_msg"]


async def test_limit_100_is_accepted(api: Api) -> None:
    add_jobs(api.sim, 101)
    page = await api.list_jobs(limit=100)
    assert (page["total_count"], len(page["jobs"])) == (101, 100)


async def test_repeated_tags_are_accepted_and_ignored(api: Api) -> None:
    add_jobs(api.sim, 3)
    page = await api.list_jobs(tags=["team=data", "env=prod"])
    assert page["total_count"] == 3


async def test_show_detail_true_has_cu_fields_and_no_list_only_fields(api: Api) -> None:
    api.sim.add_job(PROJECT, cu_number=9, parallel_number=6, manager_cu_number=2, tm_cus=2)
    (job,) = (await api.list_jobs(show_detail=True))["jobs"]
    assert set(job) == ALWAYS | DETAIL_ONLY | {"job_config"}
    assert job["project_id"] == PROJECT
    config = job["job_config"]
    assert (config["cu_number"], config["parallel_number"]) == (9, 6)
    assert (config["manager_cu_number"], config["tm_cus"]) == (2, 2)


async def test_show_detail_false_has_list_fields_and_no_cu_fields(api: Api) -> None:
    api.sim.add_job(PROJECT, start_time_ms=T0_MS - 90_000, user_name="bob")
    for params in ({}, {"show_detail": False}):
        (job,) = (await api.list_jobs(**params))["jobs"]
        assert set(job) == ALWAYS | BRIEF_ONLY | {"job_config"}
        assert (job["user_name"], job["duration"]) == ("bob", 90_000)
        assert "cu_number" not in job["job_config"]
        assert "parallel_number" not in job["job_config"]
        assert job["job_config"]["manager_cu_number"] == 1


async def test_jar_jobs_report_executors(api: Api) -> None:
    api.sim.add_job(PROJECT, job_type="flink_jar_job", executor_number=4, executor_cu_number=2)
    (job,) = (await api.list_jobs(show_detail=True))["jobs"]
    assert (job["job_config"]["executor_number"], job["job_config"]["executor_cu_number"]) == (4, 2)


async def test_a_job_that_never_started_reports_start_time_zero(api: Api) -> None:
    api.sim.add_job(PROJECT, status="job_init")
    (job,) = (await api.list_jobs())["jobs"]
    assert (job["status"], job["start_time"], job["duration"]) == ("job_init", 0, 0)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"job_type": "flink_jar_job"}, {"b"}),
        ({"status": "job_cancel_success"}, {"c"}),
        ({"queue_name": "q2"}, {"b", "c"}),
        ({"user_name": "carol"}, {"c"}),
        ({"name": "orders"}, {"a", "c"}),
        ({"name": "orders", "queue_name": "q2"}, {"c"}),
        ({"status": "job_unknown"}, set()),
    ],
    ids=repr,
)
async def test_filters(api: Api, params: dict[str, QueryValue], expected: set[str]) -> None:
    api.sim.add_job(PROJECT, desc="a", name="orders_ingest", queue_name="q1")
    api.sim.add_job(PROJECT, desc="b", name="payments", queue_name="q2", job_type="flink_jar_job")
    api.sim.add_job(
        PROJECT,
        desc="c",
        name="orders_agg",
        queue_name="q2",
        status="job_cancel_success",
        user_name="carol",
    )
    page = await api.list_jobs(**params)
    assert {job["desc"] for job in page["jobs"]} == expected
    assert page["total_count"] == len(expected)


async def test_order_by_create_time_with_job_id_tiebreak(api: Api) -> None:
    old = api.sim.add_job(PROJECT, create_time_ms=T0_MS - 5000)
    tie_a = api.sim.add_job(PROJECT, create_time_ms=T0_MS - 1000)
    tie_b = api.sim.add_job(PROJECT, create_time_ms=T0_MS - 1000)
    new = api.sim.add_job(PROJECT, create_time_ms=T0_MS)
    asc = [job["job_id"] for job in (await api.list_jobs(order="asc"))["jobs"]]
    desc = [job["job_id"] for job in (await api.list_jobs(order="desc"))["jobs"]]
    assert asc == [old.job_id, tie_a.job_id, tie_b.job_id, new.job_id]
    assert desc == asc[::-1]
    assert desc == [job["job_id"] for job in (await api.list_jobs())["jobs"]]


async def test_unknown_project_is_a_404_dli_error(api: Api) -> None:
    status, body = await api.get("/v1.0/no-such-project/streaming/jobs")
    assert status == 404
    assert body["error_code"].startswith("DLI.")
    assert body["is_success"] == "false"


async def test_unknown_route_is_an_apig_404(api: Api) -> None:
    status, body = await api.get(f"/v1.0/{PROJECT}/streaming/queues")
    assert (status, body["error_code"]) == (404, "APIG.0101")


async def test_odd_percent_encoded_query_values_still_verify(api: Api) -> None:
    odd = "订单 a&b=c+d 50%/x~y'\"#?"
    api.sim.add_job(PROJECT, name=f"pre {odd} post")
    api.sim.add_job(PROJECT, name=odd.replace("+", " "))  # "+" is a plus, not a space
    page = await api.list_jobs(name=odd, tags=["k=v&w", "%41", "é"])
    assert [job["name"] for job in page["jobs"]] == [f"pre {odd} post"]
    assert api.sim.request_log[-1].query["name"] == odd


async def test_a_raw_plus_in_the_query_is_a_plus_as_the_signature_reads_it(api: Api) -> None:
    api.sim.add_job(PROJECT, name="x a+b y")
    api.sim.add_job(PROJECT, name="x a b y")
    status, body = await api.get(JOBS_PATH, raw_query="name=a+b&limit=5")
    assert status == 200
    assert [job["name"] for job in body["job_list"]["jobs"]] == ["x a+b y"]


# --- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"signed": False},
        {"secret_key": "wrong-secret"},
        {"access_key": "unknown-ak"},
        {"skew": 16 * 60},
        {"skew": -16 * 60},
    ],
    ids=["unsigned", "wrong-sk", "unknown-ak", "date-ahead", "date-behind"],
)
async def test_bad_signatures_get_apig_0301(api: Api, kwargs: dict[str, Any]) -> None:
    add_jobs(api.sim, 1)
    status, body = await api.get(JOBS_PATH, {"limit": 5}, **kwargs)
    assert status == 401
    assert body["error_code"] == "APIG.0301"
    assert body["error_msg"]
    assert SK not in str(body) and "wrong-secret" not in str(body)
    record = api.sim.request_log[-1]
    assert (record.status, record.access_key, record.operation) == (401, None, LIST_JOBS)


async def test_small_clock_skew_is_tolerated(api: Api) -> None:
    status, _ = await api.get(JOBS_PATH, skew=10 * 60)
    assert status == 200


async def test_execute_graph_needs_a_signature(api: Api) -> None:
    job = api.sim.add_job(PROJECT)
    status, body = await api.get(f"{JOBS_PATH}/{job.job_id}/execute-graph", signed=False)
    assert (status, body["error_code"]) == (401, "APIG.0301")


# --- execute-graph -------------------------------------------------------------------------


async def test_execute_graph_of_a_running_job(api: Api) -> None:
    job = api.sim.add_job(
        PROJECT, name="orders", start_time_ms=T0_MS - 7_000, flink_state="RESTARTING"
    )
    job.is_stoppable = True
    status, body = await api.get(f"{JOBS_PATH}/{job.job_id}/execute-graph")
    assert status == 200
    assert body == {
        "is_success": "true",
        "message": "",
        "execute_graph": {
            "jid": job.jid,
            "name": "orders",
            "isStoppable": True,
            "state": "RESTARTING",
            "start-time": T0_MS - 7_000,
            "end-time": -1,
            "duration": 7_000,
        },
    }
    assert len(job.jid) == 32 and int(job.jid, 16) >= 0
    api.clock.now += 3
    _, later = await api.get(f"{JOBS_PATH}/{job.job_id}/execute-graph")
    assert later["execute_graph"]["duration"] == 10_000


async def test_execute_graph_of_a_stopped_job_is_a_400(api: Api) -> None:
    job = api.sim.add_job(PROJECT, status="job_cancel_success")
    status, body = await api.get(f"{JOBS_PATH}/{job.job_id}/execute-graph")
    assert status == 400
    assert body["error_code"].startswith("DLI.") and body["error_msg"]


async def test_execute_graph_of_a_missing_job_is_a_404(api: Api) -> None:
    job = api.sim.add_job(PROJECT)
    api.sim.remove_job(PROJECT, job.job_id)
    status, body = await api.get(f"{JOBS_PATH}/{job.job_id}/execute-graph")
    assert status == 404
    assert body["error_code"].startswith("DLI.") and body["error_msg"]
    assert (await api.list_jobs())["total_count"] == 0


async def test_execute_graph_with_a_non_numeric_job_id_is_a_400(api: Api) -> None:
    status, body = await api.get(f"{JOBS_PATH}/abc/execute-graph")
    assert (status, body["error_code"]) == (400, "DLI.0001")


# --- request log, faults, throttling -------------------------------------------------------


async def test_request_log_records_every_request(api: Api) -> None:
    job = api.sim.add_job(PROJECT)
    await api.get(JOBS_PATH, {"limit": 5, "show_detail": True})
    api.clock.now += 1
    await api.get(f"{JOBS_PATH}/{job.job_id}/execute-graph")
    await api.get(JOBS_PATH, signed=False)
    await api.get("/elsewhere")
    assert api.sim.request_log == [
        RequestRecord(
            T0, "GET", JOBS_PATH, {"limit": "5", "show_detail": "true"}, 200, AK, LIST_JOBS
        ),
        RequestRecord(
            T0 + 1, "GET", f"{JOBS_PATH}/{job.job_id}/execute-graph", {}, 200, AK, EXECUTE_GRAPH
        ),
        RequestRecord(T0 + 1, "GET", JOBS_PATH, {}, 401, None, LIST_JOBS),
        RequestRecord(T0 + 1, "GET", "/elsewhere", {}, 404, None, UNKNOWN),
    ]


def test_request_log_keeps_the_newest_records_within_its_limit() -> None:
    sim = Simulator(credentials={}, clock=Clock(), request_log_limit=4)
    for status in range(200, 206):
        sim.record(
            method="GET", path="/", query={}, status=status, access_key=None, operation=UNKNOWN
        )
    assert 2 <= len(sim.request_log) <= 4
    assert sim.request_log[-1].status == 205
    assert [r.status for r in sim.request_log] == sorted(r.status for r in sim.request_log)


async def test_injected_faults_answer_matching_requests_once(api: Api) -> None:
    job = api.sim.add_job(PROJECT)
    api.sim.inject_fault(Fault(status=429, operation=LIST_JOBS, headers={"Retry-After": "2"}))
    api.sim.inject_fault(
        Fault(status=502, body=b"<html>Bad Gateway</html>", content_type="text/html")
    )
    status, body = await api.get(f"{JOBS_PATH}/{job.job_id}/execute-graph")
    assert (status, body) == (502, "<html>Bad Gateway</html>")  # the 429 is for list_jobs only
    status, body = await api.get(JOBS_PATH)
    assert (status, body["error_code"]) == (429, "APIG.0308")
    status, body = await api.get(JOBS_PATH)
    assert status == 200


async def test_fault_body_is_sent_verbatim(api: Api) -> None:
    api.sim.inject_fault(Fault(status=200, body=b'{"is_success": "tr'))
    url = f"{api.base}{JOBS_PATH}"
    headers = sign_request(
        "GET", url, {}, b"", access_key=AK, secret_key=SK, now=datetime.fromtimestamp(T0, UTC)
    )
    async with api.session.get(url, headers=headers) as resp:
        assert (resp.status, await resp.read()) == (200, b'{"is_success": "tr')
        assert resp.headers["X-Request-Id"]


async def test_rate_limit_throttles_on_the_injected_clock(session: aiohttp.ClientSession) -> None:
    clock = Clock()
    sim = make_sim(clock, rate_limit=2)
    async with serve(sim) as base:
        api = Api(sim, clock, base, session)
        statuses = [(await api.get(JOBS_PATH))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        _, body = await api.get(JOBS_PATH)
        assert body["error_code"] == "APIG.0308"
        clock.now += 1
        assert (await api.get(JOBS_PATH))[0] == 200


# --- populate and lifecycles ---------------------------------------------------------------


def test_populate_is_deterministic_given_the_seed() -> None:
    def snapshot(seed: int) -> list[dict[str, Any]]:
        sim = Simulator(credentials={}, clock=Clock(), seed=seed)
        return [job.to_api(show_detail=True, now_ms=T0_MS) for job in sim.populate("p", 30)]

    assert snapshot(3) == snapshot(3)
    assert snapshot(3) != snapshot(4)


def test_populate_mixes_types_queues_and_statuses() -> None:
    sim = Simulator(credentials={}, clock=Clock(), seed=5)
    jobs = sim.populate("p", 200, running_fraction=0.5)
    assert sum(job.status == "job_running" for job in jobs) == 100
    assert len({job.job_id for job in jobs}) == 200
    assert {job.job_type for job in jobs} == {
        "flink_opensource_sql_job",
        "flink_jar_job",
        "flink_sql_job",
    }
    assert len({job.queue_name for job in jobs}) > 2
    assert len({job.status for job in jobs}) > 6
    for job in jobs:
        assert job.create_time_ms <= T0_MS
        assert job.start_time_ms == 0 or job.create_time_ms <= job.start_time_ms <= T0_MS
        assert job.cu_number >= job.manager_cu_number + job.tm_cus


def test_add_job_rejects_duplicate_ids_and_unknown_fields() -> None:
    sim = Simulator(credentials={}, clock=Clock())
    job = sim.add_job("p")
    with pytest.raises(ValueError, match="already exists"):
        sim.add_job("other", job_id=job.job_id)
    with pytest.raises(TypeError, match="colour"):
        sim.add_job("p", colour="red")
    assert sim.add_job("p").job_id != job.job_id


async def observe_lifecycle(
    session: aiohttp.ClientSession, seed: int
) -> list[dict[int, tuple[str, int]]]:
    """Poll a populated, lifecycle-enabled simulator over HTTP for 15 simulated minutes."""
    clock = Clock()
    sim = Simulator(credentials={AK: SK}, clock=clock, seed=seed, lifecycle=True)
    sim.populate(PROJECT, 40, running_fraction=0.6)
    history = []
    async with serve(sim) as base:
        api = Api(sim, clock, base, session)
        for _ in range(90):
            clock.now += 10
            page = await api.list_jobs(limit=100)
            history.append(
                {job["job_id"]: (job["status"], job["restart_times"]) for job in page["jobs"]}
            )
    return history


async def test_lifecycles_move_jobs_through_statuses_deterministically(
    session: aiohttp.ClientSession,
) -> None:
    history = await observe_lifecycle(session, seed=11)
    first, last = history[0], history[-1]
    statuses_seen = {status for snapshot in history for status, _ in snapshot.values()}
    assert {"job_running", "job_submitting", "job_canceling", "job_cancel_success"} <= statuses_seen
    assert len(statuses_seen) >= 7
    assert sum(last[job_id][1] > first[job_id][1] for job_id in first) >= 3  # restarts counted
    changed = sum(len({snapshot[job_id][0] for snapshot in history}) >= 3 for job_id in first)
    assert changed >= 5
    assert history == await observe_lifecycle(session, seed=11)
    assert history != await observe_lifecycle(session, seed=12)


def test_lifecycle_does_not_depend_on_how_often_it_is_advanced() -> None:
    def run(step: float) -> list[tuple[str, str, int, int]]:
        clock = Clock()
        sim = Simulator(credentials={}, clock=clock, seed=2)
        sim.populate("p", 30)
        while clock.now < T0 + 1200:
            clock.now = min(T0 + 1200, clock.now + step)
            sim.advance()
        return [(j.status, j.flink_state, j.restart_times, j.start_time_ms) for j in sim.jobs("p")]

    assert run(1) == run(7) == run(1200)


def test_flink_states_follow_the_dli_status() -> None:
    clock = Clock()
    sim = Simulator(credentials={}, clock=clock, seed=9)
    job = sim.add_job("p", status="job_submitting", start_time_ms=0)
    seen: set[tuple[str, str]] = set()
    while clock.now < T0 + 3600 and len(seen) < 6:
        clock.now += 1
        sim.advance()
        seen.add((job.status, job.flink_state))
    running = {flink for status, flink in seen if status == "job_running"}
    assert {"INITIALIZING", "CREATED", "RUNNING"} <= running
    assert job.start_time_ms > T0_MS


def test_lifecycle_off_freezes_states() -> None:
    clock = Clock()
    sim = Simulator(credentials={}, clock=clock, seed=1, lifecycle=False)
    jobs = sim.populate("p", 20)
    before = [(job.status, job.flink_state, job.restart_times) for job in jobs]
    clock.now += 3600
    sim.advance()
    assert [(job.status, job.flink_state, job.restart_times) for job in jobs] == before


# --- command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("20ms", 0.02), ("1.5s", 1.5), ("2m", 120.0), ("3", 3.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


async def test_module_serves_signed_requests_until_terminated(
    session: aiohttp.ClientSession,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter.simulator",
        *("--port", "0", "--jobs", "7", "--latency", "1ms", "--seed", "1"),
        *("--access-key", AK, "--secret-key", SK, "--project-id", PROJECT),
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        assert line.startswith("listening on http://127.0.0.1:")
        base = line.split()[-1]
        clock = Clock(datetime.now(UTC).timestamp())  # the subprocess uses the real clock
        api = Api(Simulator(credentials={}), clock, base, session)
        page = await api.list_jobs(limit=100, show_detail=True)
        assert page["total_count"] == len(page["jobs"]) == 7
    finally:
        if proc.returncode is None:
            proc.terminate()
        code = await asyncio.wait_for(proc.wait(), timeout=20)
    assert code == 0
