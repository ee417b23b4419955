"""The simulator's Cloud Eye, queue and elastic-resource-pool APIs, over real signed HTTP."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from yarl import URL

from exporter.config import AkSkAuth
from exporter.demo import demo_config
from exporter.dli.api import (
    BATCH_QUERY_METRIC_DATA,
    LIST_JOBS,
    batch_query_metric_data_path,
    elastic_resource_pools_path,
    list_jobs_path,
    list_queues_path,
)
from exporter.signing import QueryValue, canonical_query_string, sign_request
from exporter.simulator import (
    CLOUD_EYE_UNITS,
    Fault,
    SimJob,
    Simulator,
    cloud_eye_value,
    newest_datapoint_ms,
    serve,
)
from tests.test_simulator import T0_MS, Clock

# Own credentials and projects (not conftest's, whose helpers mypy does not pass today).
ACCESS_KEY = "RUNTIMEAKEXAMPLE0001"
SECRET_KEY = "runtime-sk-not-a-real-secret"
PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"

# T0 (from tests.test_simulator) is 20 s past a whole minute.
MINUTE_MS = 60_000
METRICS = tuple(CLOUD_EYE_UNITS)
QUEUE_KEYS = {
    "queue_id",
    "queue_name",
    "description",
    "owner",
    "create_time",
    "queue_type",
    "cu_count",
    "used_cu",
    "charging_mode",
    "resource_mode",
    "enterprise_project_id",
    "resource_id",
    "is_restarting",
    "labels",
    "feature",
    "queue_resource_type",
    "cu_spec",
    "cu_scale_out_limit",
    "cu_scale_in_limit",
    "engine",
}
POOL_KEYS = {
    "elastic_resource_pool_name",
    "id",
    "description",
    "owner",
    "status",
    "max_cu",
    "min_cu",
    "actual_cu",
    "current_cu",
    "prepay_cu",
    "charging_mode",
    "manager",
    "label",
    "queues",
    "fail_reason",
    "create_time",
    "update_time",
    "enterprise_project_id",
    "resource_id",
    "cidr_in_vpc",
}


class WallClock(Clock):
    """The real clock, which the demo's simulator runs on."""

    def __call__(self) -> float:
        return time.time()


@dataclass
class Api:
    """The simulator on a socket, and signed requests to it as of the simulator's clock."""

    sim: Simulator
    clock: Clock
    base: str
    session: aiohttp.ClientSession
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    async def request(
        self, method: str, path: str, params: Mapping[str, QueryValue] | None, body: bytes
    ) -> tuple[int, Any]:
        query = canonical_query_string(params or {})
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        headers = {"Content-Type": "application/json"} if body else {}
        headers = sign_request(
            method,
            url,
            headers,
            body,
            access_key=self.access_key,
            secret_key=self.secret_key,
            now=datetime.fromtimestamp(self.clock(), UTC),
        )
        async with self.session.request(
            method, URL(url, encoded=True), headers=headers, data=body
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def get(self, path: str, **params: QueryValue) -> tuple[int, Any]:
        return await self.request("GET", path, params, b"")

    async def ces(self, body: object, project_id: str = PROJECT) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.request("POST", batch_query_metric_data_path(project_id), None, raw)

    async def ces_ok(self, body: object) -> list[dict[str, Any]]:
        status, answer = await self.ces(body)
        assert status == 200, answer
        entries: list[dict[str, Any]] = answer["metrics"]
        return entries

    async def queues(self, **params: QueryValue) -> list[dict[str, Any]]:
        status, body = await self.get(list_queues_path(PROJECT), **params)
        assert status == 200, body
        assert (body["is_success"], body["message"]) == (True, "")
        queues: list[dict[str, Any]] = body["queues"]
        return queues


@pytest.fixture
async def api(session: aiohttp.ClientSession) -> AsyncIterator[Api]:
    """Two projects, no jobs, lifecycles off, a clock standing at ``T0``."""
    clock = Clock()
    sim = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, clock=clock, seed=1, lifecycle=False)
    sim.add_project(PROJECT)
    sim.add_project(OTHER_PROJECT)
    async with serve(sim) as base:
        yield Api(sim, clock, base, session)


