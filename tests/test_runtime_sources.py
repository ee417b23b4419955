"""The runtime-health sources end to end: Cloud Eye, queues and pools, served by the simulator.

Every published value is compared with what the simulator served (its own functions say what
that is), units converted as `exporter.dli.cloudeye.UNITS` documents. A source failing (403,
timeout) leaves ``dli_up`` and every job series alone, shows in its own up gauge and is logged
once, naming the permission; the calls a poll makes are the fewest the sources need.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from exporter.config import Config, Sources, TargetConfig
from exporter.dli.api import (
    BATCH_QUERY_METRIC_DATA,
    EXECUTE_GRAPH,
    LIST_ELASTIC_RESOURCE_POOLS,
    LIST_JOBS,
    LIST_QUEUES,
)
from exporter.dli.cloudeye import METRICS
from exporter.simulator import Fault, Simulator
from exporter.simulator.cloudeye import cloud_eye_value, newest_datapoint_ms
from exporter.simulator.jobs import SimJob
from exporter.web import create_app
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_target
from tests.exporting import Samples, scrape_until, serve_app

#: Base-unit factors for the units the simulator reports (%, ms; the rest are base units).
FACTORS = {"flink_cpu_usage": 0.01, "flink_mem_usage": 0.01, "flink_max_op_latency": 0.001}
#: Families that come from the job list alone.
JOB_FAMILIES = ("dli_job_info", "dli_job_status", "dli_job_flink_state", "dli_job_restarts_total")
KAFKA_FAILURE = (
    "java.lang.RuntimeException: sink failed\n\tat a.b.C(C.java:1)\n"
    "Caused by: org.apache.kafka.common.errors.TimeoutException: Topic orders not present"
)


@dataclass(slots=True)
class Estate:
    """A simulated project: running, stalled, back-pressured, stopped and failed jobs; queues
    (one general, one SQL that the API's default would hide); pools (one at max, one failed)."""

    simulator: Simulator
    url: str
    now: float
    healthy: SimJob
    stalled: SimJob
    pressured: SimJob
    stopped: SimJob
    failed: SimJob

    @property
    def running(self) -> tuple[SimJob, ...]:
        return (self.healthy, self.stalled, self.pressured)


@pytest.fixture
async def estate() -> AsyncIterator[Estate]:
    now = time.time()
    simulator = Simulator(
        credentials={ACCESS_KEY: SECRET_KEY}, seed=3, lifecycle=False, clock=lambda: now
    )
    simulator.add_project(PROJECT)
    common = {"queue_name": "flink_prod", "cu_number": 4}
    healthy = simulator.add_job(PROJECT, name="orders", flink_state="RUNNING", **common)
    stalled = simulator.add_job(
        PROJECT, name="fraud", flink_state="RUNNING", stalled=True, **common
    )
    pressured = simulator.add_job(
        PROJECT, name="sessions", flink_state="RUNNING", backpressure_level=100, **common
    )
    stopped = simulator.add_job(PROJECT, name="backfill", status="job_cancel_success", **common)
    failed = simulator.add_job(
        PROJECT,
        name="payments",
        status="job_running_exception",
        status_desc=KAFKA_FAILURE,
        checkpoint_enabled=False,
        resume_max_num=5,
        restart_times=4,
        **common,
    )
    simulator.add_queue(PROJECT, "flink_prod", cu_count=16, elastic_resource_pool_name="pool_a")
    simulator.add_queue(PROJECT, "sql_adhoc", cu_count=8, queue_type="sql", is_restarting=True)
    simulator.add_pool(PROJECT, "pool_a", max_cu=64, min_cu=16, current_cu=64, prepay_cu=16)
    simulator.add_pool(
        PROJECT, "pool_b", max_cu=32, min_cu=0, current_cu=0, status="FAILED", fail_reason="quota"
    )
    async with serve_app(simulator.app()) as url:
        yield Estate(simulator, url, now, healthy, stalled, pressured, stopped, failed)


def target_of(estate: Estate, **overrides: object) -> TargetConfig:
    return make_target("prod", estate.url, **overrides)


@contextlib.asynccontextmanager
async def exporter(target: TargetConfig) -> AsyncIterator[str]:
    """The exporter (in this process) polling ``target``; yields its URL."""
    async with serve_app(create_app(Config(targets=(target,), source="<test>"))) as url:
        yield url


def source_up(samples: Samples, source: str) -> float | None:
    return samples.get(("dli_source_up", frozenset({("target", "prod"), ("source", source)})))


def all_sources_polled(samples: Samples) -> bool:
    names = ("cloud_eye", "queues", "elastic_resource_pools")
    return all(source_up(samples, name) is not None for name in names)


def job_labels(job: SimJob) -> frozenset[tuple[str, str]]:
    return frozenset({("target", "prod"), ("job_id", str(job.job_id)), ("job_name", job.name)})


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def of_families(samples: Samples, names: tuple[str, ...]) -> Samples:
    return {key: value for key, value in samples.items() if key[0] in names}


# --- values ----------------------------------------------------------------------------------


async def test_every_cloud_eye_value_is_the_newest_datapoint_served_in_base_units(
    estate: Estate,
) -> None:
    async with exporter(target_of(estate)) as url:
        samples = await scrape_until(url, all_sources_polled)
    newest = newest_datapoint_ms(int(estate.now * 1000), estate.simulator.ces_lag_seconds)
    for job in estate.running:
        for metric in METRICS:
            served = cloud_eye_value(job, metric.ces_name, newest)
            assert served is not None, (job.name, metric.ces_name)
            expected = served * FACTORS.get(metric.ces_name, 1.0)
            published = samples[(metric.name, job_labels(job))]
            assert published == pytest.approx(expected, rel=1e-12), (job.name, metric.name)
    # Only running jobs are asked for: the stopped and the failed one have no runtime series.
    cloud_eye_names = {metric.name for metric in METRICS}
    for job in (estate.stopped, estate.failed):
        assert not [k for k in samples if k[0] in cloud_eye_names and job_labels(job) == k[1]]
    stalled, pressured = job_labels(estate.stalled), job_labels(estate.pressured)
    assert samples[("dli_job_read_records_per_second", stalled)] == 0.0
    assert samples[("dli_job_max_operator_backpressure_level", pressured)] == 100.0
    assert samples[("dli_job_max_operator_latency_seconds", pressured)] > 30
    lag = samples[("dli_cloud_eye_lag_seconds", frozenset({("target", "prod")}))]
    assert estate.now - newest / 1000 <= lag <= time.time() - newest / 1000
    assert source_up(samples, "cloud_eye") == 1.0


async def test_queue_and_pool_values_are_what_the_simulator_served(estate: Estate) -> None:
    async with exporter(target_of(estate)) as url:
        samples = await scrape_until(url, all_sources_polled)
    jobs = estate.simulator.jobs(PROJECT)
    queues = {q.queue_name: q.to_api(jobs) for q in estate.simulator.queues(PROJECT)}
    assert set(queues) == {"flink_prod", "sql_adhoc"}  # queue_type=all: the SQL one too
    assert queues["flink_prod"]["used_cu"] == 12.0  # three running jobs of 4 CUs
    for name, served in queues.items():
        labels = frozenset({("target", "prod"), ("queue_name", name)})
        assert samples[("dli_queue_compute_units", labels)] == served["cu_count"]
        assert samples[("dli_queue_used_compute_units", labels)] == served["used_cu"]
        limits = ("cu_scale_out_limit", "cu_scale_in_limit")
        for field, family in zip(limits, ("scale_out", "scale_in"), strict=True):
            assert samples[(f"dli_queue_{family}_limit_compute_units", labels)] == served[field]
        assert samples[("dli_queue_restarting", labels)] == float(served["is_restarting"])
    assert named(samples, "dli_queue_info") == {
        frozenset(
            {
                ("target", "prod"),
                ("queue_name", "flink_prod"),
                ("queue_type", "general"),
                ("resource_mode", "dedicated"),
                ("elastic_resource_pool", "pool_a"),
                ("charging_mode", "pay_per_use"),
            }
        ): 1.0,
        frozenset(
            {
                ("target", "prod"),
                ("queue_name", "sql_adhoc"),
                ("queue_type", "sql"),
                ("resource_mode", "dedicated"),
                ("elastic_resource_pool", ""),
                ("charging_mode", "pay_per_use"),
            }
        ): 1.0,
    }
    capacity = estate.simulator.capacity
    for pool in estate.simulator.pools(PROJECT):
        served = pool.to_api(capacity.hosted_queues(pool))
        labels = frozenset({("target", "prod"), ("elastic_resource_pool", pool.name)})
        for field, family in (
            ("max_cu", "max"),
            ("min_cu", "min"),
            ("actual_cu", "actual"),
            ("current_cu", "current"),
            ("prepay_cu", "prepaid"),
        ):
            name = f"dli_elastic_resource_pool_{family}_compute_units"
            assert samples[(name, labels)] == served[field], (pool.name, field)
        assert samples[("dli_elastic_resource_pool_failed", labels)] == float(
            bool(served["fail_reason"])
        )
        statuses = {
            dict(k)["status"]: v
            for k, v in named(samples, "dli_elastic_resource_pool_status").items()
            if ("elastic_resource_pool", pool.name) in k
        }
        assert statuses == {
            s: float(s == served["status"]) for s in ("AVAILABLE", "SCALING", "CREATING", "FAILED")
        }


async def test_job_settings_and_the_failure_reason_come_from_the_job_list(estate: Estate) -> None:
    async with exporter(target_of(estate)) as url:
        samples = await scrape_until(url, all_sources_polled)
    failed, healthy = job_labels(estate.failed), job_labels(estate.healthy)
    assert named(samples, "dli_job_failure_info") == {
        failed | {("reason", "TimeoutException")}: 1.0
    }
    assert samples[("dli_job_checkpoint_enabled", failed)] == 0.0
    assert samples[("dli_job_checkpoint_enabled", healthy)] == float(
        estate.healthy.checkpoint_enabled
    )
    assert samples[("dli_job_checkpoint_interval_seconds", healthy)] == float(
        estate.healthy.checkpoint_interval
    )
    assert samples[("dli_job_restart_on_exception_enabled", healthy)] == float(
        estate.healthy.restart_when_exception
    )
    assert samples[("dli_job_max_restarts_on_exception", failed)] == 5.0
    assert estate.healthy.resume_max_num == -1
    assert samples[("dli_job_max_restarts_on_exception", healthy)] == math.inf


# --- calls -------------------------------------------------------------------------------------


def calls_of(simulator: Simulator) -> Counter[str]:
    return Counter(record.operation for record in simulator.request_log)


async def test_a_poll_makes_the_fewest_calls_the_sources_need(estate: Estate) -> None:
    simulator = estate.simulator
    for index in range(40):  # 43 running jobs: 516 metric queries, two batches
        simulator.add_job(PROJECT, name=f"extra_{index}", flink_state="RUNNING")
    for index in range(148):  # 150 pools: two pages of 100
        simulator.add_pool(PROJECT, f"pool_{index:03}", max_cu=16, min_cu=0, current_cu=0)
    async with exporter(target_of(estate)) as url:
        await scrape_until(url, all_sources_polled)
    running = sum(1 for job in simulator.jobs(PROJECT) if job.status == "job_running")
    assert running == 43
    assert calls_of(simulator) == {
        LIST_JOBS: 1,
        EXECUTE_GRAPH: running,
        BATCH_QUERY_METRIC_DATA: math.ceil(running * len(METRICS) / 500),
        LIST_QUEUES: 1,
        LIST_ELASTIC_RESOURCE_POOLS: math.ceil(150 / 100),
    }


async def test_a_source_turned_off_is_not_called_and_has_no_series(estate: Estate) -> None:
    target = target_of(estate, sources=Sources(cloud_eye=False, queues=False))
    async with exporter(target) as url:
        samples = await scrape_until(
            url, lambda s: source_up(s, "elastic_resource_pools") is not None
        )
    assert set(calls_of(estate.simulator)) == {
        LIST_JOBS,
        EXECUTE_GRAPH,
        LIST_ELASTIC_RESOURCE_POOLS,
    }
    assert source_up(samples, "cloud_eye") is None
    assert source_up(samples, "queues") is None
    assert not [k for k in samples if k[0].startswith(("dli_queue_", "dli_job_read_"))]


async def test_a_new_job_is_covered_in_its_first_poll_and_a_deleted_one_vanishes_at_once(
    estate: Estate,
) -> None:
    async with exporter(target_of(estate, poll_interval=0.3, timeout=0.25)) as url:
        await scrape_until(url, all_sources_polled)
        newcomer = job_labels(estate.simulator.add_job(PROJECT, name="new", flink_state="RUNNING"))
        samples = await scrape_until(url, lambda s: has(s, "dli_job_info", newcomer))
        assert ("dli_job_read_records_per_second", newcomer) in samples  # the same poll
        estate.simulator.remove_job(PROJECT, estate.healthy.job_id)
        gone = job_labels(estate.healthy)
        samples = await scrape_until(url, lambda s: not has(s, "dli_job_info", gone))
    assert not [key for key in samples if gone <= key[1]]


def has(samples: Samples, name: str, labels: frozenset[tuple[str, str]]) -> bool:
    """True when a sample of ``name`` carries every one of ``labels``."""
    return any(sample == name and labels <= found for sample, found in samples)


# --- failures ----------------------------------------------------------------------------------


async def wait_for_failed_polls(url: str, code: str, polls: int) -> Samples:
    """Scrape once Cloud Eye has failed ``polls`` times with ``code``."""

    def failed_enough(samples: Samples) -> bool:
        counted = sum(
            value
            for (name, labels), value in samples.items()
            if name == "dli_api_requests_total"
            and ("operation", BATCH_QUERY_METRIC_DATA) in labels
            and ("code", code) in labels
        )
        return counted >= polls and source_up(samples, "cloud_eye") == 0.0

    return await scrape_until(url, failed_enough)


@pytest.mark.parametrize(
    ("fault", "code", "grant"),
    [
        (Fault(status=403, operation=BATCH_QUERY_METRIC_DATA), "403", "ces:metricData:list"),
        (Fault(delay=5.0, operation=BATCH_QUERY_METRIC_DATA), "timeout", None),
    ],
    ids=["forbidden", "timeout"],
)
async def test_a_failing_cloud_eye_changes_nothing_but_its_own_series(
    estate: Estate, caplog: pytest.LogCaptureFixture, fault: Fault, code: str, grant: str | None
) -> None:
    caplog.set_level(logging.INFO)
    async with exporter(target_of(estate, poll_interval=0.4, timeout=0.2)) as url:
        healthy = await scrape_until(url, all_sources_polled)
        assert source_up(healthy, "cloud_eye") == 1.0
        estate.simulator.set_fault(fault)
        failing = await wait_for_failed_polls(url, code, polls=3)
    assert failing[("dli_up", frozenset({("target", "prod")}))] == 1.0
    assert of_families(failing, JOB_FAMILIES) == of_families(healthy, JOB_FAMILIES)
    assert source_up(failing, "queues") == 1.0
    assert source_up(failing, "elastic_resource_pools") == 1.0
    source = frozenset({("target", "prod"), ("source", "cloud_eye")})
    last_success = ("dli_source_last_success_timestamp_seconds", source)
    assert failing[last_success] == healthy[last_success]
    logged = [
        record
        for record in caplog.records
        if record.getMessage() == "resource is failing"
        and getattr(record, "fields", {}).get("resource") == "cloud_eye"
    ]
    assert len(logged) == 1  # once per state change, not per poll
    fields = getattr(logged[0], "fields", {})
    if grant is None:
        assert "grant" not in fields
    else:
        assert grant in fields["grant"]


async def test_the_status_page_shows_each_failed_job_with_its_reason_and_the_sources(
    estate: Estate,
) -> None:
    estate.failed.name = "pay<ments>"
    estate.simulator.set_fault(Fault(status=403, operation=LIST_QUEUES))
    async with exporter(target_of(estate)) as url:
        await scrape_until(url, all_sources_polled)
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            page = await response.text()
    attention = page.split('<div id="attention">', 1)[1].split("<h2>", 1)[0]
    rows = {
        job.job_id: next(
            (line for line in attention.splitlines() if f'data-job-id="{job.job_id}"' in line), ""
        )
        for job in (estate.failed, estate.stalled, estate.pressured, estate.healthy)
    }
    row = rows[estate.failed.job_id]
    assert "pay&lt;ments&gt;" in row and "<ments>" not in row
    assert "job_running_exception: TimeoutException" in row
    assert "Caused by: org.apache.kafka.common.errors.TimeoutException: Topic orders" in row
    assert "reads 0 records/s (Cloud Eye)" in rows[estate.stalled.job_id]
    assert "backpressure level 100 (high)" in rows[estate.pressured.job_id]
    assert not rows[estate.healthy.job_id]  # only jobs that need attention are listed
    assert "source queues down: list_queues" in attention  # the target's own problem
    assert "cloud_eye up; queues down: list_queues" in page
    assert SECRET_KEY not in page


async def test_a_failing_source_keeps_its_last_values_three_intervals_then_drops_them(
    estate: Estate,
) -> None:
    read_rate = ("dli_job_read_records_per_second", job_labels(estate.healthy))
    queue = (
        "dli_queue_compute_units",
        frozenset({("target", "prod"), ("queue_name", "flink_prod")}),
    )
    async with exporter(target_of(estate, poll_interval=0.5, timeout=0.2)) as url:
        good = await scrape_until(url, all_sources_polled)
        estate.simulator.set_fault(Fault(status=503, operation=BATCH_QUERY_METRIC_DATA))
        failing = await scrape_until(url, lambda s: source_up(s, "cloud_eye") == 0.0)
        assert failing[read_rate] == good[read_rate]  # the last good value, while recent
        dropped = await scrape_until(url, lambda s: read_rate not in s)
    assert source_up(dropped, "cloud_eye") == 0.0
    assert dropped[queue] == good[queue]  # the other sources and the jobs are untouched
    assert of_families(dropped, JOB_FAMILIES) == of_families(good, JOB_FAMILIES)


def batch_calls(samples: Samples) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "dli_api_requests_total" and ("operation", BATCH_QUERY_METRIC_DATA) in labels
    )


