"""IAM password-token credentials against the simulator's IAM endpoint, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from exporter.auth import (
    AUTH_TOKEN_HEADER,
    IAM_TOKEN,
    MIN_REFETCH_INTERVAL,
    REJECTED_BACKOFF,
    IamTokenCredentials,
    credentials_for,
)
from exporter.config import PasswordAuth
from exporter.errors import DliApiError, error_from_body
from exporter.secret import Secret
from exporter.simulator import Fault, Simulator, serve
from exporter.simulator.state import RequestRecord
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_api, make_target

USER = "dli-exporter-bot"
PASSWORD = "iam-pw-do-not-log-7a6b5c4d"
WRONG_PASSWORD = "wrong-pw-do-not-log-1f2e3d"
DOMAIN = "acme"
T0 = 1_800_000_000.0
JOBS_PATH = f"/v1.0/{PROJECT}/streaming/jobs"

Observed = list[tuple[str, str, float]]


class Clock:
    """A settable clock (unix seconds)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim_clock() -> Clock:
    return Clock()


@pytest.fixture
def iam_sim(sim_clock: Clock) -> Simulator:
    """A simulator with one IAM user, one project (named after the region) and two jobs."""
    sim = Simulator(
        credentials={ACCESS_KEY: SECRET_KEY},
        iam_users={USER: (PASSWORD, DOMAIN)},
        clock=sim_clock,
        lifecycle=False,
    )
    sim.add_project(PROJECT)
    sim.add_job(PROJECT)
    sim.add_job(PROJECT, status="job_cancel_success")
    return sim


@pytest.fixture
async def url(iam_sim: Simulator) -> AsyncIterator[str]:
    async with serve(iam_sim) as base_url:
        yield base_url


@pytest.fixture
def clock() -> Clock:
    """The credentials' clock."""
    return Clock()


@pytest.fixture
def observed() -> Observed:
    return []


def make_credentials(
    session: aiohttp.ClientSession,
    url: str,
    clock: Clock,
    observed: Observed,
    *,
    password: str = PASSWORD,
    timeout: float = 5.0,
) -> IamTokenCredentials:
    def observe(operation: str, code: str, seconds: float) -> None:
        observed.append((operation, code, seconds))

    return IamTokenCredentials(
        session,
        iam_endpoint=url,
        username=USER,
        password=Secret(password),
        domain_name=DOMAIN,
        project_id=PROJECT,
        timeout=timeout,
        observe=observe,
        clock=clock,
    )


@pytest.fixture
def creds(
    session: aiohttp.ClientSession, url: str, clock: Clock, observed: Observed
) -> IamTokenCredentials:
    return make_credentials(session, url, clock, observed)


def iam_requests(sim: Simulator) -> list[RequestRecord]:
    return [r for r in sim.request_log if r.operation == IAM_TOKEN]


async def token_of(creds: IamTokenCredentials) -> str:
    headers = await creds.authorize("GET", "http://dli.invalid/", {}, b"")
    return headers[AUTH_TOKEN_HEADER]


async def list_with(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, Any]:
    async with session.get(url + JOBS_PATH, headers=headers) as resp:
        return resp.status, await resp.json()


async def post_login(
    session: aiohttp.ClientSession, url: str, body: object
) -> tuple[int, Any, str | None]:
    async with session.post(url + "/v3/auth/tokens", json=body) as resp:
        return resp.status, await resp.json(), resp.headers.get("X-Subject-Token")


def login_body(
    user: str = USER, password: str = PASSWORD, domain: str = DOMAIN, **scope: str
) -> dict[str, Any]:
    identity = {
        "methods": ["password"],
        "password": {"user": {"name": user, "password": password, "domain": {"name": domain}}},
    }
    return {"auth": {"identity": identity, "scope": {"project": scope or {"id": PROJECT}}}}


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and WRONG_PASSWORD not in text


# --- the credentials ------------------------------------------------------------------------


async def test_token_is_fetched_once_and_reused(
    session: aiohttp.ClientSession, url: str, iam_sim: Simulator, creds: IamTokenCredentials
) -> None:
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    running = iam_sim.jobs(PROJECT)[0]
    for _ in range(5):
        assert len(await client.list_jobs()) == 2
        assert (await client.execute_graph(running.job_id)).state == "RUNNING"
    [iam] = iam_requests(iam_sim)
    assert (iam.method, iam.status, iam.user, iam.query) == (
        "POST",
        201,
        USER,
        {"nocatalog": "true"},
    )
    dli = [r for r in iam_sim.request_log if r.operation != IAM_TOKEN]
    assert len(dli) == 10
    assert {(r.status, r.user, r.access_key) for r in dli} == {(200, USER, None)}