def metric(name: str, job_id: object) -> dict[str, Any]:
    return {
        "namespace": "SYS.DLI",
        "metric_name": name,
        "dimensions": [{"name": "flink_job_id", "value": str(job_id)}],
    }


def query(metrics: list[dict[str, Any]], *, minutes: float = 10, to: int = T0_MS) -> dict[str, Any]:
    return {
        "metrics": metrics,
        "from": to - int(minutes * MINUTE_MS),
        "to": to,
        "period": "1",
        "filter": "average",
    }


def running_job(sim: Simulator, **fields: Any) -> SimJob:
    fields.setdefault("start_time_ms", T0_MS - 50 * MINUTE_MS)
    return sim.add_job(PROJECT, **fields)


def points(entry: dict[str, Any]) -> list[tuple[int, float]]:
    return [(point["timestamp"], point["average"]) for point in entry["datapoints"]]


# --- Cloud Eye -----------------------------------------------------------------------------


async def test_datapoints_are_cloud_eye_value_every_minute_a_lag_behind(api: Api) -> None:
    job = running_job(api.sim)
    entries = await api.ces_ok(query([metric(name, job.job_id) for name in METRICS]))
    newest = newest_datapoint_ms(T0_MS, 60.0)
    assert newest == T0_MS - 80_000  # 60 s lag, then down to the whole minute
    expected_times = list(range(newest - 8 * MINUTE_MS, newest + 1, MINUTE_MS))
    assert [entry["metric_name"] for entry in entries] == list(METRICS)
    for entry, name in zip(entries, METRICS, strict=True):
        assert entry["namespace"] == "SYS.DLI"
        assert entry["dimensions"] == [{"name": "flink_job_id", "value": str(job.job_id)}]
        assert entry["unit"] == CLOUD_EYE_UNITS[name]
        assert [t for t, _ in points(entry)] == expected_times
        assert points(entry) == [(t, cloud_eye_value(job, name, t)) for t in expected_times]
    latest = {entry["metric_name"]: points(entry)[-1][1] for entry in entries}
    assert 180 <= latest["flink_read_records_per_second"] <= 5500
    assert 0 < latest["flink_write_records_per_second"] < latest["flink_read_records_per_second"]
    assert latest["flink_read_bytes_per_second"] > latest["flink_read_records_per_second"]
    assert latest["flink_read_records_total"] > 50 * 60 * 180 * 0.8
    assert latest["flink_write_records_total"] < latest["flink_read_records_total"]
    assert latest["flink_read_bytes_total"] % latest["flink_read_records_total"] == 0
    assert 10 <= latest["flink_cpu_usage"] <= 80
    assert 10 <= latest["flink_mem_usage"] <= 80
    assert 5 <= latest["flink_max_op_latency"] <= 500
    assert latest["flink_max_op_backpressure_level"] == 0


async def test_units_are_the_contracts() -> None:
    assert CLOUD_EYE_UNITS == {
        "flink_read_records_per_second": "count/s",
        "flink_write_records_per_second": "count/s",
        "flink_read_records_total": "count",
        "flink_write_records_total": "count",
        "flink_read_bytes_per_second": "byte/s",
        "flink_write_bytes_per_second": "byte/s",
        "flink_read_bytes_total": "byte",
        "flink_write_bytes_total": "byte",
        "flink_cpu_usage": "%",
        "flink_mem_usage": "%",
        "flink_max_op_latency": "ms",
        "flink_max_op_backpressure_level": "",
    }


async def test_values_are_stable_and_totals_grow(api: Api) -> None:
    job = running_job(api.sim)
    names = ["flink_read_records_total", "flink_write_bytes_total", "flink_cpu_usage"]
    body = query([metric(name, job.job_id) for name in names])
    first = await api.ces_ok(body)
    assert await api.ces_ok(body) == first
    api.clock.now += 600
    later = await api.ces_ok(query(body["metrics"], to=T0_MS + 600_000))
    for before, after in zip(first[:2], later[:2], strict=True):
        assert points(after)[-1][1] > points(before)[-1][1]
        values = [value for _, value in points(after)]
        assert values == sorted(values)


