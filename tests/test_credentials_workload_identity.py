"""``auth.type: workload_identity``: an OIDC id token exchanged at the simulator's STS."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from exporter.auth import (
    WORKLOAD_IDENTITY,
    WorkloadIdentityCredentials,
    credentials_for,
    describe_credentials,
)
from exporter.config import ConfigError, WorkloadIdentityAuth, parse_config
from exporter.errors import DliApiError
from exporter.simulator import Simulator, serve
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_api, make_target

T0 = 1_800_000_000.0
PROVIDER = "iam::0123:identityprovider:cce-oidc"
AGENCY = "iam::0123:agency:dli-reader"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.id-token-do-not-log.sig"


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
    sim = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, clock=clock, lifecycle=False)
    sim.add_job(PROJECT)
    sim.oidc_identity = (PROVIDER, AGENCY, ID_TOKEN)
    return sim


@pytest.fixture
async def url(sim: Simulator) -> AsyncIterator[str]:
    async with serve(sim) as base_url:
        yield base_url


def oidc_credentials(
    session: aiohttp.ClientSession, url: str, token_file: Path, clock: Clock, duration: int = 900
) -> WorkloadIdentityCredentials:
    auth = WorkloadIdentityAuth(PROVIDER, AGENCY, str(token_file), url, duration_seconds=duration)
    creds = credentials_for(make_target("oidc", url, auth=auth), session, clock=clock)
    assert isinstance(creds, WorkloadIdentityCredentials)
    return creds


async def test_polls_succeed_across_expiries(
    session: aiohttp.ClientSession,
    url: str,
    sim: Simulator,
    clock: Clock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text(ID_TOKEN)
    creds = oidc_credentials(session, url, token_file, clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    for _ in range(10):  # 10 x 300 s: more than three lifetimes of 900 s
        assert len(await client.list_jobs()) == 1
        clock.now += 300
    dli = [(r.status, r.access_key) for r in sim.request_log if r.operation != WORKLOAD_IDENTITY]
    assert all(status == 200 for status, _ in dli)
    assert len({key for _, key in dli}) >= 3
    sts = [r.status for r in sim.request_log if r.operation == WORKLOAD_IDENTITY]
    assert len(sts) >= 3 and set(sts) == {201}
    issued = sim.temporary_credentials()
    secrets = [ID_TOKEN] + [c.secret for c in issued] + [c.security_token for c in issued]
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert all(secret not in logged for secret in secrets)


async def test_an_untrusted_token_fails_as_workload_identity(
    session: aiohttp.ClientSession, url: str, clock: Clock, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("not-the-token")
    creds = oidc_credentials(session, url, token_file, clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()
    assert (caught.value.operation, caught.value.code) == (WORKLOAD_IDENTITY, "403")
    assert "not-the-token" not in caught.value.describe()
    missing = oidc_credentials(session, url, tmp_path / "none", clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=missing, timeout=5)
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()
    assert (caught.value.operation, caught.value.code) == (WORKLOAD_IDENTITY, "credentials")


def test_config_from_the_sdk_variables_and_first_in_the_chain(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "HUAWEICLOUD_OIDC_PROVIDER_URN": PROVIDER,
        "HUAWEICLOUD_OIDC_AGENCY_URN": AGENCY,
        "HUAWEICLOUD_OIDC_TOKEN_FILE": "/var/run/oidc/token",
        # The environment's AK/SK come after workload identity in the SDK's chain.
        "HUAWEICLOUD_SDK_AK": "ak",
        "HUAWEICLOUD_SDK_SK": "sk",
    }
    expected = WorkloadIdentityAuth(
        PROVIDER, AGENCY, "/var/run/oidc/token", "https://sts.cn-north-4.myhuaweicloud.com"
    )
    chained = "targets:\n  - {name: a, region: cn-north-4, project_id: p}\n"
    target = parse_config(chained, "c.yaml", env).targets[0]
    assert target.auth == expected
    assert describe_credentials(target) == (
        f"workload identity (agency {AGENCY} via https://sts.cn-north-4.myhuaweicloud.com)"
    )
    explicit = (
        "targets:\n  - name: a\n    region: cn-north-4\n    project_id: p\n"
        "    auth: {type: workload_identity, duration_seconds: 60}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(explicit, "c.yaml", {"HOME": str(tmp_path)})
    assert [p.key for p in caught.value.problems] == [
        "targets[0].auth.provider_urn",
        "targets[0].auth.agency_urn",
        "targets[0].auth.id_token_file",
        "targets[0].auth.duration_seconds",
    ]
