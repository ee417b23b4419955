"""``auth.type: metadata``: temporary AK/SK from the simulator's ECS metadata service."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from exporter.auth import (
    METADATA,
    AkSkCredentials,
    MetadataCredentials,
    credentials_for,
    describe_credentials,
)
from exporter.config import Config, MetadataAuth, TargetConfig, parse_config
from exporter.dli.api import LIST_JOBS, METADATA_ENDPOINT, SECURITY_TOKEN_HEADER
from exporter.errors import DliApiError
from exporter.secret import Secret
from exporter.simulator import Fault, Simulator, serve
from exporter.web import create_app
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_api, make_target

T0 = 1_800_000_000.0
TTL = 3600.0
Observed = list[tuple[str, str]]
Getter = Callable[[str], Awaitable[str]]


class Clock:
    """A settable clock (unix seconds), shared by the simulator and the credentials."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    sim = Simulator(
        credentials={ACCESS_KEY: SECRET_KEY}, clock=clock, lifecycle=False, credential_ttl=TTL
    )
    sim.add_project(PROJECT)
    sim.add_job(PROJECT)
    sim.add_job(PROJECT, status="job_cancel_success")
    return sim


@pytest.fixture
async def url(sim: Simulator) -> AsyncIterator[str]:
    async with serve(sim) as base_url:
        yield base_url


def metadata_target(url: str) -> TargetConfig:
    return make_target("ecs", url, auth=MetadataAuth(url))


def credentials(
    session: aiohttp.ClientSession, url: str, clock: Clock, observed: Observed
) -> MetadataCredentials:
    def observe(operation: str, code: str, seconds: float) -> None:
        observed.append((operation, code))

    creds = credentials_for(metadata_target(url), session, observe, clock=clock)
    assert isinstance(creds, MetadataCredentials)
    return creds


def secrets_of(sim: Simulator) -> list[str]:
    """Every SK and security token the simulator handed out, and the metadata tokens."""
    issued = sim.temporary_credentials()
    return [c.secret for c in issued] + [c.security_token for c in issued] + sim.metadata_tokens()


def dli_records(sim: Simulator) -> list[tuple[str, int, str | None]]:
    return [
        (r.operation, r.status, r.access_key) for r in sim.request_log if r.operation != METADATA
    ]