async def test_later_polls_ask_only_for_newer_points_and_keep_publishing_the_newest(
    estate: Estate,
) -> None:
    cloud_eye = estate.simulator.cloud_eye
    async with exporter(target_of(estate, poll_interval=0.3, timeout=0.25)) as url:
        first = await scrape_until(url, lambda s: batch_calls(s) >= 1)
        served_first = cloud_eye.datapoints_served
        later = await scrape_until(url, lambda s: batch_calls(s) >= batch_calls(first) + 3)
    series = len(estate.running) * len(METRICS)
    assert served_first >= 4 * series  # the first read covers max_age: 4-5 points a series
    # The simulator's clock stands still, so no point is newer than the first read's: the
    # later reads ask from just after them and get none, and the newest stay published.
    assert cloud_eye.datapoints_served == served_first
    for metric in METRICS:
        for job in estate.running:
            key = (metric.name, job_labels(job))
            assert later[key] == first[key]


async def test_a_newer_point_replaces_the_one_read_before(estate: Estate) -> None:
    simulator = estate.simulator
    simulator.ces_lag_seconds = 180.0  # Cloud Eye two minutes further behind at first
    now_ms = int(estate.now * 1000)
    total = ("dli_job_read_records_total", job_labels(estate.healthy))
    async with exporter(target_of(estate, poll_interval=0.3, timeout=0.25)) as url:
        before = await scrape_until(url, all_sources_polled)
        old = newest_datapoint_ms(now_ms, 180.0)
        assert before[total] == cloud_eye_value(estate.healthy, "flink_read_records_total", old)
        simulator.ces_lag_seconds = 60.0  # two newer points arrive
        new = newest_datapoint_ms(now_ms, 60.0)
        expected = cloud_eye_value(estate.healthy, "flink_read_records_total", new)
        assert new > old and expected != before[total]
        after = await scrape_until(url, lambda s: s.get(total) == expected)
    for metric in METRICS:
        served = cloud_eye_value(estate.pressured, metric.ces_name, new)
        assert served is not None
        published = after[(metric.name, job_labels(estate.pressured))]
        assert published == pytest.approx(served * FACTORS.get(metric.ces_name, 1.0), rel=1e-12)
