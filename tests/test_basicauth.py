"""Basic auth over real HTTP: credentials, caches, and the bound on bcrypt work under a flood."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import bcrypt
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.basicauth import (
    FAILURE_CACHE_SIZE,
    REALM,
    BasicAuth,
    PasswordCheck,
    basic_auth_middleware,
)
from exporter.config.web import WebConfig

PASSWORD = "wonderland"
BOB_PASSWORD = "pässwörd ✓"
ALICE_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))
BOB_HASH = bcrypt.hashpw(BOB_PASSWORD.encode(), bcrypt.gensalt(rounds=4))
CHALLENGE = f'Basic realm="{REALM}"'
ATTACKER = "127.0.0.2"  # Linux loopback answers on all of 127/8


def auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Recorder:
    """A real bcrypt check that notes the thread it ran in, optionally held until released."""

    def __init__(self, *, held: bool = False) -> None:
        self.threads: list[threading.Thread] = []
        self.release = threading.Event()
        if not held:
            self.release.set()

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        self.threads.append(threading.current_thread())
        assert self.release.wait(30), "the test never released the bcrypt checks"
        return bcrypt.checkpw(password, hashed)


async def _handler(request: web.Request) -> web.Response:
    return web.Response(text=f"ok {request.path}\n")


@asynccontextmanager
async def serve(
    config: WebConfig | BasicAuth,
    registry: CollectorRegistry,
    checkpw: PasswordCheck = bcrypt.checkpw,
) -> AsyncIterator[str]:
    app = web.Application()
    if isinstance(config, BasicAuth):
        app.middlewares.append(config.middleware)
    else:
        middleware = basic_auth_middleware(config, registry=registry, checkpw=checkpw)
        assert middleware is not None
        app.middlewares.append(middleware)
    for path in ("/metrics", "/-/healthy", "/-/ready"):
        app.router.add_get(path, _handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def fetch(
    url: str, authorization: str | None = None, *, source: str = "127.0.0.1"
) -> tuple[int, dict[str, str], str]:
    headers = {} if authorization is None else {"Authorization": authorization}
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.text()


def checks(registry: CollectorRegistry) -> dict[str, float]:
    """``dli_exporter_http_auth_checks_total`` by result (zeros left out)."""
    values = {
        result: registry.get_sample_value("dli_exporter_http_auth_checks_total", {"result": result})
        for result in ("success", "failure", "cached_success", "cached_failure", "throttled")
    }
    return {result: value for result, value in values.items() if value}


def in_flight(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("dli_exporter_http_auth_checks_in_flight")


@pytest.fixture
def auth_config() -> WebConfig:
    return WebConfig(users={"alice": ALICE_HASH, "bob": BOB_HASH})


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


# --------------------------------------------------------------------------- credentials


async def test_right_credentials(auth_config: WebConfig, registry: CollectorRegistry) -> None:
    async with serve(auth_config, registry) as url:
        alice = await fetch(f"{url}/metrics", auth_header("alice", PASSWORD))
        bob_utf8 = await fetch(f"{url}/metrics", auth_header("bob", BOB_PASSWORD))
        lower_scheme = await fetch(
            f"{url}/metrics", auth_header("alice", PASSWORD).replace("Basic", "basic")
        )
    assert (alice[0], alice[2]) == (200, "ok /metrics\n")
    assert bob_utf8[0] == 200
    assert lower_scheme[0] == 200


BAD_AUTHORIZATION = {
    "missing": None,
    "wrong password": auth_header("alice", "wonderland2"),
    "other user's password": auth_header("alice", BOB_PASSWORD),
    "unknown user": auth_header("mallory", PASSWORD),
    "user case differs": auth_header("Alice", PASSWORD),
    "empty user": auth_header("", PASSWORD),
    "empty password": auth_header("alice", ""),
    "password too long for bcrypt": auth_header("alice", PASSWORD + "x" * 100),
    "password prefix": auth_header("alice", PASSWORD[:-1]),
    "not base64": "Basic !!!not-base64!!!",
    "no colon": "Basic " + _b64(b"alice" + PASSWORD.encode()),
    "no credentials": "Basic",
    "other scheme": "Bearer " + _b64(f"alice:{PASSWORD}".encode()),
    "non-utf8 user": "Basic " + _b64(b"\xffalice:" + PASSWORD.encode()),
}


@pytest.mark.parametrize("header", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
async def test_bad_credentials_get_401_with_challenge(
    auth_config: WebConfig, registry: CollectorRegistry, header: str | None
) -> None:
    async with serve(auth_config, registry) as url:
        status, response_headers, body = await fetch(f"{url}/metrics", header)
    assert status == 401
    assert response_headers["WWW-Authenticate"] == CHALLENGE
    assert body == "Unauthorized\n"


async def test_two_authorization_headers_are_refused(
    auth_config: WebConfig, registry: CollectorRegistry
) -> None:
    good = auth_header("alice", PASSWORD)
    async with (
        serve(auth_config, registry) as url,
        aiohttp.ClientSession() as session,
        session.get(
            f"{url}/metrics", headers=[("Authorization", good), ("Authorization", good)]
        ) as resp,
    ):
        assert resp.status == 401
    assert checks(registry) == {}  # refused before any check


@pytest.mark.parametrize(
    ("open_paths", "expected"),
    [
        ((), {"/metrics": 401, "/-/healthy": 401, "/-/ready": 401}),
        (("/-/healthy",), {"/metrics": 401, "/-/healthy": 200, "/-/ready": 401}),
        (("/-/healthy", "/-/ready"), {"/metrics": 401, "/-/healthy": 200, "/-/ready": 200}),
    ],
)
async def test_unauthenticated_paths(
    auth_config: WebConfig,
    registry: CollectorRegistry,
    open_paths: tuple[str, ...],
    expected: dict[str, int],
) -> None:
    config = WebConfig(users=auth_config.users, unauthenticated_paths=frozenset(open_paths))
    async with serve(config, registry) as url:
        statuses = {path: (await fetch(f"{url}{path}"))[0] for path in expected}
        authorized = {
            path: (await fetch(f"{url}{path}", auth_header("alice", PASSWORD)))[0]
            for path in expected
        }
    assert statuses == expected
    assert authorized == dict.fromkeys(expected, 200)


# --------------------------------------------------------------------------- caches


async def test_success_is_cached_but_other_passwords_are_still_checked(
    auth_config: WebConfig, registry: CollectorRegistry
) -> None:
    recorder = Recorder()
    right, wrong = auth_header("alice", PASSWORD), auth_header("alice", "not-" + PASSWORD)
    async with serve(auth_config, registry, recorder) as url:
        statuses = [(await fetch(f"{url}/metrics", h))[0] for h in (right, right, wrong, right)]
    assert statuses == [200, 200, 401, 200]
    assert checks(registry) == {"success": 1, "failure": 1, "cached_success": 2}
    assert len(recorder.threads) == 2
    assert threading.main_thread() not in recorder.threads  # never on the event loop


async def test_a_repeated_failure_is_answered_from_the_failure_cache(
    auth_config: WebConfig, registry: CollectorRegistry
) -> None:
    async with serve(auth_config, registry) as url:
        for user in ("alice", "mallory"):  # a known and an unknown user alike
            for _ in range(3):
                assert (await fetch(f"{url}/metrics", auth_header(user, "guess")))[0] == 401
        # Another password is a new check; the right one still works.
        assert (await fetch(f"{url}/metrics", auth_header("alice", "guess2")))[0] == 401
        assert (await fetch(f"{url}/metrics", auth_header("alice", PASSWORD)))[0] == 200
    assert checks(registry) == {"failure": 3, "cached_failure": 4, "success": 1}


async def test_unknown_user_costs_a_bcrypt_check_too(
    auth_config: WebConfig, registry: CollectorRegistry
) -> None:
    recorder = Recorder()
    async with serve(auth_config, registry, recorder) as url:
        for password in ("x", "y"):
            assert (await fetch(f"{url}/metrics", auth_header("mallory", password)))[0] == 401
    assert checks(registry) == {"failure": 2}
    assert len(recorder.threads) == 2


def test_the_dummy_hash_of_unknown_users_has_the_highest_configured_cost() -> None:
    """The unknown-user check must cost what a real user's check costs."""
    expensive = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=6))
    hashes: list[bytes] = []

    def remember(password: bytes, hashed: bytes) -> bool:
        hashes.append(hashed)
        return bcrypt.checkpw(password, hashed)

    async def scenario() -> None:
        config = WebConfig(users={"alice": ALICE_HASH, "carol": expensive})
        async with serve(config, CollectorRegistry(), remember) as url:
            assert (await fetch(f"{url}/metrics", auth_header("mallory", "x")))[0] == 401

    asyncio.run(scenario())
    assert [h[:7] for h in hashes] == [b"$2b$06$"]


