"""``auth.type: federated``: an id token exchanged at the simulator's IAM for temporary AK/SK."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from exporter.auth import (
    ASSUME_AGENCY,
    FEDERATED_TOKEN,
    FederatedCredentials,
    credentials_for,
    describe_credentials,
)
from exporter.config import Config, ConfigError, FederatedAuth, parse_config
from exporter.dli.api import FEDERATED_CREDENTIAL, LIST_JOBS
from exporter.errors import DliApiError
from exporter.simulator import Simulator, serve
from exporter.simulator.iam import Iam, IssuedToken
from exporter.web import create_app
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_api, make_target

T0 = 1_800_000_000.0
IDP = "cce-idp"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.federated-id-token-do-not-log.sig"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def unscoped(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every IAM token the simulator issues."""
    issued: list[str] = []
    original = Iam.issue_token

    def recording(self: Iam, user: str, project_id: str) -> tuple[str, IssuedToken]:
        token, info = original(self, user, project_id)
        issued.append(token)
        return token, info

    monkeypatch.setattr(Iam, "issue_token", recording)
    return issued


@pytest.fixture
def sim(clock: Clock, unscoped: list[str]) -> Simulator:
    sim = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, clock=clock, lifecycle=False)
    sim.add_job(PROJECT)
    sim.federated_identity = (IDP, ID_TOKEN)
    return sim


@pytest.fixture
async def url(sim: Simulator) -> AsyncIterator[str]:
    async with serve(sim) as base_url:
        yield base_url


def federated_credentials(
    session: aiohttp.ClientSession, url: str, token_file: Path, clock: Clock, duration: int = 900
) -> FederatedCredentials:
    auth = FederatedAuth(IDP, str(token_file), url, duration_seconds=duration)
    creds = credentials_for(make_target("fed", url, auth=auth), session, clock=clock)
    assert isinstance(creds, FederatedCredentials)
    return creds


def secrets_of(sim: Simulator, unscoped: list[str]) -> list[str]:
    issued = sim.temporary_credentials()
    return [ID_TOKEN, *unscoped] + [c.secret for c in issued] + [c.security_token for c in issued]


