"""Shared fixtures: a DLI simulator on a real loopback socket, and target configs pointing at it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
import pytest

from exporter.auth import AkSkCredentials, Credentials
from exporter.config import AkSkAuth, Filters, TargetConfig
from exporter.dli.jobs import JobsApi, JobsSource
from exporter.dli.transport import RetryPolicy, Transport
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
    """A target polling the simulator (DLI and Cloud Eye) with the test credentials."""
    target = TargetConfig(
        name=name,
        region="cn-north-4",
        project_id=project_id,
        endpoint=endpoint,
        ces_endpoint=endpoint,
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


def make_api(
    session: aiohttp.ClientSession,
    *,
    endpoint: str,
    project_id: str,
    credentials: Credentials,
    timeout: float,
    filters: Filters | None = None,
    page_concurrency: int = 4,
    **transport: object,
) -> JobsApi:
    """The job calls of one project over a `Transport` made with ``transport``'s options."""
    return JobsApi(
        Transport(
            session,
            endpoint=endpoint,
            credentials=credentials,
            timeout=timeout,
            **transport,  # type: ignore[arg-type]
        ),
        project_id=project_id,
        filters=filters,
        page_concurrency=page_concurrency,
    )


def make_client(session: aiohttp.ClientSession, target: TargetConfig, **kwargs: object) -> JobsApi:
    """The job calls for ``target``, signing with the test credentials, retrying quickly."""
    kwargs.setdefault("retry", FAST_RETRY)
    return make_api(
        session,
        endpoint=target.endpoint,
        project_id=target.project_id,
        credentials=AkSkCredentials(ACCESS_KEY, Secret(SECRET_KEY)),
        timeout=target.timeout,
        filters=target.filters,
        **kwargs,
    )


def jobs_of(
    client: JobsApi, target: TargetConfig, on_internal_error: Callable[[], None] | None = None
) -> JobsSource:
    """The job resource of ``target``, polled through ``client``."""
    return JobsSource(
        client,
        target=target.name,
        concurrency=target.concurrency,
        on_internal_error=on_internal_error,
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