async def test_the_failure_cache_is_bounded(
    auth_config: WebConfig, registry: CollectorRegistry
) -> None:
    async with (
        serve(auth_config, registry) as url,
        aiohttp.ClientSession() as session,
    ):

        async def attempt(password: str) -> int:
            headers = {"Authorization": auth_header("alice", password)}
            async with session.get(f"{url}/metrics", headers=headers) as resp:
                return resp.status

        for index in range(FAILURE_CACHE_SIZE + 1):
            assert await attempt(f"guess-{index}") == 401
        assert await attempt(f"guess-{FAILURE_CACHE_SIZE}") == 401  # the newest: cached
        assert await attempt("guess-0") == 401  # the oldest was forgotten: checked again
    assert checks(registry) == {"failure": FAILURE_CACHE_SIZE + 2, "cached_failure": 1}


@pytest.mark.parametrize(("password", "status"), [(PASSWORD, 200), ("guess", 401)])
async def test_concurrent_identical_attempts_share_one_check(
    auth_config: WebConfig, registry: CollectorRegistry, password: str, status: int
) -> None:
    recorder = Recorder()
    header = auth_header("alice", password)
    async with serve(auth_config, registry, recorder) as url, aiohttp.ClientSession() as session:

        async def get() -> int:
            async with session.get(f"{url}/metrics", headers={"Authorization": header}) as resp:
                return resp.status

        statuses = await asyncio.gather(*(get() for _ in range(5)))
    assert statuses == [status] * 5
    assert len(recorder.threads) == 1
    outcome = "success" if status == 200 else "failure"
    assert checks(registry) == {outcome: 1, f"cached_{outcome}": 4}