async def test_concurrent_first_calls_share_one_iam_request(
    iam_sim: Simulator, creds: IamTokenCredentials
) -> None:
    tokens = await asyncio.gather(*(token_of(creds) for _ in range(20)))
    assert len(set(tokens)) == 1
    assert len(iam_requests(iam_sim)) == 1


async def test_concurrent_first_calls_share_one_failure(
    session: aiohttp.ClientSession, url: str, iam_sim: Simulator, clock: Clock, observed: Observed
) -> None:
    creds = make_credentials(session, url, clock, observed, password=WRONG_PASSWORD)
    results = await asyncio.gather(*(token_of(creds) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, DliApiError) and r.code == "401" for r in results)
    assert len(iam_requests(iam_sim)) == 1


@pytest.mark.parametrize(("ttl", "margin"), [(86_400.0, 3600.0), (600.0, 60.0)])
async def test_token_is_renewed_before_it_expires(
    session: aiohttp.ClientSession,
    url: str,
    iam_sim: Simulator,
    creds: IamTokenCredentials,
    clock: Clock,
    ttl: float,
    margin: float,
) -> None:
    """Renewed once less than 10% of the lifetime or 1 h (the smaller) remains."""
    iam_sim.token_ttl = ttl
    first = await token_of(creds)
    clock.now += ttl - margin - 1
    assert await token_of(creds) == first
    assert len(iam_requests(iam_sim)) == 1
    clock.now += 2
    second = await token_of(creds)
    assert second != first
    assert len(iam_requests(iam_sim)) == 2
    status, _ = await list_with(session, url, {AUTH_TOKEN_HEADER: second})
    assert status == 200