async def test_the_lag_is_a_setting(api: Api) -> None:
    job = running_job(api.sim)
    api.sim.ces_lag_seconds = 0
    (entry,) = await api.ces_ok(query([metric("flink_cpu_usage", job.job_id)]))
    assert points(entry)[-1][0] == T0_MS - 20_000


@pytest.mark.parametrize(
    ("status", "flink_state"),
    [
        ("job_running", "RESTARTING"),
        ("job_running", "CREATED"),
        ("job_savepointing", "RUNNING"),
        ("job_cancel_success", "CANCELED"),
        ("job_running_exception", "FAILED"),
        ("job_submitting", "RUNNING"),
    ],
)
async def test_only_running_jobs_have_datapoints(api: Api, status: str, flink_state: str) -> None:
    running = running_job(api.sim)
    other = running_job(api.sim, status=status, flink_state=flink_state)
    entries = await api.ces_ok(
        query([metric("flink_read_records_per_second", j.job_id) for j in (running, other)])
    )
    assert len(entries[0]["datapoints"]) == 9
    assert entries[1]["datapoints"] == []
    assert entries[1]["unit"] == "count/s"


async def test_unknown_jobs_metrics_and_projects_get_empty_entries(api: Api) -> None:
    job = running_job(api.sim)
    started = running_job(api.sim, start_time_ms=T0_MS - 150_000)
    metrics = [
        metric("flink_cpu_usage", 424242),
        metric("flink_cpu_usage", "not-a-number"),
        metric("flink_no_such_metric", job.job_id),
        metric("flink_cpu_usage", started.job_id),
    ]
    entries = await api.ces_ok(query(metrics))
    assert [entry["datapoints"] for entry in entries[:3]] == [[], [], []]
    assert entries[2]["unit"] == ""
    # Started 150 s ago: only the minutes since its start have data.
    assert [t for t, _ in points(entries[3])] == [T0_MS - 140_000, T0_MS - 80_000]
    status, body = await api.ces(query([metric("flink_cpu_usage", job.job_id)]), OTHER_PROJECT)
    assert status == 200
    assert body["metrics"][0]["datapoints"] == []


async def test_a_stalled_job_reads_nothing_and_its_totals_stop(api: Api) -> None:
    job = running_job(api.sim, stalled=True)
    job.stalled_since_ms = T0_MS - 20 * MINUTE_MS
    names = [
        "flink_read_records_per_second",
        "flink_write_bytes_per_second",
        "flink_read_records_total",
        "flink_write_bytes_total",
        "flink_max_op_backpressure_level",
    ]
    entries = await api.ces_ok(query([metric(name, job.job_id) for name in names]))
    rates, byte_rates, totals, byte_totals, level = (points(e) for e in entries)
    assert {value for _, value in rates + byte_rates + level} == {0.0}
    assert len({value for _, value in totals}) == 1
    assert len({value for _, value in byte_totals}) == 1
    frozen = cloud_eye_value(job, "flink_read_records_total", job.stalled_since_ms)
    assert totals[0][1] == frozen
    assert frozen is not None and frozen > 30 * 60 * 180 * 0.8
    job.stalled = False
    (flowing,) = await api.ces_ok(query([metric(names[0], job.job_id)]))
    assert all(value > 0 for _, value in points(flowing))


async def test_backpressure_and_latency_overrides(api: Api) -> None:
    pinned = running_job(api.sim, backpressure_level=100, max_op_latency_ms=45_000.0)
    derived = running_job(api.sim, backpressure_level=100)
    low = running_job(api.sim, backpressure_level=50)
    names = ["flink_max_op_backpressure_level", "flink_max_op_latency"]
    metrics = [metric(name, job.job_id) for job in (pinned, derived, low) for name in names]
    entries = await api.ces_ok(query(metrics))
    latest = [points(entry)[-1][1] for entry in entries]
    assert latest[:2] == [100.0, 45_000.0]
    assert latest[2] == 100.0 and 30_000 <= latest[3] <= 45_000
    assert latest[4] == 50.0 and 2_000 <= latest[5] <= 6_000


