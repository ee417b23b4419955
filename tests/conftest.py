"""Shared fixtures: a DLI simulator on a real loopback socket, and target configs pointing at it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from exporter.auth import AkSkCredentials
from exporter.client import DliClient, RetryPolicy
from exporter.config import AkSkAuth, Filters, TargetConfig
from exporter.secret import Secret
from exporter.simulator import Simulator, serve

# The exporter honours HTTP(S)_PROXY; loopback test servers must never be sent through one.
os.environ["NO_PROXY"] = ",".join(
    filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])
)

ACCESS_KEY = "TESTAKEXAMPLE0000001"
SECRET_KEY = "test-sk-do-not-log-9f8e7d6c5b4a"
PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"


def make_target(
    name: str, endpoint: str, project_id: str = PROJECT, **overrides: object
) -> TargetConfig:
    """A target polling the simulator with the test credentials."""
    target = TargetConfig(
        name=name,
        region="cn-north-4",
        project_id=project_id,
        endpoint=endpoint,
        auth=AkSkAuth(ACCESS_KEY, Secret(SECRET_KEY)),
        poll_interval=60.0,
        timeout=5.0,
        concurrency=4,
        rate_limit=20.0,
        filters=Filters(),
    )
    return replace(target, **overrides)  # type: ignore[arg-type]


#: Retries as in production, without the production-sized waits.
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)


def make_client(
    session: aiohttp.ClientSession, target: TargetConfig, **kwargs: object
) -> DliClient:
    """A client for ``target`` signing with the test credentials, retrying quickly."""
    kwargs.setdefault("retry", FAST_RETRY)
    return DliClient(
        session,
        endpoint=target.endpoint,
        project_id=target.project_id,
        credentials=AkSkCredentials(ACCESS_KEY, Secret(SECRET_KEY)),
        timeout=target.timeout,
        filters=target.filters,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def simulator() -> Simulator:
    """A simulator with two projects, no jobs and lifecycles off (tests set states exactly)."""
    sim = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, seed=1, lifecycle=False)
    sim.add_project(PROJECT)
    sim.add_project(OTHER_PROJECT)
    return sim


@pytest.fixture
async def sim_url(simulator: Simulator) -> AsyncIterator[str]:
    """The simulator's base URL, served on 127.0.0.1 with an ephemeral port."""
    async with serve(simulator) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def promtool_path() -> str:
    """promtool's path, or skip with how to get it (CI installs it through the Makefile)."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not found: install Debian's 'prometheus' package (make tools)")
    return path