async def test_failed_renewal_keeps_the_current_token_and_waits_before_retrying(
    iam_sim: Simulator,
    creds: IamTokenCredentials,
    clock: Clock,
    observed: Observed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await token_of(creds)
    clock.now += 86_400 - 60
    iam_sim.inject_fault(Fault(status=503, operation=IAM_TOKEN))
    with caplog.at_level(logging.WARNING, logger="exporter.auth"):
        assert await token_of(creds) == first
    assert [code for _, code, _ in observed] == ["201", "503"]
    assert "renewal failed" in caplog.text
    assert_no_secrets(caplog.text, *(str(r.__dict__) for r in caplog.records))
    assert first not in caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    clock.now += MIN_REFETCH_INTERVAL - 1
    assert await token_of(creds) == first
    assert len(iam_requests(iam_sim)) == 2
    clock.now += 2
    assert await token_of(creds) != first
    assert len(iam_requests(iam_sim)) == 3


async def test_refresh_after_revocation_gets_a_new_token(
    session: aiohttp.ClientSession,
    url: str,
    iam_sim: Simulator,
    creds: IamTokenCredentials,
    clock: Clock,
) -> None:
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    await client.list_jobs()
    iam_sim.revoke_tokens()
    headers = await creds.authorize("GET", url + JOBS_PATH, {}, b"")
    status, body = await list_with(session, url, headers)
    assert (status, body["error_code"]) == (401, "APIG.0301")
    # A 401 for a token fetched less than a minute ago is not about the token: IAM is spared.
    clock.now += MIN_REFETCH_INTERVAL - 1
    assert await creds.refresh() is False
    assert len(iam_requests(iam_sim)) == 1
    clock.now += 1
    assert await creds.refresh() is True
    assert len(iam_requests(iam_sim)) == 2
    assert len(await client.list_jobs()) == 2
    assert iam_sim.request_log[-1].status == 200


@pytest.mark.parametrize(
    ("error_code", "renews"),
    [("APIG.0301", True), ("APIG.1002", True), ("DLI.0005", False), (None, False)],
)
async def test_only_a_401_about_the_token_or_signature_renews_the_credentials(
    session: aiohttp.ClientSession,
    url: str,
    iam_sim: Simulator,
    creds: IamTokenCredentials,
    clock: Clock,
    error_code: str | None,
    renews: bool,
) -> None:
    client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
    await client.list_jobs()
    clock.now += MIN_REFETCH_INTERVAL + 1  # past the "token just fetched" guard
    body = {"error_msg": "refused"} | ({"error_code": error_code} if error_code else {})
    iam_sim.inject_fault(Fault(status=401, body=json.dumps(body).encode(), operation="list_jobs"))

    if renews:
        assert len(await client.list_jobs()) == 2  # renewed once, then retried
    else:
        with pytest.raises(DliApiError) as caught:
            await client.list_jobs()
        assert caught.value.status == 401
    assert len(iam_requests(iam_sim)) == (2 if renews else 1)


async def test_concurrent_refreshes_ask_iam_once_and_all_retry(
    iam_sim: Simulator, creds: IamTokenCredentials, clock: Clock
) -> None:
    """Requests in flight with a revoked token all get 401; one renewal serves them all."""
    old = await token_of(creds)
    iam_sim.revoke_tokens()
    clock.now += 3600
    assert await asyncio.gather(*(creds.refresh() for _ in range(5))) == [True] * 5
    assert len(iam_requests(iam_sim)) == 2
    assert await token_of(creds) != old
    # Still within a minute of that renewal: a later 401 retries with the new token, no IAM.
    clock.now += MIN_REFETCH_INTERVAL - 1
    assert await creds.refresh() is True
    assert len(iam_requests(iam_sim)) == 2


async def test_failed_refresh_returns_false_and_the_next_call_tries_again(
    iam_sim: Simulator, creds: IamTokenCredentials, clock: Clock
) -> None:
    await token_of(creds)
    clock.now += 3600
    iam_sim.inject_fault(Fault(status=500, operation=IAM_TOKEN))
    assert await creds.refresh() is False
    await token_of(creds)
    assert [r.status for r in iam_requests(iam_sim)] == [201, 500, 201]


async def test_wrong_password_is_a_useful_error_without_secrets(
    session: aiohttp.ClientSession,
    url: str,
    iam_sim: Simulator,
    clock: Clock,
    observed: Observed,
) -> None:
    creds = make_credentials(session, url, clock, observed, password=WRONG_PASSWORD)
    with pytest.raises(DliApiError) as info:
        await token_of(creds)
    err = info.value
    assert (err.operation, err.code, err.status) == (IAM_TOKEN, "401", 401)
    assert err.error_msg == "The username or password is wrong."
    assert "password is wrong" in str(err)
    assert_no_secrets(str(err), repr(err), err.describe(), repr(creds), str(creds))
    assert [(op, code) for op, code, _ in observed] == [(IAM_TOKEN, "401")]


async def test_wrong_password_backs_off_so_iam_does_not_lock_the_user_out(
    session: aiohttp.ClientSession,
    url: str,
    iam_sim: Simulator,
    clock: Clock,
    observed: Observed,
) -> None:
    creds = make_credentials(session, url, clock, observed, password=WRONG_PASSWORD)
    for _ in range(3):
        with pytest.raises(DliApiError, match="password is wrong"):
            await token_of(creds)
    assert await creds.refresh() is False
    assert len(iam_requests(iam_sim)) == 1
    clock.now += REJECTED_BACKOFF
    with pytest.raises(DliApiError):
        await token_of(creds)
    assert len(iam_requests(iam_sim)) == 2
    clock.now += REJECTED_BACKOFF  # the pause doubled
    with pytest.raises(DliApiError):
        await token_of(creds)
    assert len(iam_requests(iam_sim)) == 2


async def test_transient_iam_failures_are_observed_and_not_backed_off(
    iam_sim: Simulator, creds: IamTokenCredentials, observed: Observed
) -> None:
    iam_sim.inject_fault(Fault(status=500, operation=IAM_TOKEN))
    with pytest.raises(DliApiError) as info:
        await token_of(creds)
    assert (info.value.code, info.value.error_msg) == ("500", "Server-side errors occur.")
    await token_of(creds)
    assert [(op, code) for op, code, _ in observed] == [(IAM_TOKEN, "500"), (IAM_TOKEN, "201")]
    assert all(seconds >= 0 for _, _, seconds in observed)


async def test_iam_timeout_is_observed_as_timeout(
    session: aiohttp.ClientSession,
    url: str,
    iam_sim: Simulator,
    clock: Clock,
    observed: Observed,
) -> None:
    creds = make_credentials(session, url, clock, observed, timeout=0.1)
    iam_sim.inject_fault(Fault(status=201, delay=0.5, operation=IAM_TOKEN))
    with pytest.raises(DliApiError) as info:
        await token_of(creds)
    assert (info.value.operation, info.value.code) == (IAM_TOKEN, "timeout")
    assert [(op, code) for op, code, _ in observed] == [(IAM_TOKEN, "timeout")]


@pytest.mark.parametrize(
    ("headers", "body", "detail"),
    [
        ({}, b'{"token": {"expires_at": "2030-01-01T00:00:00Z"}}', "X-Subject-Token"),
        ({"X-Subject-Token": "t"}, b"<html>hi</html>", "not JSON"),
        ({"X-Subject-Token": "t"}, b'{"token": {}}', "expires_at"),
        ({"X-Subject-Token": "t"}, b'{"token": {"expires_at": "soon"}}', "expires_at"),
        ({"X-Subject-Token": "t"}, b'{"token": {"expires_at": "2020-01-01T00:00:00Z"}}', "expired"),
    ],
)
async def test_unusable_iam_answer_is_an_error(
    iam_sim: Simulator,
    creds: IamTokenCredentials,
    observed: Observed,
    headers: dict[str, str],
    body: bytes,
    detail: str,
) -> None:
    iam_sim.inject_fault(Fault(status=201, headers=headers, body=body, operation=IAM_TOKEN))
    with pytest.raises(DliApiError, match=detail) as info:
        await token_of(creds)
    assert (info.value.code, info.value.status) == ("error", 201)
    assert [(op, code) for op, code, _ in observed] == [(IAM_TOKEN, "error")]


async def test_without_issued_at_expiry_is_read_against_the_clock(
    iam_sim: Simulator, creds: IamTokenCredentials, clock: Clock
) -> None:
    expires = datetime.fromisoformat("2030-01-01T00:00:00.000000Z").timestamp()
    clock.now = expires - 7200  # 2 h lifetime: renewed 12 min before expiry
    body = b'{"token": {"expires_at": "2030-01-01T00:00:00.000000Z"}}'
    iam_sim.inject_fault(
        Fault(status=201, headers={"X-Subject-Token": "first"}, body=body, operation=IAM_TOKEN)
    )
    assert await token_of(creds) == "first"
    clock.now = expires - 721
    assert await token_of(creds) == "first"
    clock.now = expires - 719
    assert await token_of(creds) != "first"


async def test_token_never_shows_in_repr(creds: IamTokenCredentials) -> None:
    token = await token_of(creds)
    assert token not in repr(creds) and USER in repr(creds)
    assert_no_secrets(repr(creds))


async def test_password_target_polls_end_to_end(
    session: aiohttp.ClientSession, url: str, iam_sim: Simulator, observed: Observed
) -> None:
    target = make_target("iam", url, auth=PasswordAuth(USER, Secret(PASSWORD), DOMAIN, url))

    def observe(operation: str, code: str, seconds: float) -> None:
        observed.append((operation, code, seconds))

    creds = credentials_for(target, session, observe)
    assert isinstance(creds, IamTokenCredentials)
    client = make_api(
        session,
        endpoint=target.endpoint,
        project_id=target.project_id,
        credentials=creds,
        timeout=target.timeout,
        observe=observe,
    )
    jobs = await client.list_jobs()
    assert sorted(job.job_id for job in jobs) == sorted(j.job_id for j in iam_sim.jobs(PROJECT))
    assert [(op, code) for op, code, _ in observed] == [(IAM_TOKEN, "201"), ("list_jobs", "200")]
    assert_no_secrets(repr(creds), repr(target))


# --- the simulated IAM ----------------------------------------------------------------------


async def test_iam_issues_a_project_scoped_token(
    session: aiohttp.ClientSession, url: str, iam_sim: Simulator
) -> None:
    status, body, token = await post_login(session, url, login_body())
    assert status == 201 and token
    issued = datetime.fromisoformat(body["token"]["issued_at"]).timestamp()
    expires = datetime.fromisoformat(body["token"]["expires_at"]).timestamp()
    assert body["token"]["expires_at"].endswith("Z")
    assert (issued, expires) == (T0, T0 + 86_400)
    assert body["token"]["project"]["id"] == PROJECT
    assert body["token"]["project"]["name"] == "cn-north-4"
    assert PASSWORD not in json.dumps(body)
    status, _ = await list_with(session, url, {AUTH_TOKEN_HEADER: token})
    assert status == 200
    assert iam_sim.request_log[-1].user == USER


async def test_iam_scopes_by_project_name(
    session: aiohttp.ClientSession, url: str, iam_sim: Simulator
) -> None:
    iam_sim.add_project("other-project")
    status, body, _ = await post_login(session, url, login_body(name="cn-north-4"))
    assert (status, body["token"]["project"]["id"]) == (201, PROJECT)
    status, body, _ = await post_login(session, url, login_body(id="other-project"))
    assert (status, body["token"]["project"]["name"]) == (201, "cn-north-4_other-project")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (login_body(password="nope"), 401, "The username or password is wrong."),
        (login_body(domain="other"), 401, "The username or password is wrong."),
        (login_body(user="nobody"), 401, "The username or password is wrong."),
        (login_body(id="no-such-project"), 401, "The project in the scope does not exist."),
        ({"auth": {"identity": login_body()["auth"]["identity"]}}, 400, "auth.scope"),
        ({"auth": {**login_body()["auth"], "scope": {"project": {}}}}, 400, "auth.scope.project"),
        ("just a string", 400, "auth"),
    ],
)
async def test_iam_rejects_bad_logins_with_its_error_body(
    session: aiohttp.ClientSession, url: str, body: object, status: int, message: str
) -> None:
    got_status, got, token = await post_login(session, url, body)
    assert (got_status, got["error"]["code"], token) == (status, status, None)
    assert message in got["error"]["message"] and got["error"]["title"]