async def test_more_than_3000_datapoints_moves_from_later(api: Api) -> None:
    job = running_job(api.sim, start_time_ms=T0_MS - 600 * MINUTE_MS)
    hour = query([metric("flink_cpu_usage", job.job_id)] * 50, minutes=60)
    entries = await api.ces_ok(hour)  # 50 * 60 = 3000: not moved
    newest = newest_datapoint_ms(T0_MS, 60.0)
    assert all(len(entry["datapoints"]) == 59 for entry in entries)
    assert points(entries[0])[0][0] == newest - 58 * MINUTE_MS

    hour["metrics"] = [metric("flink_cpu_usage", job.job_id)] * 51
    entries = await api.ces_ok(hour)
    moved_from = T0_MS - 3000 * MINUTE_MS / 51
    first = math.ceil(moved_from / MINUTE_MS) * MINUTE_MS
    assert all(points(entry)[0][0] == first for entry in entries)
    assert len(entries[0]["datapoints"]) == (newest - first) // MINUTE_MS + 1 == 58

    day = query([metric(name, job.job_id) for name in METRICS] * 41, minutes=600)  # 492 metrics
    entries = await api.ces_ok(day)
    assert len(entries) == 492
    assert sum(len(entry["datapoints"]) for entry in entries) <= 3000
    assert all(t >= T0_MS - 3000 * MINUTE_MS / 492 for e in entries for t, _ in points(e))
    assert {len(entry["datapoints"]) for entry in entries} == {5}


def bad_bodies() -> list[tuple[str, object]]:
    good = query([metric("flink_cpu_usage", 1)])
    without = {key: {k: v for k, v in good.items() if k != key} for key in good}
    bad_metric = {
        "namespace": {**good["metrics"][0], "namespace": "SYS.ECS"},
        "no_name": {k: v for k, v in good["metrics"][0].items() if k != "metric_name"},
        "dimension_name": {**good["metrics"][0], "dimensions": [{"name": "queue", "value": "1"}]},
        "int_dimension": {
            **good["metrics"][0],
            "dimensions": [{"name": "flink_job_id", "value": 1}],
        },
        "no_dimensions": {**good["metrics"][0], "dimensions": []},
    }
    return [
        ("501 metrics", {**good, "metrics": good["metrics"] * 501}),
        ("no metrics", {**good, "metrics": []}),
        ("metrics not a list", {**good, "metrics": good["metrics"][0]}),
        *((f"without {key}", body) for key, body in without.items()),
        *((f"metric {key}", {**good, "metrics": [m]}) for key, m in bad_metric.items()),
        ("from after to", {**good, "from": good["to"], "to": good["from"]}),
        ("from as text", {**good, "from": str(good["from"])}),
        ("bad period", {**good, "period": "7"}),
        ("bad filter", {**good, "filter": "median"}),
        ("not json", b"{metrics"),
        ("a list", b"[]"),
    ]


@pytest.mark.parametrize(("case", "body"), bad_bodies(), ids=[case for case, _ in bad_bodies()])
async def test_bad_queries_get_a_ces_400(api: Api, case: str, body: object) -> None:
    status, answer = await api.ces(body)
    assert status == 400, case
    assert answer["error_code"] == "ces.0014"
    assert isinstance(answer["error_msg"], str) and answer["error_msg"]


async def test_500_metrics_are_accepted(api: Api) -> None:
    entries = await api.ces_ok(query([metric("flink_cpu_usage", 1)] * 500, minutes=5))
    assert len(entries) == 500


