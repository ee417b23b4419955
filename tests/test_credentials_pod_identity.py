"""``auth.type: pod_identity``: temporary AK/SK from the simulator's CCE pod identity endpoint."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from exporter.auth import (
    POD_IDENTITY,
    PodIdentityCredentials,
    credentials_for,
    describe_credentials,
)
from exporter.config import ConfigError, PodIdentityAuth, parse_config
from exporter.dli.api import POD_IDENTITY_PATH
from exporter.errors import DliApiError
from exporter.simulator import Simulator, serve
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_api, make_target

T0 = 1_800_000_000.0
POD_TOKEN = "pod-token-do-not-log-7f6e5d"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    sim = Simulator(
        credentials={ACCESS_KEY: SECRET_KEY}, clock=clock, lifecycle=False, credential_ttl=3600
    )
    sim.add_job(PROJECT)
    sim.pod_identity_token = POD_TOKEN
    return sim


@pytest.fixture
async def url(sim: Simulator) -> AsyncIterator[str]:
    async with serve(sim) as base_url:
        yield base_url


def token_file(tmp_path: Path, token: str = POD_TOKEN) -> Path:
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return path


def pod_credentials(
    session: aiohttp.ClientSession, url: str, path: Path, clock: Clock
) -> PodIdentityCredentials:
    auth = PodIdentityAuth(url + POD_IDENTITY_PATH, str(path))
    creds = credentials_for(make_target("pod", url, auth=auth), session, clock=clock)
    assert isinstance(creds, PodIdentityCredentials)
    return creds


async def test_polls_succeed_across_expiries_with_a_rotated_token_file(
    session: aiohttp.ClientSession,
    url: str,
    sim: Simulator,
    clock: Clock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    path = token_file(tmp_path)
    creds = pod_credentials(session, url, path, clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    for step in range(12):
        assert len(await client.list_jobs()) == 1
        clock.now += 700
        if step == 5:  # the kubelet rotates the token
            sim.pod_identity_token = POD_TOKEN + "-2"
            token_file(tmp_path, POD_TOKEN + "-2")
    dli = [(r.status, r.access_key) for r in sim.request_log if r.operation != POD_IDENTITY]
    assert all(status == 200 for status, _ in dli)
    assert len({key for _, key in dli}) >= 3
    pod = [r.status for r in sim.request_log if r.operation == POD_IDENTITY]
    assert pod and set(pod) == {200}
    secrets = [POD_TOKEN] + [c.secret for c in sim.temporary_credentials()]
    secrets += [c.security_token for c in sim.temporary_credentials()]
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert all(secret not in logged for secret in secrets)


async def test_failures_name_pod_identity(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock, tmp_path: Path
) -> None:
    creds = pod_credentials(session, url, tmp_path / "missing", clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()
    assert (caught.value.operation, caught.value.code) == (POD_IDENTITY, "credentials")
    assert "cannot read" in caught.value.describe()

    wrong = pod_credentials(session, url, token_file(tmp_path, "wrong-token"), clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=wrong, timeout=5)
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()
    assert (caught.value.operation, caught.value.code) == (POD_IDENTITY, "401")
    assert "wrong-token" not in caught.value.describe()


def test_config_from_the_variables_cce_injects(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "HC_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:8080/v1/credentials",
        "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/token",
    }
    expected = PodIdentityAuth("http://127.0.0.1:8080/v1/credentials", "/var/run/token")
    explicit = "targets:\n  - {name: a, region: r1, project_id: p, auth: {type: pod_identity}}\n"
    assert parse_config(explicit, "c.yaml", env).targets[0].auth == expected
    chained = "targets:\n  - {name: a, region: r1, project_id: p}\n"
    target = parse_config(chained, "c.yaml", env).targets[0]
    assert target.auth == expected  # the chain's last source
    assert describe_credentials(target).startswith("CCE pod identity (http://127.0.0.1:8080")
    with pytest.raises(ConfigError) as caught:
        parse_config(explicit, "c.yaml", {"HOME": str(tmp_path)})
    assert [p.key for p in caught.value.problems] == [
        "targets[0].auth.uri",
        "targets[0].auth.token_file",
    ]
