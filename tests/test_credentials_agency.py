"""``auth.assume_agency``: polling another account's projects through an assumed agency."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from exporter.auth import (
    ASSUME_AGENCY,
    AgencyUser,
    CredentialsPool,
    credentials_for,
    describe_credentials,
)
from exporter.config import (
    AkSkAuth,
    AssumeAgencyAuth,
    Config,
    ConfigError,
    MetadataAuth,
    ProfileAuth,
    TargetConfig,
    parse_config,
)
from exporter.dli.api import SECURITY_TOKEN_HEADER
from exporter.errors import DliApiError
from exporter.secret import Secret
from exporter.simulator import Simulator, serve
from exporter.web import create_app
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_api, make_target

T0 = 1_800_000_000.0
DOMAIN = "other-account"
AGENCY = "dli-readonly"
REMOTE = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
REMOTE_2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
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
    sim = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, clock=clock, lifecycle=False)
    sim.add_project(PROJECT)
    sim.add_job(PROJECT)
    sim.add_agency(DOMAIN, AGENCY, REMOTE, trusted=frozenset({ACCESS_KEY}))
    sim.add_project(REMOTE_2)
    for project in (REMOTE, REMOTE_2):
        sim.add_job(project)
        sim.add_job(project, status="job_cancel_success")
    return sim


@pytest.fixture
async def url(sim: Simulator) -> AsyncIterator[str]:
    async with serve(sim) as base_url:
        yield base_url


def agency_target(
    name: str, url: str, project_id: str, *, agency: str = AGENCY, duration: int = 900
) -> TargetConfig:
    auth = AssumeAgencyAuth(
        AkSkAuth(ACCESS_KEY, Secret(SECRET_KEY)),
        agency,
        url,
        domain_name=DOMAIN,
        duration_seconds=duration,
    )
    return make_target(name, url, project_id=project_id, auth=auth)


def observer(observed: Observed) -> Callable[[str, str, float], None]:
    def observe(operation: str, code: str, seconds: float) -> None:
        observed.append((operation, code))

    return observe


def sts_calls(sim: Simulator) -> list[tuple[int, str | None]]:
    return [(r.status, r.access_key) for r in sim.request_log if r.operation == ASSUME_AGENCY]


def secrets_of(sim: Simulator) -> list[str]:
    issued = sim.temporary_credentials()
    return [SECRET_KEY] + [c.secret for c in issued] + [c.security_token for c in issued]


async def test_two_targets_share_one_assumed_credential_across_expiries(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    pool = CredentialsPool(clock=clock)
    first: Observed = []
    second: Observed = []
    creds = [
        pool(agency_target("a", url, REMOTE), session, observer(first)),
        pool(agency_target("b", url, REMOTE_2), session, observer(second)),
    ]
    assert all(isinstance(c, AgencyUser) for c in creds) and len(pool) == 1
    clients = [
        make_api(session, endpoint=url, project_id=p, credentials=c, timeout=5)
        for p, c in zip((REMOTE, REMOTE_2), creds, strict=True)
    ]
    for rounds in range(9):  # 9 x 400 s: about four lifetimes of 900 s
        results = await asyncio.gather(*(client.list_jobs() for client in clients))
        assert [len(jobs) for jobs in results] == [2, 2]
        if rounds == 0:
            assert len(sts_calls(sim)) == 1  # one call served both targets
        clock.now += 400
    dli = [(r.status, r.access_key) for r in sim.request_log if r.operation != ASSUME_AGENCY]
    assert len(dli) == 18 and all(status == 200 for status, _ in dli)  # every signature good
    used = {access for _, access in dli}
    calls = sts_calls(sim)
    # One STS call per credential, each signed with the base identity's key; both targets
    # used each credential (no target ever called STS for itself).
    assert len(used) == len(calls) >= 3 and ACCESS_KEY not in used
    assert calls == [(201, ACCESS_KEY)] * len(calls)
    assert {c for op, c in first + second if op == ASSUME_AGENCY} == {"201"}
    assert len([o for o in first + second if o[0] == ASSUME_AGENCY]) == len(calls)


async def test_the_pool_drops_an_agency_nobody_uses(
    session: aiohttp.ClientSession, url: str, clock: Clock
) -> None:
    pool = CredentialsPool(clock=clock)
    kept = pool(agency_target("a", url, REMOTE), session, None)
    other = pool(agency_target("b", url, REMOTE, agency="another"), session, None)
    assert len(pool) == 2
    del other
    gc.collect()
    assert len(pool) == 1
    again = pool(agency_target("a2", url, REMOTE_2), session, None)  # e.g. after a reload
    assert isinstance(again, AgencyUser) and isinstance(kept, AgencyUser)
    assert again.shared is kept.shared
    # Plain credentials are not pooled; the unshared factory builds an agency of its own.
    pool(make_target("plain", url), session, None)
    assert len(pool) == 1
    alone = credentials_for(agency_target("a", url, REMOTE), session, None, clock=clock)
    assert isinstance(alone, AgencyUser) and alone.shared is not kept.shared


async def test_a_revoked_agency_fails_as_assume_agency_naming_it_and_backs_off(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    pool = CredentialsPool(clock=clock)
    observed: Observed = []
    a = pool(agency_target("a", url, REMOTE), session, observer(observed))
    b = pool(agency_target("b", url, REMOTE_2), session, observer(observed))
    plain = pool(make_target("c", url), session, observer(observed))
    apis = [
        make_api(session, endpoint=url, project_id=p, credentials=c, timeout=5)
        for p, c in ((REMOTE, a), (REMOTE_2, b), (PROJECT, plain))
    ]
    for api in apis:
        await api.list_jobs()
    sim.revoke_agency(DOMAIN, AGENCY)
    clock.now += 100  # past the minimum interval between renewals after a 401
    with pytest.raises(DliApiError):
        await apis[0].list_jobs()  # its key is revoked: 401, and renewing it is refused
    for api in apis[:2] * 2:
        with pytest.raises(DliApiError) as caught:
            await api.list_jobs()
        error = caught.value
        assert (error.operation, error.code) == (ASSUME_AGENCY, "403")
        assert f"agency {AGENCY} in {DOMAIN}" in error.describe()
    assert len(await apis[2].list_jobs()) == 1  # the target without the agency is unaffected
    assert [status for status, _ in sts_calls(sim)] == [201, 403]  # backed off, shared
    clock.now += 301
    sim.add_agency(DOMAIN, AGENCY, REMOTE, trusted=frozenset({ACCESS_KEY}))
    assert len(await apis[1].list_jobs()) == 2


async def test_an_untrusted_caller_and_an_unsigned_call_are_refused(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    sim.add_agency(DOMAIN, "admins-only", REMOTE, trusted=frozenset({"someone-else"}))
    target = agency_target("a", url, REMOTE, agency="admins-only")
    creds = credentials_for(target, session, None, clock=clock)
    api = make_api(session, endpoint=url, project_id=REMOTE, credentials=creds, timeout=5)
    with pytest.raises(DliApiError) as caught:
        await api.list_jobs()
    assert (caught.value.operation, caught.value.code) == (ASSUME_AGENCY, "403")
    async with session.post(f"{url}/v3.0/OS-CREDENTIAL/securitytokens", json={}) as resp:
        assert resp.status == 401  # the call itself must be authenticated


async def test_exporter_revoked_agency_downs_only_its_targets_and_leaks_nothing(
    url: str, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim.clock = time.time  # the exporter signs on the real clock
    sim.add_agency(DOMAIN, "revoked", REMOTE, trusted=frozenset({ACCESS_KEY}))
    sim.revoke_agency(DOMAIN, "revoked")
    targets = (
        agency_target("shared_a", url, REMOTE),
        agency_target("shared_b", url, REMOTE_2),
        agency_target("gone_a", url, REMOTE, agency="revoked"),
        agency_target("gone_b", url, REMOTE_2, agency="revoked"),
        make_target("plain", url),
    )
    caplog.set_level(logging.DEBUG)
    async with _exporter(Config(targets=targets, source="test")) as get:
        text = await _wait(
            get,
            lambda t: (
                all(f'dli_up{{target="{n}"}} 1.0' in t for n in ("shared_a", "plain"))
                and 'dli_up{target="shared_b"} 1.0' in t
                and all(f'dli_up{{target="{n}"}} 0.0' in t for n in ("gone_a", "gone_b"))
            ),
        )
        status_page = await get("/")
    assert 'operation="assume_agency"' in text
    assert [status for status, _ in sts_calls(sim)] == [201, 403]  # one call per agency
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "assume_agency failed code=403" in logged and "agency revoked in" in logged
    assert f"assuming agency {AGENCY} in {DOMAIN}" in status_page
    leaked = secrets_of(sim)
    assert len(leaked) >= 3
    for secret in leaked:
        assert secret not in text and secret not in logged and secret not in status_page
    assert all(SECURITY_TOKEN_HEADER not in r.getMessage() for r in caplog.records)


async def test_reprs_hold_no_secret(
    session: aiohttp.ClientSession, url: str, sim: Simulator, clock: Clock
) -> None:
    pool = CredentialsPool(clock=clock)
    target = agency_target("a", url, REMOTE)
    creds = pool(target, session, None)
    api = make_api(session, endpoint=url, project_id=REMOTE, credentials=creds, timeout=5)
    await api.list_jobs()
    shown = repr(creds) + repr(pool) + repr(target)
    assert AGENCY in shown
    for secret in secrets_of(sim):
        assert secret not in shown


@asynccontextmanager
async def _exporter(config: Config) -> AsyncIterator[Getter]:
    app = create_app(config)  # the default factory: the app's own credentials pool
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


def test_config_assume_agency_on_any_source() -> None:
    text = """