async def test_cloud_eye_requests_are_signed_counted_and_faulted_by_operation(api: Api) -> None:
    job = running_job(api.sim)
    api.sim.inject_fault(Fault(status=503, operation=BATCH_QUERY_METRIC_DATA))
    status, _ = await api.ces(query([metric("flink_cpu_usage", job.job_id)]))
    assert status == 503
    assert (await api.get(list_jobs_path(PROJECT)))[0] == 200
    await api.ces_ok(query([metric("flink_cpu_usage", job.job_id)]))
    api.secret_key = "wrong"
    status, answer = await api.ces(query([metric("flink_cpu_usage", job.job_id)]))
    assert (status, answer["error_code"]) == (401, "APIG.0301")
    logged = [(r.operation, r.status) for r in api.sim.request_log]
    assert logged == [
        (BATCH_QUERY_METRIC_DATA, 503),
        (LIST_JOBS, 200),
        (BATCH_QUERY_METRIC_DATA, 200),
        (BATCH_QUERY_METRIC_DATA, 401),
    ]


# --- queues --------------------------------------------------------------------------------


async def test_queue_type_defaults_to_sql_and_filters(api: Api) -> None:
    api.sim.add_queue(PROJECT, "flink_prod", cu_count=16, elastic_resource_pool_name="pool_a")
    api.sim.add_queue(PROJECT, "sql_adhoc", cu_count=8, queue_type="sql", used_cu=2.5)
    names = {}
    for queue_type in (None, "sql", "general", "all"):
        params = {} if queue_type is None else {"queue_type": queue_type}
        names[queue_type] = [q["queue_name"] for q in await api.queues(**params)]
    assert names == {
        None: ["sql_adhoc"],
        "sql": ["sql_adhoc"],
        "general": ["flink_prod"],
        "all": ["flink_prod", "sql_adhoc"],
    }
    flink, sql = await api.queues(queue_type="all")
    assert set(flink) == QUEUE_KEYS | {"elastic_resource_pool_name"}
    assert set(sql) == QUEUE_KEYS
    assert flink["elastic_resource_pool_name"] == "pool_a"
    assert (flink["queue_type"], flink["engine"], sql["engine"]) == ("general", "flink", "spark")
    assert (flink["cu_count"], flink["cu_spec"], flink["used_cu"]) == (16, 16, 0.0)
    assert (sql["used_cu"], sql["cu_scale_in_limit"], sql["cu_scale_out_limit"]) == (2.5, 8, 8)
    assert (flink["resource_mode"], flink["charging_mode"], flink["is_restarting"]) == (1, 1, False)
    assert flink["queue_id"] != sql["queue_id"]
    assert (await api.get(list_queues_path(PROJECT), queue_type="spark"))[0] == 400


async def test_used_cu_is_what_the_running_jobs_take_capped_at_the_queue(api: Api) -> None:
    queue = api.sim.add_queue(PROJECT, "flink_prod", cu_count=16)
    for cu, status in ((4, "job_running"), (6, "job_running"), (8, "job_cancel_success")):
        api.sim.add_job(PROJECT, queue_name="flink_prod", cu_number=cu, status=status)
    api.sim.add_job(PROJECT, queue_name="elsewhere", cu_number=8)
    api.sim.add_job(OTHER_PROJECT, queue_name="flink_prod", cu_number=8)
    (listed,) = await api.queues(queue_type="general")
    assert listed["used_cu"] == 10.0
    api.sim.add_job(PROJECT, queue_name="flink_prod", cu_number=8)
    assert (await api.queues(queue_type="general"))[0]["used_cu"] == 16.0
    queue.used_cu = 3.0
    queue.is_restarting = True
    (listed,) = await api.queues(queue_type="general")
    assert (listed["used_cu"], listed["is_restarting"]) == (3.0, True)


async def test_a_project_without_queues_lists_none(api: Api) -> None:
    assert await api.queues(queue_type="all") == []
    status, body = await api.get(list_queues_path("no-such-project"))
    assert (status, body["error_code"]) == (404, "DLI.0023")


# --- elastic resource pools ----------------------------------------------------------------


