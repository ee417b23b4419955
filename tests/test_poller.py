"""Poller + simulator over real HTTP + collector: what a poll publishes, and failure semantics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.auth import AkSkCredentials
from exporter.collector import render
from exporter.config import TargetConfig
from exporter.exposition import SnapshotStore
from exporter.poller import STALE_AFTER_INTERVALS, Poller
from exporter.secret import Secret
from exporter.simulator import Fault, Simulator, serve
from exporter.snapshot import Snapshot
from tests.conftest import (
    ACCESS_KEY,
    FAST_RETRY,
    OTHER_PROJECT,
    PROJECT,
    SECRET_KEY,
    jobs_of,
    make_api,
    make_client,
    make_target,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(store: SnapshotStore) -> Samples:
    """Every sample of the rendered exposition, keyed by name and label set."""
    text = render(store.snapshots()).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def job_ids(found: Samples, target: str) -> set[str]:
    return {
        dict(labels)["job_id"]
        for name, labels in found
        if name == "dli_job_info" and dict(labels)["target"] == target
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    matches = [
        v for (n, ls), v in found.items() if n == name and labels.items() <= dict(ls).items()
    ]
    assert len(matches) <= 1, f"{name}{labels} is ambiguous"
    return matches[0] if matches else None


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_poller(
    session: aiohttp.ClientSession, target: TargetConfig, store: SnapshotStore, **kwargs: object
) -> Poller:
    jobs = jobs_of(make_client(session, target), target)
    return Poller(target, jobs, store.publish, **kwargs)  # type: ignore[arg-type]


async def test_a_job_listed_twice_gives_one_series(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    """De-duplication is the client's: the same job id twice in a listing is one job."""
    twice = {
        "is_success": True,
        "job_list": {
            "total_count": 2,
            "jobs": [
                {"job_id": 7, "name": "first", "restart_times": 1},
                {"job_id": 7, "name": "second", "restart_times": 2},
            ],
        },
    }
    simulator.inject_fault(Fault(200, body=json.dumps(twice).encode(), operation="list_jobs"))
    store = SnapshotStore(["t"])

    await make_poller(session, make_target("t", sim_url), store).poll_once()

    found = samples(store)
    restarts = {
        labels: v for (name, labels), v in found.items() if name == "dli_job_restarts_total"
    }
    assert restarts == {frozenset({("target", "t"), ("job_id", "7"), ("job_name", "first")}): 1.0}
    assert value(found, "dli_target_jobs") == 1.0