async def test_polls_succeed_across_expiries(
    session: aiohttp.ClientSession,
    url: str,
    sim: Simulator,
    clock: Clock,
    tmp_path: Path,
    unscoped: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text(ID_TOKEN)
    creds = federated_credentials(session, url, token_file, clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    for _ in range(10):  # 10 x 300 s: more than three lifetimes of 900 s
        assert len(await client.list_jobs()) == 1
        clock.now += 300
    dli = [(r.status, r.access_key) for r in sim.request_log if r.operation == LIST_JOBS]
    # Every DLI request was signed with temporary keys whose signature the gateway verified.
    assert len(dli) == 10 and all(status == 200 for status, _ in dli)
    keys = {key for _, key in dli}
    assert len(keys) >= 3 and all(key is not None and key.startswith("TMP") for key in keys)
    tokens = [r.status for r in sim.request_log if r.operation == FEDERATED_TOKEN]
    credentials = [r.status for r in sim.request_log if r.operation == ASSUME_AGENCY]
    assert len(tokens) >= 3 and set(tokens) == {201}
    assert len(credentials) == len(tokens) and set(credentials) == {201}
    assert len(unscoped) == len(tokens)  # a new unscoped token (id token re-read) each time
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert all(secret not in logged for secret in secrets_of(sim, unscoped))


async def test_a_rotated_id_token_is_read_again(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(ID_TOKEN)
    creds = federated_credentials(session, url, token_file, clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    assert len(await client.list_jobs()) == 1
    sim.federated_identity = (IDP, "rotated-id-token")
    token_file.write_text("rotated-id-token\n")
    clock.now += 1000  # past the expiry
    assert len(await client.list_jobs()) == 1


async def test_a_wrong_id_token_fails_as_federated_token(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("not-the-token")
    creds = federated_credentials(session, url, token_file, clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()
    assert (caught.value.operation, caught.value.code) == (FEDERATED_TOKEN, "401")
    assert "not trusted" in caught.value.describe()
    assert "not-the-token" not in caught.value.describe()
    assert [r for r in sim.request_log if r.operation != FEDERATED_TOKEN] == []
    missing = federated_credentials(session, url, tmp_path / "none", clock)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=missing, timeout=5)
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()
    assert (caught.value.operation, caught.value.code) == (FEDERATED_TOKEN, "credentials")


async def test_a_rejected_token_exchange_fails_as_federated_credential(
    session: aiohttp.ClientSession, url: str, clock: Clock, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(ID_TOKEN)
    creds = federated_credentials(session, url, token_file, clock, duration=60)
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()
    assert (caught.value.operation, caught.value.code) == (FEDERATED_CREDENTIAL, "400")


async def test_the_exporter_reports_up_and_down_and_leaks_nothing(
    url: str,
    sim: Simulator,
    tmp_path: Path,
    unscoped: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.clock = time.time  # the exporter signs on the real clock
    good_file, bad_file = tmp_path / "good", tmp_path / "bad"
    good_file.write_text(ID_TOKEN)
    bad_file.write_text("wrong-id-token")
    good = make_target("fed", url, auth=FederatedAuth(IDP, str(good_file), url))
    bad = make_target("fed_broken", url, auth=FederatedAuth(IDP, str(bad_file), url))
    caplog.set_level(logging.DEBUG)
    app = create_app(Config(targets=(good, bad), source="test"), credentials=credentials_for)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    text = ""
    try:
        async with aiohttp.ClientSession() as client:
            for _ in range(250):
                async with client.get(f"http://{host}:{port}/metrics") as resp:
                    text = await resp.text()
                if 'dli_up{target="fed"} 1.0' in text and 'dli_up{target="fed_broken"}' in text:
                    break
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert 'dli_up{target="fed"} 1.0' in text
    assert 'dli_up{target="fed_broken"} 0.0' in text
    assert 'operation="federated_token"' in text and 'operation="federated_credential"' in text
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    leaked = [*secrets_of(sim, unscoped), "wrong-id-token"]
    assert len(leaked) >= 5
    for secret in leaked:
        assert secret not in text and secret not in logged


# --- configuration ----------------------------------------------------------------------------


def test_config_from_the_sdk_variables_and_in_the_chain(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "HUAWEICLOUD_SDK_IDP_ID": IDP,
        "HUAWEICLOUD_SDK_ID_TOKEN_FILE": "/var/run/idp/token",
    }
    expected = FederatedAuth(IDP, "/var/run/idp/token", "https://iam.cn-north-4.myhuaweicloud.com")
    chained = "targets:\n  - {name: a, region: cn-north-4, project_id: p}\n"
    target = parse_config(chained, "c.yaml", env).targets[0]
    assert target.auth == expected
    assert describe_credentials(target) == (
        f"federated identity (identity provider {IDP}, id token file /var/run/idp/token, "
        "via https://iam.cn-north-4.myhuaweicloud.com)"
    )
    # As the SDK's env provider: AK/SK first, then the idp id and id token file.
    with_keys = {**env, "HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk"}
    assert type(parse_config(chained, "c.yaml", with_keys).targets[0].auth).__name__ == "AkSkAuth"
    # Workload identity (OIDC) comes before the env provider.
    oidc = {
        **env,
        "HUAWEICLOUD_OIDC_PROVIDER_URN": "p",
        "HUAWEICLOUD_OIDC_AGENCY_URN": "a",
        "HUAWEICLOUD_OIDC_TOKEN_FILE": "/t",
    }
    chosen = parse_config(chained, "c.yaml", oidc).targets[0].auth
    assert type(chosen).__name__ == "WorkloadIdentityAuth"
    # Only half of the pair: not federated (the metadata service, as with nothing set).
    half = {"HOME": str(tmp_path), "HUAWEICLOUD_SDK_IDP_ID": IDP}
    assert type(parse_config(chained, "c.yaml", half).targets[0].auth).__name__ == "MetadataAuth"


def test_config_explicit_keys_and_their_variables(tmp_path: Path) -> None:
    explicit = (
        "targets:\n  - name: a\n    region: cn-north-4\n    project_id: p\n"
        "    auth: {type: federated, idp_id: x, id_token_file: /t, "
        "iam_endpoint: 'https://iam.example.com/'}\n"
    )
    target = parse_config(explicit, "c.yaml", {"HOME": str(tmp_path)}).targets[0]
    assert target.auth == FederatedAuth("x", "/t", "https://iam.example.com")
    from_env = (
        "targets:\n  - name: a\n    region: cn-north-4\n    project_id: p\n"
        "    auth: {type: federated}\n"
    )
    env = {
        "HOME": str(tmp_path),
        "HUAWEICLOUD_SDK_IDP_ID": "y",
        "HUAWEICLOUD_SDK_ID_TOKEN_FILE": "/u",
        "HUAWEICLOUD_SDK_IAM_ENDPOINT": "https://iam.env.example.com",
    }
    target = parse_config(from_env, "c.yaml", env).targets[0]
    assert target.auth == FederatedAuth("y", "/u", "https://iam.env.example.com")
    with pytest.raises(ConfigError) as caught:
        parse_config(from_env, "c.yaml", {"HOME": str(tmp_path)})
    assert [p.key for p in caught.value.problems] == [
        "targets[0].auth.idp_id",
        "targets[0].auth.id_token_file",
    ]
    assert "HUAWEICLOUD_SDK_IDP_ID" in str(caught.value)