async def test_pools_are_paged_with_the_total_count(api: Api) -> None:
    for i in range(150):
        api.sim.add_pool(PROJECT, f"pool_{i:03d}", max_cu=64, min_cu=16, current_cu=32)
    path = elastic_resource_pools_path(PROJECT)
    pages = []
    for params in ({}, {"limit": 100, "offset": 100}, {"limit": 20, "offset": 140}):
        status, body = await api.get(path, **params)
        assert status == 200, body
        assert (body["is_success"], body["message"], body["count"]) == (True, "", 150)
        pages.append(
            [pool["elastic_resource_pool_name"] for pool in body["elastic_resource_pools"]]
        )
    assert [len(page) for page in pages] == [100, 50, 10]
    assert pages[0] + pages[1] == [f"pool_{i:03d}" for i in range(150)]
    assert pages[2] == [f"pool_{i:03d}" for i in range(140, 150)]
    for bad in ({"limit": 101}, {"limit": 0}, {"offset": -1}, {"limit": "x"}):
        status, body = await api.get(path, **bad)
        assert (status, body["error_code"]) == (400, "DLI.0001"), bad


async def test_pool_fields(api: Api) -> None:
    api.sim.add_queue(PROJECT, "q_b", cu_count=16, elastic_resource_pool_name="pool_prod")
    api.sim.add_pool(
        PROJECT, "pool_prod", max_cu=64, min_cu=16, current_cu=64, prepay_cu=16, queues=("q_a",)
    )
    failed = api.sim.add_pool(PROJECT, "pool_new", max_cu=32, min_cu=16, current_cu=0)
    failed.status, failed.fail_reason, failed.actual_cu = "FAILED", "Insufficient quota", 0
    status, body = await api.get(elastic_resource_pools_path(PROJECT))
    assert status == 200
    prod, new = body["elastic_resource_pools"]
    assert set(prod) == POOL_KEYS
    assert (prod["max_cu"], prod["min_cu"], prod["current_cu"], prod["actual_cu"]) == (
        64,
        16,
        64,
        64,
    )
    assert (prod["prepay_cu"], prod["status"], prod["fail_reason"]) == (16, "AVAILABLE", "")
    assert prod["queues"] == ["q_a", "q_b"]
    assert (prod["manager"], prod["label"], prod["cidr_in_vpc"]) == (
        "containerized",
        {},
        "172.16.0.0/12",
    )
    assert (new["status"], new["fail_reason"], new["actual_cu"], new["queues"]) == (
        "FAILED",
        "Insufficient quota",
        0,
        [],
    )
    assert prod["id"] != new["id"]
    status, body = await api.get(elastic_resource_pools_path(OTHER_PROJECT))
    assert (status, body["count"], body["elastic_resource_pools"]) == (200, 0, [])


# --- job config, populate ------------------------------------------------------------------


async def test_job_config_fields_in_the_listing(api: Api) -> None:
    api.sim.add_job(PROJECT, name="default")
    api.sim.add_job(
        PROJECT,
        name="custom",
        checkpoint_enabled=False,
        checkpoint_interval=300,
        restart_when_exception=False,
        resume_max_num=5,
    )
    api.sim.add_job(
        PROJECT,
        name="failed",
        status="job_running_exception",
        status_desc="java.lang.OutOfMemoryError: Java heap space",
    )
    for show_detail in (True, False):
        status, body = await api.get(list_jobs_path(PROJECT), show_detail=show_detail, order="asc")
        assert status == 200
        jobs = {job["name"]: job for job in body["job_list"]["jobs"]}
        configs = {
            name: tuple(
                job["job_config"][key]
                for key in (
                    "checkpoint_enabled",
                    "checkpoint_interval",
                    "restart_when_exception",
                    "resume_max_num",
                )
            )
            for name, job in jobs.items()
        }
        assert configs["default"] == (True, 60, True, -1)
        assert configs["custom"] == (False, 300, False, 5)
        assert jobs["failed"]["status_desc"] == "java.lang.OutOfMemoryError: Java heap space"
        assert jobs["default"]["status_desc"] == ""