# --------------------------------------------------------------------------- flood


async def wait_for(condition: Callable[[], bool]) -> None:
    """Wait for something the server does on its own; the timeout only prevents a hang."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_flood_from_one_client_runs_one_check_and_leaves_room_for_others(
    auth_config: WebConfig, registry: CollectorRegistry
) -> None:
    """300 distinct wrong passwords at once: one check at a time for that client, 429 beyond."""
    recorder = Recorder(held=True)  # the first check runs until the flood has been answered
    async with serve(auth_config, registry, recorder) as url:
        flood = [
            asyncio.create_task(
                fetch(f"{url}/metrics", auth_header("alice", f"guess-{i}"), source=ATTACKER)
            )
            for i in range(300)
        ]
        await wait_for(lambda: checks(registry).get("throttled", 0) == 299)
        legitimate = asyncio.create_task(fetch(f"{url}/metrics", auth_header("bob", BOB_PASSWORD)))
        await wait_for(lambda: in_flight(registry) == 2)  # queued behind the attacker's check
        recorder.release.set()
        answers = await asyncio.gather(*flood)
        status, _, _ = await legitimate
    assert status == 200
    statuses = sorted(answer[0] for answer in answers)
    assert statuses == [401] + [429] * 299
    throttled = next(answer for answer in answers if answer[0] == 429)
    assert throttled[1]["Retry-After"] == "1"
    assert throttled[2] == "Too Many Requests\n"
    assert checks(registry) == {"failure": 1, "success": 1, "throttled": 299}
    assert len(recorder.threads) == 2


async def test_at_most_four_checks_wait_or_run_in_total(
    auth_config: WebConfig, registry: CollectorRegistry
) -> None:
    """Attackers on eight addresses: four checks queue, the rest get 429 without bcrypt."""
    recorder = Recorder(held=True)
    sources = [f"127.0.0.{n}" for n in range(2, 10)]
    async with serve(auth_config, registry, recorder) as url:
        flood = [
            asyncio.create_task(
                fetch(f"{url}/metrics", auth_header("mallory", f"g{i}"), source=sources[i % 8])
            )
            for i in range(200)
        ]
        await wait_for(lambda: checks(registry).get("throttled", 0) == 196)
        assert in_flight(registry) == 4
        recorder.release.set()
        answers = await asyncio.gather(*flood)
        # The flood is over: a fresh login gets its check at once.
        status, _, _ = await fetch(f"{url}/metrics", auth_header("alice", PASSWORD))
        assert in_flight(registry) == 0
    assert sorted(answer[0] for answer in answers) == [401] * 4 + [429] * 196
    assert status == 200
    assert checks(registry) == {"failure": 4, "success": 1, "throttled": 196}


async def test_a_flood_at_real_cost_does_not_delay_a_fresh_login() -> None:
    """bcrypt cost 10 as in production: the flood's checks stay few, the login succeeds."""
    registry = CollectorRegistry()
    config = WebConfig(
        users={
            "prometheus": bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=10)),
            "alice": ALICE_HASH,
        }
    )
    async with serve(config, registry) as url:
        flood = await asyncio.gather(
            *(
                fetch(f"{url}/metrics", auth_header("prometheus", f"x{i}"), source=ATTACKER)
                for i in range(300)
            )
        )
        status, _, _ = await fetch(f"{url}/metrics", auth_header("prometheus", "scrape-pass"))
    assert status == 200
    counts = checks(registry)
    assert counts["failure"] + counts["throttled"] == 300
    assert counts["throttled"] > 0
    # Without the bound every one of the 300 would have paid bcrypt (~3 s of CPU at cost 10).
    assert counts["failure"] < 100
    assert {answer[0] for answer in flood} <= {401, 429}