async def test_iam_rejects_other_methods_and_bodies_that_are_not_json(
    session: aiohttp.ClientSession, url: str
) -> None:
    body = login_body()
    body["auth"]["identity"]["methods"] = ["token"]
    status, got, _ = await post_login(session, url, body)
    assert (status, got["error"]["code"]) == (400, 400)
    async with session.post(url + "/v3/auth/tokens", data=b"{") as resp:
        assert resp.status == 400 and "JSON" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("case", ["unknown", "expired", "revoked"])
async def test_dli_rejects_tokens_it_did_not_issue_or_that_ended(
    session: aiohttp.ClientSession,
    url: str,
    iam_sim: Simulator,
    sim_clock: Clock,
    case: str,
) -> None:
    _, _, token = await post_login(session, url, login_body())
    assert token is not None
    if case == "unknown":
        token = token[:-4] + "AAAA"
    elif case == "expired":
        sim_clock.now += iam_sim.token_ttl
    else:
        iam_sim.revoke_tokens()
    status, body = await list_with(session, url, {AUTH_TOKEN_HEADER: token})
    assert (status, body["error_code"]) == (401, "APIG.0301")
    assert iam_sim.request_log[-1].user is None


async def test_faults_without_an_operation_leave_iam_alone(
    session: aiohttp.ClientSession, url: str, iam_sim: Simulator
) -> None:
    iam_sim.inject_fault(Fault(status=503))
    status, _, token = await post_login(session, url, login_body())
    assert status == 201 and token
    status, _ = await list_with(session, url, {AUTH_TOKEN_HEADER: token})
    assert status == 503