def test_populate_adds_queues_and_pools_deterministically() -> None:
    def build(seed: int) -> tuple[Simulator, list[SimJob]]:
        sim = Simulator(credentials={}, clock=Clock(), seed=seed, lifecycle=False)
        return sim, sim.populate("p", 60)

    sim, jobs = build(3)
    queues = {queue.queue_name: queue for queue in sim.queues("p")}
    assert {job.queue_name for job in jobs} | {"sql_adhoc"} == set(queues)
    assert [q.queue_name for q in sim.queues("p") if q.queue_type == "sql"] == ["sql_adhoc"]
    assert all(q.queue_type == "general" for name, q in queues.items() if name != "sql_adhoc")
    assert queues["default"].resource_mode == 0
    pools = {pool.name: pool for pool in sim.pools("p")}
    assert set(pools) <= {"pool_prod", "pool_dev"} and pools
    for pool in pools.values():
        hosted = sim.capacity.hosted_queues(pool)
        assert hosted and pool.current_cu == sum(queues[name].cu_count for name in hosted)
        assert pool.min_cu <= pool.current_cu <= pool.max_cu
    configs = {(j.checkpoint_enabled, j.restart_when_exception, j.resume_max_num) for j in jobs}
    assert len(configs) > 3

    again, _ = build(3)
    assert again.queues("p") == sim.queues("p")
    assert again.pools("p") == sim.pools("p")
    assert [j.to_api(show_detail=True, now_ms=T0_MS) for j in again.jobs("p")] == [
        j.to_api(show_detail=True, now_ms=T0_MS) for j in jobs
    ]
    sim.populate("p", 5)  # again: the queues it has stay as they are
    assert sim.queues("p")[: len(queues)] == list(queues.values())
    assert len(sim.pools("p")) == len(pools)


# --- the demo's incident scenario ----------------------------------------------------------


async def test_the_incident_demo_has_stalled_backpressured_saturated_and_healthy(
    session: aiohttp.ClientSession,
) -> None:
    async with demo_config(scenario="incident") as config:
        (target,) = config.targets
        assert target.ces_endpoint == target.endpoint
        assert target.project_id is not None and isinstance(target.auth, AkSkAuth)
        auth = target.auth
        api = Api(Simulator(credentials={}), WallClock(), target.endpoint, session)
        api.access_key, api.secret_key = auth.access_key, auth.secret_key.reveal()
        path = list_jobs_path(target.project_id)
        status, body = await api.get(path, show_detail=True, limit=100)
        assert status == 200
        ids = {job["name"]: job["job_id"] for job in body["job_list"]["jobs"]}
        names = ["flink_read_records_per_second", "flink_max_op_backpressure_level"]
        names.append("flink_max_op_latency")
        wanted = ("orders_enrich", "fraud_scoring", "sessionize")
        metrics = [metric(name, ids[job]) for job in wanted for name in names]
        now_ms = int(api.clock() * 1000)
        status, answer = await api.request(
            "POST",
            batch_query_metric_data_path(target.project_id),
            None,
            json.dumps(query(metrics, to=now_ms)).encode(),
        )
        assert status == 200, answer
        latest = [points(entry)[-1][1] for entry in answer["metrics"]]
        healthy, stalled, backpressured = latest[:3], latest[3:6], latest[6:]
        assert healthy[0] > 0 and healthy[1] == 0 and healthy[2] <= 500
        assert stalled[:2] == [0.0, 0.0]
        assert backpressured[1:] == [100.0, 45_000.0]
        status, body = await api.get(list_queues_path(target.project_id), queue_type="all")
        (queue,) = body["queues"]
        assert (queue["queue_name"], queue["cu_count"], queue["used_cu"]) == (
            "flink_prod",
            16,
            16.0,
        )
        assert queue["elastic_resource_pool_name"] == "pool_prod"
        status, body = await api.get(elastic_resource_pools_path(target.project_id))
        (pool,) = body["elastic_resource_pools"]
        assert pool["elastic_resource_pool_name"] == "pool_prod"
        assert pool["current_cu"] == pool["max_cu"]
        assert pool["queues"] == ["flink_prod"]
