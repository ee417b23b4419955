"""A target without ``project_id``: its project looked up in IAM (Keystone) over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.auth import AkSkCredentials, Credentials, RequestObserver
from exporter.config import Config, TargetConfig
from exporter.dli.api import LIST_JOBS, LIST_PROJECTS
from exporter.exposition import SnapshotStore
from exporter.secret import Secret
from exporter.simulator import Fault, Simulator
from exporter.snapshot import Snapshot
from exporter.supervisor import Supervisor
from exporter.telemetry import ApiMetrics
from tests.conftest import ACCESS_KEY, OTHER_PROJECT, PROJECT, SECRET_KEY, make_target

INTERVAL = 0.3


def credentials(
    target: TargetConfig, session: aiohttp.ClientSession, observe: RequestObserver | None
) -> Credentials:
    return AkSkCredentials(ACCESS_KEY, Secret(SECRET_KEY))


class Running:
    """A supervisor polling the simulator; every published snapshot is queued by target."""

    def __init__(self, session: aiohttp.ClientSession, *targets: TargetConfig) -> None:
        self.registry = CollectorRegistry()
        self.published: dict[str, asyncio.Queue[Snapshot]] = {
            t.name: asyncio.Queue() for t in targets
        }
        self.supervisor = Supervisor(
            store=SnapshotStore([t.name for t in targets]),
            api_metrics=ApiMetrics(self.registry),
            credentials=credentials,
            on_change=lambda: None,
            on_publish=lambda s: self.published[s.target].put_nowait(s),
            resources=(),
        )
        self.supervisor.start(session, config(*targets))

    async def next(self, target: str) -> Snapshot:
        return await asyncio.wait_for(self.published[target].get(), timeout=5)

    def requests(self, operation: str) -> float:
        text = generate_latest(self.registry).decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("dli_api_requests_total{") and f'operation="{operation}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


def config(*targets: TargetConfig) -> Config:
    return Config(targets=targets, source="test")


def lookup_target(name: str, sim_url: str, **overrides: object) -> TargetConfig:
    """A target with no project id, looking it up at the simulator's IAM."""
    target = make_target(name, sim_url, poll_interval=INTERVAL, iam_endpoint=sim_url)
    return replace(target, project_id=None, **overrides)  # type: ignore[arg-type]


def lookups(simulator: Simulator) -> list[dict[str, str]]:
    return [r.query for r in simulator.request_log if r.operation == LIST_PROJECTS]


def projects_body(*ids: str) -> bytes:
    return json.dumps({"projects": [{"id": i, "name": "cn-north-4"} for i in ids]}).encode()


async def test_a_target_without_project_id_looks_it_up_once_then_polls(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    job = simulator.add_job(PROJECT, status="job_running", flink_state="RUNNING")
    simulator.add_job(OTHER_PROJECT, status="job_running")  # project "cn-north-4_<id>"
    running = Running(session, lookup_target("auto", sim_url))
    try:
        for _ in range(3):
            snapshot = await running.next("auto")
            assert snapshot.up, snapshot.last_error
            assert [state.job.job_id for state in snapshot.jobs] == [job.job_id]
    finally:
        await running.supervisor.stop()
    assert lookups(simulator) == [{"name": "cn-north-4"}]
    assert running.requests(LIST_PROJECTS) == 1
    assert running.requests(LIST_JOBS) >= 3
    record = next(r for r in simulator.request_log if r.operation == LIST_PROJECTS)
    assert record.access_key == ACCESS_KEY and record.status == 200  # signed and verified


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (None, "no IAM project is named 'eu-west-101' in this account"),
        (Fault(200, body=projects_body("a1", "b2"), operation=LIST_PROJECTS), "2 IAM projects"),
    ],
    ids=["none", "two"],
)
async def test_no_single_project_makes_only_that_target_down(
    simulator: Simulator,
    sim_url: str,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    fault: Fault | None,
    message: str,
) -> None:
    if fault is None:
        target = lookup_target("auto", sim_url, region="eu-west-101")
    else:
        simulator.set_fault(fault)
        target = lookup_target("auto", sim_url)
    other = make_target("fixed", sim_url, poll_interval=INTERVAL)
    running = Running(session, target, other)
    caplog.set_level(logging.INFO, logger="exporter.poller")
    try:
        for _ in range(3):
            down = await running.next("auto")
            assert not down.up and down.polled
            assert down.last_error is not None and message in down.last_error
            assert "list_projects failed" in down.last_error
            assert (await running.next("fixed")).up
    finally:
        await running.supervisor.stop()
    assert len(lookups(simulator)) == 3  # retried on every poll
    downs = [r for r in caplog.records if r.getMessage() == "target is down"]
    assert len(downs) == 1  # logged once, not every poll
    assert not any(r.path.startswith("/v1.0/a1") for r in simulator.request_log)


async def test_a_failed_lookup_is_retried_on_the_next_poll(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.inject_fault(Fault(403, operation=LIST_PROJECTS))
    running = Running(session, lookup_target("auto", sim_url))
    try:
        first = await running.next("auto")
        assert not first.up and first.last_error is not None
        assert "list_projects failed code=403" in first.last_error
        assert (await running.next("auto")).up
        assert (await running.next("auto")).up
    finally:
        await running.supervisor.stop()
    assert len(lookups(simulator)) == 2
    assert running.requests(LIST_PROJECTS) == 2


async def test_a_reload_keeps_the_found_id_unless_the_lookup_would_change(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    target = lookup_target("auto", sim_url)
    running = Running(session, target)
    try:
        assert (await running.next("auto")).up
        running.supervisor.apply(config(target))  # unchanged: same poller
        running.supervisor.apply(config(replace(target, poll_interval=INTERVAL * 2)))
        assert (await running.next("auto")).up
        assert len(lookups(simulator)) == 1
        simulator.add_project("0" * 32, name="eu-west-101")
        running.supervisor.apply(config(replace(target, region="eu-west-101")))
        assert (await running.next("auto")).up
    finally:
        await running.supervisor.stop()
    assert [q["name"] for q in lookups(simulator)] == ["cn-north-4", "eu-west-101"]