targets:
  - name: a
    region: cn-north-4
    project_id: p
    auth:
      access_key: AK
      secret_key: SK
      assume_agency: {domain_name: other, agency_name: ops}
  - name: b
    region: cn-north-4
    project_id: p
    auth:
      type: metadata
      assume_agency: {domain_id: d0123, agency_name: ops, duration_seconds: 7200,
                      iam_endpoint: "https://iam.example.com/"}
"""
    first, second = parse_config(text, "t", environ={}).targets
    assert isinstance(first.auth, AssumeAgencyAuth) and isinstance(second.auth, AssumeAgencyAuth)
    assert first.auth.iam_endpoint == "https://iam.cn-north-4.myhuaweicloud.com"
    assert (first.auth.domain_name, first.auth.duration_seconds) == ("other", 3600)
    assert second.auth.base == MetadataAuth()
    assert (second.auth.domain_id, second.auth.iam_endpoint) == ("d0123", "https://iam.example.com")
    assert describe_credentials(first) == "AK/SK (access key AK) assuming agency ops in other"
    assert describe_credentials(second).endswith("assuming agency ops in d0123")


@pytest.mark.parametrize(
    ("environ", "profile", "base"),
    [
        ({"HUAWEICLOUD_SDK_AK": "ENVAK", "HUAWEICLOUD_SDK_SK": "env-sk"}, False, "AK/SK"),
        ({}, True, "profile"),
        ({}, False, "metadata"),
    ],
    ids=["environment", "profile", "metadata"],
)
def test_config_assume_agency_on_the_default_chain(
    tmp_path: Path, environ: dict[str, str], profile: bool, base: str
) -> None:
    """``auth: {assume_agency: ...}`` alone: the agency on whatever the default chain finds."""
    if profile:
        path = tmp_path / ".huaweicloud" / "credentials"
        path.parent.mkdir()
        path.write_text("[basic]\nak = FILEAK\nsk = file-sk\n")
    text = """
