"""`--demo`: the built-in DLI simulator on loopback, and a config that polls it.

Two scenarios: ``lifecycle`` (the default) populates two projects with a few dozen jobs that
move through realistic lifecycles; ``incident`` is a small, scripted project for trying the
alerts end to end: one healthy job, one that fails a few seconds in, one in a restart loop, one
running but stalled (no records), one under high backpressure, all on a saturated queue in an
elastic resource pool at its maximum size.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

from exporter.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE_LIMIT,
    AkSkAuth,
    Config,
    Filters,
    TargetConfig,
)
from exporter.secret import Secret
from exporter.simulator import SimJob, Simulator, serve

#: (target name, region, project id, jobs): two projects, so the multi-target views show.
DEMO_PROJECTS: Final = (
    ("demo-beijing4", "cn-north-4", "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", 30),
    ("demo-shanghai1", "cn-east-3", "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b", 12),
)
INCIDENT_PROJECT: Final = ("demo-incident", "cn-north-4", "1c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f")
SCENARIOS: Final = ("lifecycle", "incident")
#: Seconds after start at which the incident scenario's failing job fails.
INCIDENT_FAILS_AFTER: Final = 3.0
#: Seconds between two restarts of the incident scenario's restart-loop job.
INCIDENT_RESTART_EVERY: Final = 2.0
#: The incident scenario's queue (every job runs on it) and the pool hosting it.
INCIDENT_QUEUE: Final = "flink_prod"
INCIDENT_QUEUE_CU: Final = 16
INCIDENT_POOL: Final = "pool_prod"
INCIDENT_POOL_CU: Final = 64
#: The maximum operator latency (ms) Cloud Eye reports for the backpressured job.
INCIDENT_BACKPRESSURE_LATENCY_MS: Final = 45_000.0


@asynccontextmanager
async def demo_config(
    *, scenario: str = "lifecycle", poll_interval: float | None = None, seed: int = 7
) -> AsyncIterator[Config]:
    """Start the simulator for ``scenario`` and yield a config that polls it.

    The simulator accepts a throwaway AK/SK pair made up for this run only.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown demo scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    access_key = "DEMO" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    credentials = {access_key: secret_key}
    projects: tuple[tuple[str, str, str], ...]
    if scenario == "incident":
        simulator = Simulator(credentials=credentials, seed=seed, lifecycle=False)
        projects = (INCIDENT_PROJECT,)
        script = _incident(simulator)
        interval = poll_interval or 1.0
    else:
        simulator = Simulator(credentials=credentials, seed=seed)
        projects = tuple(p[:3] for p in DEMO_PROJECTS)
        for _name, _region, project_id, jobs in DEMO_PROJECTS:
            simulator.add_project(project_id)
            simulator.populate(project_id, jobs)
        script = None
        interval = poll_interval or 5.0
    auth = AkSkAuth(access_key, Secret(secret_key))
    async with serve(simulator) as base_url, _running(script):
        yield Config(
            targets=tuple(
                _target(name, region, project_id, endpoint=base_url, auth=auth, interval=interval)
                for name, region, project_id in projects
            ),
            source="<demo>",
        )


def _target(
    name: str, region: str, project_id: str, *, endpoint: str, auth: AkSkAuth, interval: float
) -> TargetConfig:
    return TargetConfig(
        name=name,
        region=region,
        project_id=project_id,
        endpoint=endpoint,
        ces_endpoint=endpoint,
        auth=auth,
        poll_interval=interval,
        timeout=min(5.0, interval * 0.8),
        concurrency=DEFAULT_CONCURRENCY,
        rate_limit=DEFAULT_RATE_LIMIT,
        filters=Filters(),
    )


def _incident(simulator: Simulator) -> Callable[[], None]:
    """Create the incident scenario's jobs; returns the step that scripts them in the background."""
    project_id = INCIDENT_PROJECT[2]
    simulator.add_project(project_id)
    base = {"job_type": "flink_opensource_sql_job", "queue_name": INCIDENT_QUEUE, "cu_number": 4}
    simulator.add_job(project_id, name="orders_enrich", flink_state="RUNNING", **base)
    failing = simulator.add_job(project_id, name="payments_dedup", flink_state="RUNNING", **base)
    looping = simulator.add_job(
        project_id, name="clickstream_sink", flink_state="RUNNING", restart_times=0, **base
    )
    simulator.add_job(project_id, name="inventory_backfill", status="job_cancel_success", **base)
    stalled = simulator.add_job(project_id, name="fraud_scoring", stalled=True, **base)
    stalled.stalled_since_ms = stalled.start_time_ms + 30 * 60_000  # stalled 20 minutes ago
    simulator.add_job(
        project_id,
        name="sessionize",
        backpressure_level=100,
        max_op_latency_ms=INCIDENT_BACKPRESSURE_LATENCY_MS,
        **base,
    )
    # Five running jobs of 4 CUs on a 16-CU queue: saturated (used_cu is capped at 16).
    simulator.add_queue(
        project_id,
        INCIDENT_QUEUE,
        cu_count=INCIDENT_QUEUE_CU,
        elastic_resource_pool_name=INCIDENT_POOL,
        description="Production Flink queue",
    )
    simulator.add_pool(
        project_id,
        INCIDENT_POOL,
        max_cu=INCIDENT_POOL_CU,
        min_cu=16,
        current_cu=INCIDENT_POOL_CU,
        queues=(INCIDENT_QUEUE,),
    )
    loop = asyncio.get_running_loop()
    started = loop.time()

    def step() -> None:
        elapsed = loop.time() - started
        if elapsed >= INCIDENT_FAILS_AFTER and failing.status == "job_running":
            _fail(failing)
        restarts = int(elapsed // INCIDENT_RESTART_EVERY)
        if restarts > looping.restart_times:
            looping.restart_times = restarts
            looping.flink_state = "RESTARTING"
        else:
            looping.flink_state = "RUNNING"

    return step


def _fail(job: SimJob) -> None:
    job.status = "job_running_exception"
    job.flink_state = "FAILED"
    job.status_desc = "org.apache.flink.runtime.JobException: Recovery is suppressed"


@asynccontextmanager
async def _running(step: Callable[[], None] | None) -> AsyncIterator[None]:
    """Run ``step`` twice a second in the background while the context is open."""
    if step is None:
        yield
        return

    async def tick() -> None:
        while True:
            step()
            await asyncio.sleep(0.5)

    task = asyncio.create_task(tick(), name="demo scenario")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