# --- IAM error bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error_code", "message"),
    [
        (
            {"error": {"code": 401, "message": "The username or password is wrong.", "title": "x"}},
            None,
            "The username or password is wrong.",
        ),
        ({"error": {"code": 403, "title": "Forbidden"}}, "403", "Forbidden"),
        ({"error": {"code": "IAM.0011", "message": "Locked."}}, "IAM.0011", "Locked."),
        ({"error_code": "IAM.0001", "error_msg": "Bad."}, "IAM.0001", "Bad."),
    ],
)
def test_iam_error_bodies_give_useful_errors(
    body: dict[str, Any], error_code: str | None, message: str
) -> None:
    err = error_from_body(IAM_TOKEN, 401, json.dumps(body).encode(), "rid")
    assert (err.code, err.error_code, err.error_msg, err.request_id) == (
        "401",
        error_code,
        message,
        "rid",
    )


async def test_a_rejected_password_is_counted_once_as_iam_not_as_a_dli_call(
    session: aiohttp.ClientSession, url: str, iam_sim: Simulator, observed: Observed
) -> None:
    target = make_target("iam", url, auth=PasswordAuth(USER, Secret("wrong"), DOMAIN, url))

    def observe(operation: str, code: str, seconds: float) -> None:
        observed.append((operation, code, seconds))

    client = make_api(
        session,
        endpoint=target.endpoint,
        project_id=target.project_id,
        credentials=credentials_for(target, session, observe),
        timeout=target.timeout,
        observe=observe,
    )
    with pytest.raises(DliApiError) as caught:
        await client.list_jobs()

    assert caught.value.operation == IAM_TOKEN
    assert [(op, code) for op, code, _ in observed] == [(IAM_TOKEN, "401")]
    assert [r.operation for r in iam_sim.request_log] == [IAM_TOKEN]