async def test_polls_keep_succeeding_across_expiries(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    observed: Observed = []
    creds = credentials(session, url, clock, observed)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    running = sim.jobs(PROJECT)[0]
    for _ in range(16):  # 16 x 700 s: about three lifetimes of 3600 s
        assert len(await client.list_jobs()) == 2
        assert (await client.execute_graph(running.job_id)).state == "RUNNING"
        clock.now += 700
    dli = dli_records(sim)
    assert dli and all(status == 200 for _, status, _ in dli)  # every signature verified
    used = {access for _, _, access in dli}
    assert len(used) >= 3 and ACCESS_KEY not in used  # renewed at least twice
    assert all(access is not None and access.startswith("TMP") for access in used)
    # Renewed before expiry: no DLI request was ever rejected, and the service was asked
    # a token and a key on first use, then only a key per renewal.
    methods = [r.method for r in sim.request_log if r.operation == METADATA]
    assert methods[:2] == ["PUT", "GET"] and methods.count("PUT") == 1
    assert {code for op, code in observed if op == METADATA} == {"200"}


async def test_gateway_accepts_temporary_keys_only_with_their_token_and_until_expiry(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    issued = sim.issue_temporary_credentials(ttl=100)
    other = sim.issue_temporary_credentials(ttl=100)

    def at_sim_time() -> datetime:
        return datetime.fromtimestamp(clock(), tz=UTC)

    def signer(token: str | None) -> AkSkCredentials:
        secret_token = None if token is None else Secret(token)
        return AkSkCredentials(
            issued.access, Secret(issued.secret), secret_token, clock=at_sim_time
        )

    async def status(creds: AkSkCredentials) -> int | None:
        api = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
        try:
            await api.list_jobs()
        except DliApiError as exc:
            return exc.status
        return 200

    good = signer(issued.security_token)
    assert await status(good) == 200
    assert await status(signer(other.security_token)) == 401
    assert await status(signer(None)) == 401
    clock.now += 101
    assert await status(good) == 401  # expired
    clock.now -= 101
    sim.revoke_temporary_credentials()
    assert await status(good) == 401  # revoked


async def test_a_revoked_key_is_replaced_after_a_401(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    creds = credentials(session, url, clock, [])
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    await client.list_jobs()
    clock.now += 120  # older than the refetch interval
    sim.revoke_temporary_credentials()
    assert len(await client.list_jobs()) == 2
    statuses = [status for op, status, _ in dli_records(sim) if op == LIST_JOBS]
    assert statuses == [200, 401, 200]


@pytest.mark.parametrize("token_status", [404, 405, 503])
async def test_a_service_without_tokens_is_used_without_one(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock, token_status: int
) -> None:
    sim.metadata_token_status = token_status
    observed: Observed = []
    creds = credentials(session, url, clock, observed)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    for _ in range(3):
        assert len(await client.list_jobs()) == 2
        clock.now += 4000  # past an expiry each time
    meta = [(r.method, r.status) for r in sim.request_log if r.operation == METADATA]
    # The token endpoint is asked once (then not for 24 h); keys are fetched without a token.
    assert meta[0] == ("PUT", token_status)
    assert [m for m, _ in meta].count("PUT") == 1
    assert [s for m, s in meta if m == "GET"] == [200, 200, 200]
    assert all(status == 200 for _, status, _ in dli_records(sim))


async def test_an_expired_metadata_token_is_renewed_once(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    creds = credentials(session, url, clock, [])
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    await client.list_jobs()
    sim.revoke_metadata_tokens()
    clock.now += 3500  # the key is due for renewal; the metadata token is not (6 h)
    assert len(await client.list_jobs()) == 2
    meta = [(r.method, r.status) for r in sim.request_log if r.operation == METADATA]
    assert meta == [("PUT", 200), ("GET", 200), ("GET", 401), ("PUT", 200), ("GET", 200)]


async def test_no_agency_fails_as_metadata_and_backs_off(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    sim.metadata_agency = False
    observed: Observed = []
    creds = credentials(session, url, clock, observed)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    for _ in range(2):
        with pytest.raises(DliApiError) as caught:
            await client.list_jobs()
        assert (caught.value.operation, caught.value.code) == (METADATA, "401")
        assert "Cloud Service Agency" in caught.value.describe()
    # The second poll did not ask again: a rejection is backed off.
    assert [r.method for r in sim.request_log if r.operation == METADATA] == ["PUT", "GET"]
    assert [r for r in sim.request_log if r.operation != METADATA] == []
    clock.now += 301
    sim.metadata_agency = True
    assert len(await client.list_jobs()) == 2


async def test_a_failing_service_is_retried_on_the_next_poll(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    creds = credentials(session, url, clock, [])
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    sim.inject_fault(Fault(operation=METADATA, status=500), times=1)
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()
    assert (caught.value.operation, caught.value.code) == (METADATA, "500")
    assert len(await client.list_jobs()) == 2


async def test_the_exporter_reports_up_and_down_naming_metadata_and_leaks_nothing(
    url: str, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim.clock = time.time  # the exporter signs on the real clock
    good = make_target("ecs", url, auth=MetadataAuth(url))
    bad = make_target("ecs_broken", url, auth=MetadataAuth(url + "/nowhere"))
    config = Config(targets=(good, bad), source="test")
    caplog.set_level(logging.DEBUG)
    async with _exporter(config) as get:
        text = await _wait(get, lambda t: 'dli_up{target="ecs"} 1.0' in t and "ecs_broken" in t)
    assert 'dli_up{target="ecs_broken"} 0.0' in text
    assert 'operation="metadata"' in text
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "metadata failed code=404" in logged
    leaked = secrets_of(sim)
    assert len(leaked) >= 3  # an SK, its security token and a metadata token
    for secret in leaked:
        assert secret not in text and secret not in logged
    assert all(SECURITY_TOKEN_HEADER not in r.getMessage() for r in caplog.records)


@asynccontextmanager
async def _exporter(config: Config) -> AsyncIterator[Getter]:
    app = create_app(config, credentials=credentials_for)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as client:

            async def get(path: str) -> str:
                async with client.get(f"http://{host}:{port}{path}") as resp:
                    text: str = await resp.text()
                    return text

            yield get
    finally:
        await runner.cleanup()


async def _wait(get: Getter, ready: Callable[[str], bool]) -> str:
    text = ""
    for _ in range(250):
        text = await get("/metrics")
        if ready(text):
            return text
        await asyncio.sleep(0.02)
    raise AssertionError(f"not ready:\n{text}")


# --- configuration ----------------------------------------------------------------------------


def test_config_metadata_auth() -> None:
    text = """
targets:
  - {name: a, region: cn-north-4, project_id: p, auth: {type: metadata}}
  - name: b
    region: cn-north-4
    project_id: p
    auth: {type: metadata, endpoint: "http://127.0.0.1:8080/"}
"""
    config = parse_config(text, "t", environ={})
    first, second = config.targets
    assert first.auth == MetadataAuth(METADATA_ENDPOINT)
    assert second.auth == MetadataAuth("http://127.0.0.1:8080")
    assert describe_credentials(first) == "ECS instance metadata (http://169.254.169.254)"