# --------------------------------------------------------------------------- logs


async def test_auth_logs_never_contain_credentials(
    auth_config: WebConfig, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(auth_config, registry) as url:
        for password in (PASSWORD, "bad-secret-guess"):
            await fetch(f"{url}/metrics", auth_header("alice", password))
    assert "basic auth: invalid credentials" in caplog.text
    for secret in (PASSWORD, "bad-secret-guess", ALICE_HASH.decode(), ALICE_HASH[7:].decode()):
        assert secret not in caplog.text


# --------------------------------------------------------------------------- update (reload)


async def test_update_removes_users_with_their_cached_logins(registry: CollectorRegistry) -> None:
    auth = BasicAuth(WebConfig(users={"alice": ALICE_HASH}), registry=registry)
    alice, bob = auth_header("alice", PASSWORD), auth_header("bob", BOB_PASSWORD)
    async with serve(auth, registry) as url:
        assert (await fetch(f"{url}/metrics", alice))[0] == 200
        assert (await fetch(f"{url}/metrics", alice))[0] == 200  # cached now
        assert (await fetch(f"{url}/metrics", bob))[0] == 401
        auth.update(
            WebConfig(users={"bob": BOB_HASH}, unauthenticated_paths=frozenset({"/-/ready"}))
        )
        assert (await fetch(f"{url}/metrics", alice))[0] == 401
        assert (await fetch(f"{url}/metrics", bob))[0] == 200  # no longer a cached failure
        assert (await fetch(f"{url}/-/ready"))[0] == 200
        # Re-adding alice with a new hash: the old password is checked against the new hash.
        new_hash = bcrypt.hashpw(b"new password", bcrypt.gensalt(rounds=4))
        auth.update(WebConfig(users={"alice": new_hash, "bob": BOB_HASH}))
        assert (await fetch(f"{url}/metrics", alice))[0] == 401
        assert (await fetch(f"{url}/metrics", auth_header("alice", "new password")))[0] == 200
        assert (await fetch(f"{url}/metrics", bob))[0] == 200
    assert checks(registry) == {"success": 3, "failure": 3, "cached_success": 2}  # bob kept his


async def test_unchanged_users_keep_their_cached_login_across_an_update(
    registry: CollectorRegistry,
) -> None:
    auth = BasicAuth(WebConfig(users={"alice": ALICE_HASH}), registry=registry)
    async with serve(auth, registry) as url:
        assert (await fetch(f"{url}/metrics", auth_header("alice", PASSWORD)))[0] == 200
        auth.update(WebConfig(users={"alice": ALICE_HASH, "bob": BOB_HASH}))
        assert (await fetch(f"{url}/metrics", auth_header("alice", PASSWORD)))[0] == 200
    assert checks(registry) == {"success": 1, "cached_success": 1}


async def test_a_check_in_flight_for_a_removed_user_is_not_cached(
    registry: CollectorRegistry,
) -> None:
    recorder = Recorder(held=True)
    auth = BasicAuth(WebConfig(users={"alice": ALICE_HASH}), registry=registry, checkpw=recorder)
    alice = auth_header("alice", PASSWORD)
    async with serve(auth, registry) as url:
        pending = asyncio.create_task(fetch(f"{url}/metrics", alice))
        await wait_for(lambda: len(recorder.threads) == 1)
        auth.update(WebConfig(users={"bob": BOB_HASH}))
        recorder.release.set()
        assert (await pending)[0] == 200  # it began before the update
        auth.update(WebConfig(users={"alice": ALICE_HASH, "bob": BOB_HASH}))
        assert (await fetch(f"{url}/metrics", alice))[0] == 200
    assert checks(registry) == {"success": 2}  # the second login ran bcrypt again


async def test_users_can_be_added_to_a_config_that_had_none() -> None:
    registry = CollectorRegistry()
    auth = BasicAuth(WebConfig(), registry=registry)
    async with serve(auth, registry) as url:
        assert (await fetch(f"{url}/metrics"))[0] == 200
        assert checks(registry) == {}
        assert in_flight(registry) is None  # no auth metrics without users
        auth.update(WebConfig(users={"alice": ALICE_HASH}))
        assert (await fetch(f"{url}/metrics"))[0] == 401
        assert (await fetch(f"{url}/metrics", auth_header("alice", PASSWORD)))[0] == 200
        auth.update(WebConfig())
        assert (await fetch(f"{url}/metrics"))[0] == 200