targets:
  - name: a
    region: cn-north-4
    project_id: p
    auth: {assume_agency: {domain_name: other, agency_name: ops}}
"""
    (target,) = parse_config(text, "t", environ={**environ, "HOME": str(tmp_path)}).targets
    assert isinstance(target.auth, AssumeAgencyAuth)
    assert (target.auth.domain_name, target.auth.agency_name) == ("other", "ops")
    expected = {"AK/SK": AkSkAuth, "profile": ProfileAuth, "metadata": MetadataAuth}[base]
    assert isinstance(target.auth.base, expected)
    assert describe_credentials(target).endswith("assuming agency ops in other")
    assert "env-sk" not in describe_credentials(target) + repr(target)


@pytest.mark.parametrize(
    ("agency", "problem"),
    [
        ("{agency_name: ops}", "domain_name: set exactly one of domain_name and domain_id"),
        ("{domain_name: o, domain_id: d, agency_name: ops}", "set exactly one of domain_name"),
        ("{domain_name: o}", "agency_name: "),
        ("{domain_name: o, agency_name: ops, duration_seconds: 899}", "from 900 to 86400"),
        ("{domain_name: o, agency_name: ops, duration_seconds: 86401}", "from 900 to 86400"),
        ("{domain_name: o, agency_name: ops, role: x}", "assume_agency.role: unknown key"),
    ],
)
def test_config_assume_agency_problems(agency: str, problem: str) -> None:
    text = f"""
targets:
  - name: a
    region: cn-north-4
    project_id: p
    auth: {{access_key: AK, secret_key: SK, assume_agency: {agency}}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t", environ={})
    assert problem in str(caught.value)
    assert "targets[0].auth.assume_agency" in str(caught.value)
