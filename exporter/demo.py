"""`--demo`: the built-in DLI simulator on loopback, and a config that polls it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from exporter.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE_LIMIT,
    AkSkAuth,
    Config,
    Filters,
    TargetConfig,
)
from exporter.secret import Secret
from exporter.simulator import Simulator, serve

#: (target name, region, project id, jobs): two projects, so the multi-target views show.
DEMO_PROJECTS = (
    ("demo-beijing4", "cn-north-4", "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", 30),
    ("demo-shanghai1", "cn-east-3", "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b", 12),
)


@asynccontextmanager
async def demo_config(*, poll_interval: float = 5.0, seed: int = 7) -> AsyncIterator[Config]:
    """Start the simulator with a few dozen jobs and yield a config that polls it.

    The simulator accepts a throwaway AK/SK pair made up for this run only.
    """
    access_key = "DEMO" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    simulator = Simulator(credentials={access_key: secret_key}, seed=seed)
    for _name, _region, project_id, jobs in DEMO_PROJECTS:
        simulator.add_project(project_id)
        simulator.populate(project_id, jobs)
    async with serve(simulator) as base_url:
        yield Config(
            targets=tuple(
                TargetConfig(
                    name=name,
                    region=region,
                    project_id=project_id,
                    endpoint=base_url,
                    auth=AkSkAuth(access_key, Secret(secret_key)),
                    poll_interval=poll_interval,
                    timeout=min(5.0, poll_interval / 2),
                    concurrency=DEFAULT_CONCURRENCY,
                    rate_limit=DEFAULT_RATE_LIMIT,
                    filters=Filters(),
                )
                for name, region, project_id, _jobs in DEMO_PROJECTS
            ),
            source="<demo>",
        )