async def test_a_poll_publishes_every_job_with_its_flink_state(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    running = simulator.add_job(PROJECT, status="job_running", flink_state="RUNNING")
    failed = simulator.add_job(PROJECT, status="job_running_exception", restart_times=4)
    store = SnapshotStore(["prod"])

    snapshot = await make_poller(session, make_target("prod", sim_url), store).poll_once()

    assert snapshot.up and snapshot.polled
    found = samples(store)
    assert job_ids(found, "prod") == {str(running.job_id), str(failed.job_id)}
    running_id, failed_id = str(running.job_id), str(failed.job_id)
    assert value(found, "dli_job_flink_state", job_id=running_id, state="RUNNING") == 1
    assert value(found, "dli_job_status", job_id=failed_id, status="job_running_exception") == 1
    assert value(found, "dli_job_status", job_id=failed_id, status="job_running") == 0
    assert value(found, "dli_job_restarts_total", job_id=failed_id) == 4
    assert value(found, "dli_job_flink_state", job_id=failed_id, state="RUNNING") is None
    assert value(found, "dli_up", target="prod") == 1


async def test_execute_graph_is_called_for_running_jobs_only(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    running = [simulator.add_job(PROJECT, status="job_running") for _ in range(5)]
    for status in ("job_submitting", "job_cancel_success", "job_submit_fail", "job_finish"):
        simulator.add_job(PROJECT, status=status)
    store = SnapshotStore(["prod"])

    await make_poller(session, make_target("prod", sim_url, concurrency=2), store).poll_once()

    graph_paths = sorted(r.path for r in simulator.request_log if r.operation == "execute_graph")
    assert graph_paths == sorted(
        f"/v1.0/{PROJECT}/streaming/jobs/{job.job_id}/execute-graph" for job in running
    )
    assert all(r.status == 200 for r in simulator.request_log)


async def test_a_job_deleted_between_polls_disappears(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    kept = simulator.add_job(PROJECT, status="job_running")
    deleted = simulator.add_job(PROJECT, status="job_running")
    store = SnapshotStore(["prod"])
    poller = make_poller(session, make_target("prod", sim_url), store)
    await poller.poll_once()
    assert job_ids(samples(store), "prod") == {str(kept.job_id), str(deleted.job_id)}

    simulator.remove_job(PROJECT, deleted.job_id)
    await poller.poll_once()

    found = samples(store)
    assert job_ids(found, "prod") == {str(kept.job_id)}
    assert not [key for key in found if ("job_id", str(deleted.job_id)) in key[1]]


async def test_an_execute_graph_failure_drops_only_that_jobs_flink_series(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    jobs = [simulator.add_job(PROJECT, status="job_running") for _ in range(3)]
    simulator.inject_fault(Fault(status=404, operation="execute_graph"))
    store = SnapshotStore(["prod"])

    snapshot = await make_poller(
        session, make_target("prod", sim_url, concurrency=1), store
    ).poll_once()

    assert snapshot.up
    found = samples(store)
    assert job_ids(found, "prod") == {str(job.job_id) for job in jobs}
    with_state = {dict(labels)["job_id"] for name, labels in found if name == "dli_job_flink_state"}
    assert len(with_state) == 2


@pytest.fixture
async def other_simulator() -> AsyncIterator[tuple[Simulator, str]]:
    sim = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, seed=2, lifecycle=False)
    sim.add_project(OTHER_PROJECT)
    async with serve(sim) as url:
        yield sim, url


async def test_a_failing_target_keeps_the_other_targets_series(
    simulator: Simulator,
    sim_url: str,
    other_simulator: tuple[Simulator, str],
    session: aiohttp.ClientSession,
) -> None:
    other, other_url = other_simulator
    healthy_job = simulator.add_job(PROJECT, status="job_running")
    failing_job = other.add_job(OTHER_PROJECT, status="job_running")
    clock = FakeClock()
    store = SnapshotStore(["healthy", "failing"])
    healthy = make_poller(session, make_target("healthy", sim_url), store, clock=clock)
    failing_target = make_target("failing", other_url, project_id=OTHER_PROJECT)
    failing = make_poller(session, failing_target, store, clock=clock)
    await healthy.poll_once()
    await failing.poll_once()
    before = samples(store)

    other.inject_fault(Fault(status=503, operation="list_jobs"), times=FAST_RETRY.max_attempts)
    clock.now += 60
    snapshot = await failing.poll_once()

    after = samples(store)
    assert not snapshot.up
    assert "list_jobs failed code=503" in (snapshot.last_error or "")
    assert value(after, "dli_up", target="failing") == 0
    assert value(after, "dli_up", target="healthy") == 1
    healthy_before = {k: v for k, v in before.items() if ("target", "healthy") in k[1]}
    healthy_after = {k: v for k, v in after.items() if ("target", "healthy") in k[1]}
    assert healthy_after == healthy_before
    # The failed target's last good jobs stay, with the time they were last seen.
    assert job_ids(after, "failing") == {str(failing_job.job_id)}
    assert job_ids(after, "healthy") == {str(healthy_job.job_id)}
    assert value(after, "dli_last_poll_success_timestamp_seconds", target="failing") == (
        clock.now - 60
    )


async def test_a_failed_targets_jobs_are_dropped_once_stale(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.add_job(PROJECT, status="job_running")
    clock = FakeClock()
    store = SnapshotStore(["prod"])
    target = make_target("prod", sim_url, poll_interval=30.0)
    poller = make_poller(session, target, store, clock=clock)
    await poller.poll_once()

    simulator.inject_fault(
        Fault(status=500, operation="list_jobs"), times=2 * FAST_RETRY.max_attempts
    )
    clock.now += STALE_AFTER_INTERVALS * 30 - 1
    assert len((await poller.poll_once()).jobs) == 1
    clock.now += 2
    snapshot = await poller.poll_once()

    assert snapshot.jobs == ()
    assert job_ids(samples(store), "prod") == set()
    assert value(samples(store), "dli_up", target="prod") == 0


async def test_a_target_that_never_answered_has_no_jobs_and_is_down(
    sim_url: str, session: aiohttp.ClientSession
) -> None:
    store = SnapshotStore(["nowhere"])
    target = make_target("nowhere", sim_url, project_id="no-such-project")

    snapshot = await make_poller(session, target, store).poll_once()

    assert snapshot.polled and not snapshot.up and snapshot.jobs == ()
    assert snapshot.last_error is not None and "code=404" in snapshot.last_error
    assert value(samples(store), "dli_up", target="nowhere") == 0
    assert value(samples(store), "dli_last_poll_success_timestamp_seconds") is None


class CountingCredentials:
    """The test credentials, counting (with `observe`) how many list calls are in flight."""

    def __init__(self) -> None:
        self._inner = AkSkCredentials(ACCESS_KEY, Secret(SECRET_KEY))
        self.in_flight = 0
        self.most_in_flight = 0

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        if "execute-graph" not in url:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return await self._inner.authorize(method, url, headers, body)

    async def refresh(self) -> bool:
        return False

    def observe(self, operation: str, _code: str, _seconds: float) -> None:
        if operation == "list_jobs":
            self.in_flight -= 1


async def test_the_loop_polls_at_start_and_never_overlaps_polls(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    simulator.add_job(PROJECT, status="job_running")
    simulator.latency = 0.01
    target = make_target("prod", sim_url, poll_interval=0.2)
    counting = CountingCredentials()
    client = make_api(
        session,
        endpoint=sim_url,
        project_id=PROJECT,
        credentials=counting,
        timeout=5.0,
        observe=counting.observe,
    )
    published: list[Snapshot] = []
    enough = asyncio.Event()

    def publish(snapshot: Snapshot) -> None:
        published.append(snapshot)
        if len(published) == 4:
            enough.set()

    task = asyncio.create_task(Poller(target, jobs_of(client, target), publish).run())
    async with asyncio.timeout(10):
        await enough.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert all(snapshot.up for snapshot in published), [s.last_error for s in published]
    assert counting.most_in_flight == 1
    lists = [r for r in simulator.request_log if r.operation == "list_jobs"]
    assert len(lists) in (4, 5)  # the fifth may have been in flight when cancelled


async def test_execute_graph_calls_past_the_poll_deadline_are_abandoned(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    jobs = [simulator.add_job(PROJECT, status="job_running") for _ in range(3)]
    # The first execute-graph answers only after the poll's deadline (0.9 s of a 1 s interval);
    # without the deadline it would be retried and the poll would publish all three states.
    simulator.inject_fault(Fault(status=500, delay=1.5, operation="execute_graph"))
    target = make_target("prod", sim_url, poll_interval=1.0, timeout=0.95, concurrency=3)
    seen: list[tuple[str, str]] = []
    client = make_client(session, target, observe=lambda op, code, _s: seen.append((op, code)))
    store = SnapshotStore(["prod"])

    snapshot = await Poller(target, jobs_of(client, target), store.publish).poll_once()

    assert snapshot.up
    assert {state.job.job_id for state in snapshot.jobs} == {job.job_id for job in jobs}
    assert sum(1 for state in snapshot.jobs if state.graph is None) == 1
    assert ("execute_graph", "timeout") in seen


async def test_cancelling_a_poll_cancels_its_execute_graph_calls(
    simulator: Simulator, sim_url: str, session: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        simulator.add_job(PROJECT, status="job_running")
    target = make_target("prod", sim_url, concurrency=3)
    listed = asyncio.Event()
    seen: list[tuple[str, str]] = []

    def observe(operation: str, code: str, _seconds: float) -> None:
        seen.append((operation, code))
        if operation == "list_jobs":
            simulator.latency = 2.0  # every execute-graph call will still be in flight
            listed.set()

    client = make_client(session, target, observe=observe)
    poll = asyncio.create_task(
        Poller(target, jobs_of(client, target), SnapshotStore(["prod"]).publish).poll_once()
    )
    await listed.wait()
    await asyncio.sleep(0.1)  # let the poll start its execute-graph calls

    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll

    # Every call the poll started has ended with it (abandoned calls count as timeouts).
    assert seen == [("list_jobs", "200")] + [("execute_graph", "timeout")] * 3


class BrokenCredentials:
    """Credentials with a bug: they raise (not a DliApiError) for the requests chosen."""

    def __init__(self, breaks: Callable[[str], bool]) -> None:
        self._inner = AkSkCredentials(ACCESS_KEY, Secret(SECRET_KEY))
        self.breaks = breaks

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        if self.breaks(url):
            raise RuntimeError("a bug in a credential provider")
        return await self._inner.authorize(method, url, headers, body)

    async def refresh(self) -> bool:
        return False


async def test_no_exception_ends_the_poll_loop(
    simulator: Simulator,
    sim_url: str,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in a poll (listing or one execute-graph call) is logged with its traceback,
    counted and published as a failed poll; the loop goes on."""
    running = simulator.add_job(PROJECT, status="job_running", flink_state="RUNNING")
    target = make_target("prod", sim_url, poll_interval=0.05, timeout=0.04)
    credentials = BrokenCredentials(lambda url: "execute-graph" in url)
    client = make_api(
        session,
        endpoint=sim_url,
        project_id=PROJECT,
        credentials=credentials,
        timeout=1.0,
        retry=FAST_RETRY,
    )
    published: list[Snapshot] = []
    errors: list[None] = []
    poller = Poller(
        target,
        jobs_of(client, target, on_internal_error=lambda: errors.append(None)),
        published.append,
        on_internal_error=lambda: errors.append(None),
    )
    task = asyncio.create_task(poller.run())
    try:
        async with asyncio.timeout(10):
            while not published:
                await asyncio.sleep(0.01)
            # One execute-graph call broke: the job is published without its Flink state.
            assert published[0].up
            assert [s.graph for s in published[0].jobs] == [None]
            assert published[0].jobs[0].job.job_id == running.job_id
            credentials.breaks = lambda _url: True  # now the listing breaks too
            while published[-1].up:
                await asyncio.sleep(0.01)
            failed = published[-1]
            assert failed.last_error == "internal error: RuntimeError"
            credentials.breaks = lambda _url: False  # the bug goes away: the loop is alive
            while not (published[-1].up and published[-1].jobs[0].graph is not None):
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert not task.done() or task.cancelled()
    assert len(errors) >= 2
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records)
