"""--web.config.file is re-read on reload (POST /-/reload, SIGHUP) with the main config.

Everything runs through `exporter.cli.serve` on loopback: the guarded listener with real TLS
(trustme certificates in real files), basic auth, and the reload path with its metric and log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import os
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import bcrypt
import pytest
import trustme
from aiohttp import web as aiohttp_web

from exporter.cli import Listener, serve
from exporter.config import Config, ConfigError, ConfigProblem
from exporter.config.web import load_web_settings
from exporter.liveweb import LiveWebConfig
from exporter.supervisor import ConfigChange
from exporter.web import EXPORTER, create_app
from tests.conftest import make_target

ALICE_PASSWORD = "alice-secret-pw-4711"
BOB_PASSWORD = "bob-secret-pw-0815"
WRONG_PASSWORD = "wrong-pw-31337"
ALICE_HASH = bcrypt.hashpw(ALICE_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
BOB_HASH = bcrypt.hashpw(BOB_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
#: A target nobody answers for: polls fail fast, the web side is all these tests look at.
NOWHERE = "http://127.0.0.1:9"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_leaf(directory: Path, leaf: trustme.LeafCert, name: str) -> None:
    leaf.cert_chain_pems[0].write_to_path(str(directory / f"{name}.crt"))
    leaf.private_key_pem.write_to_path(str(directory / f"{name}.key"))


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def web_yaml(
    *,
    cert: str | None = "server",
    users: dict[str, str] | None = None,
    paths: tuple[str, ...] = (),
    extra_tls: str = "",
) -> str:
    text = ""
    if cert is not None:
        text += f"tls_server_config:\n  cert_file: {cert}.crt\n  key_file: {cert}.key\n"
        text += extra_tls
    if users:
        text += "basic_auth_users:\n" + "".join(f"  {u}: '{h}'\n" for u, h in users.items())
    if paths:
        text += f"unauthenticated_paths: [{', '.join(paths)}]\n"
    return text


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Connection:
    """One raw HTTP/1.1 keep-alive connection (optionally TLS) to the exporter."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def peer_certificate(self) -> bytes | None:
        ssl_object = self.writer.get_extra_info("ssl_object")
        return None if ssl_object is None else ssl_object.getpeercert(binary_form=True)

    async def request(
        self, path: str, *, method: str = "GET", authorization: str | None = None
    ) -> tuple[int, str]:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 0"]
        if authorization is not None:
            lines.append(f"Authorization: {authorization}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(15):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await self.reader.readexactly(length)
        return status, body.decode()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()


@asynccontextmanager
async def connect(port: int, context: ssl.SSLContext | None) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1" if context else None
    )
    connection = Connection(reader, writer)
    try:
        yield connection
    finally:
        await connection.close()


async def fetch(
    port: int,
    context: ssl.SSLContext | None,
    path: str,
    *,
    method: str = "GET",
    authorization: str | None = None,
) -> tuple[int, str]:
    """One request on a new connection."""
    async with connect(port, context) as connection:
        return await connection.request(path, method=method, authorization=authorization)


async def refused(port: int, context: ssl.SSLContext | None, path: str = "/-/healthy") -> bool:
    """True when a new connection gets no HTTP answer (the TLS handshake was refused)."""
    try:
        await fetch(port, context, path)
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, EOFError):
        return True
    return False


class MainConfig:
    """The main config a reload reads: the running one, or a problem (``invalid``)."""

    def __init__(self) -> None:
        self.config = Config(targets=(make_target("a", NOWHERE),), source="<test>")
        self.invalid = False

    def __call__(self) -> Config:
        if self.invalid:
            raise ConfigError([ConfigProblem("main.yaml", "targets[0].region", "is required")])
        return self.config


@asynccontextmanager
async def exporter(
    web_path: Path, caplog: pytest.LogCaptureFixture, main: MainConfig | None = None
) -> AsyncIterator[int]:
    """`cli.serve` with ``web_path`` and lifecycle on; yields the port it listens on."""
    caplog.set_level(logging.DEBUG)
    main = main or MainConfig()
    listener = Listener("127.0.0.1", 0, load_web_settings(web_path), web_config_file=str(web_path))
    serving = asyncio.create_task(
        serve(main.config, listener, load_config=main, enable_lifecycle=True)
    )
    try:
        async with asyncio.timeout(10):
            while not (records := [r for r in caplog.records if r.getMessage() == "listening"]):
                await asyncio.sleep(0.01)
        address: str = records[-1].fields["address"]  # type: ignore[attr-defined]
        yield int(address.rsplit(":", 1)[1])
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def reload_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.fields["problems"]  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "config reload failed; keeping the running config"
    ]


def last_reload_successful(metrics: str) -> float:
    line = next(
        x for x in metrics.splitlines() if x.startswith("dli_config_last_reload_successful")
    )
    return float(line.split()[-1])


@pytest.fixture
def tls_dir(tmp_path: Path, ca: trustme.CA) -> Path:
    write_leaf(tmp_path, ca.issue_cert("127.0.0.1"), "server")
    return tmp_path


@pytest.fixture
def client(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# --------------------------------------------------------------------------- certificate rotation


async def test_a_reload_rotates_the_certificate_for_new_connections_only(
    tls_dir: Path, ca: trustme.CA, client: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(web_yaml())
    old = der_of(tls_dir / "server.crt")
    async with exporter(web, caplog) as port, connect(port, client) as kept:
        assert await kept.request("/-/healthy") == (200, "Healthy\n")
        assert kept.peer_certificate == old

        new_leaf = ca.issue_cert("127.0.0.1")
        write_leaf(tls_dir, new_leaf, "rotated")
        web.write_text(web_yaml(cert="rotated"))
        status, text = await fetch(port, client, "/-/reload", method="POST")
        assert (status, text) == (200, "Reloaded. No target changed.\n")

        async with connect(port, client) as fresh:
            assert await fresh.request("/-/healthy") == (200, "Healthy\n")
            assert fresh.peer_certificate == der(new_leaf)
        # The connection opened before the reload keeps its TLS session until it closes.
        assert await kept.request("/-/healthy") == (200, "Healthy\n")
        assert kept.peer_certificate == old
    reloaded = [r for r in caplog.records if r.getMessage() == "config reloaded"]
    assert reloaded[-1].fields["web_config"] == str(web)  # type: ignore[attr-defined]


def der_of(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def pem_body(path: Path) -> list[str]:
    """The base64 lines of a PEM file (the key material itself)."""
    return [line for line in path.read_text().splitlines() if line and "-----" not in line]


async def test_rewritten_certificate_files_are_picked_up_by_a_reload(
    tls_dir: Path, ca: trustme.CA, client: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    """cert-manager style: same file names, new content; the web config file is unchanged."""
    web = tls_dir / "web.yml"
    web.write_text(web_yaml())
    async with exporter(web, caplog) as port:
        new_leaf = ca.issue_cert("127.0.0.1")
        write_leaf(tls_dir, new_leaf, "server")
        assert (await fetch(port, client, "/-/reload", method="POST"))[0] == 200
        async with connect(port, client) as fresh:
            assert await fresh.request("/-/healthy") == (200, "Healthy\n")
            assert fresh.peer_certificate == der(new_leaf)


# --------------------------------------------------------------------------- users


async def test_users_added_and_removed_by_sighup_apply_from_the_next_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = tmp_path / "web.yml"
    web.write_text(web_yaml(cert=None, users={"alice": ALICE_HASH}))
    alice, bob = basic("alice", ALICE_PASSWORD), basic("bob", BOB_PASSWORD)
    async with exporter(web, caplog) as port:
        assert await fetch(port, None, "/-/healthy", authorization=alice) == (200, "Healthy\n")
        assert (await fetch(port, None, "/-/healthy", authorization=alice))[0] == 200  # cached
        assert (await fetch(port, None, "/-/healthy"))[0] == 401
        assert (await fetch(port, None, "/-/healthy", authorization=bob))[0] == 401
        status, metrics = await fetch(port, None, "/metrics", authorization=alice)
        assert 'dli_exporter_http_auth_checks_total{result="cached_success"} 2.0' in metrics

        web.write_text(web_yaml(cert=None, users={"bob": BOB_HASH}, paths=("/-/healthy",)))
        os.kill(os.getpid(), signal.SIGHUP)
        async with asyncio.timeout(10):
            while not any(r.getMessage() == "config reloaded" for r in caplog.records):
                await asyncio.sleep(0.01)

        # alice's verified login was cached: it must be gone with her.
        assert (await fetch(port, None, "/metrics", authorization=alice))[0] == 401
        status, metrics = await fetch(port, None, "/metrics", authorization=bob)
        assert status == 200
        assert last_reload_successful(metrics) == 1.0
        assert await fetch(port, None, "/-/healthy") == (200, "Healthy\n")  # now open
        assert (await fetch(port, None, "/-/ready"))[0] == 401


async def test_basic_auth_can_be_turned_on_and_off_by_a_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = tmp_path / "web.yml"
    web.write_text(web_yaml(cert=None, users={"alice": ALICE_HASH}))
    alice = basic("alice", ALICE_PASSWORD)
    async with exporter(web, caplog) as port:
        web.write_text("basic_auth_users: {}\n")  # valid: no TLS, no users
        assert (await fetch(port, None, "/-/reload", method="POST", authorization=alice))[0] == 200
        assert (await fetch(port, None, "/metrics"))[0] == 200
        web.write_text(web_yaml(cert=None, users={"alice": ALICE_HASH}))
        assert (await fetch(port, None, "/-/reload", method="POST"))[0] == 200
        assert (await fetch(port, None, "/metrics"))[0] == 401
        assert (await fetch(port, None, "/metrics", authorization=alice))[0] == 200


# --------------------------------------------------------------------------- failures


BROKEN: dict[str, tuple[Callable[[Path, trustme.CA], object], str]] = {
    "bad hash": (
        lambda d, _ca: (d / "web.yml").write_text(
            web_yaml(users={"alice": ALICE_HASH, "bob": "hunter2"})
        ),
        "web.yml: basic_auth_users.bob: is not a bcrypt hash",
    ),
    "key no longer matches": (
        lambda d, ca: ca.issue_cert("x.example").private_key_pem.write_to_path(
            str(d / "server.key")
        ),
        "web.yml: tls_server_config.key_file: does not match the certificate in cert_file",
    ),
    "cert file gone": (
        lambda d, _ca: (d / "server.crt").unlink(),
        "web.yml: tls_server_config.cert_file: cannot read",
    ),
    "TLS removed": (
        lambda d, _ca: (d / "web.yml").write_text(web_yaml(cert=None, users={"bob": BOB_HASH})),
        "web.yml: tls_server_config: cannot be removed by a reload",
    ),
    "unsupported client auth": (
        lambda d, _ca: (d / "web.yml").write_text(
            web_yaml(users={"bob": BOB_HASH}, extra_tls="  client_auth_type: RequestClientCert\n")
        ),
        "web.yml: tls_server_config.client_auth_type: RequestClientCert is not supported",
    ),
}


@pytest.mark.parametrize("breakage", BROKEN)
async def test_an_invalid_web_config_on_reload_keeps_the_running_one(
    tls_dir: Path,
    ca: trustme.CA,
    client: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
    breakage: str,
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(web_yaml(users={"alice": ALICE_HASH}))
    served = der_of(tls_dir / "server.crt")
    good = (tls_dir / "server.crt").read_bytes(), (tls_dir / "server.key").read_bytes()
    alice = basic("alice", ALICE_PASSWORD)
    break_it, problem = BROKEN[breakage]
    async with exporter(web, caplog) as port:
        break_it(tls_dir, ca)
        status, text = await fetch(port, client, "/-/reload", method="POST", authorization=alice)
        assert status == 500
        assert text.startswith("Reload failed; the running config is kept:\n")
        assert problem in text
        assert [problem in p for p in reload_failures(caplog)] == [True]

        async with connect(port, client) as fresh:  # same certificate, same users
            status, metrics = await fresh.request("/metrics", authorization=alice)
            assert fresh.peer_certificate == served
        assert status == 200
        assert last_reload_successful(metrics) == 0.0

        # Fixed: the next reload works.
        (tls_dir / "server.crt").write_bytes(good[0])
        (tls_dir / "server.key").write_bytes(good[1])
        web.write_text(web_yaml(users={"bob": BOB_HASH}))
        status, text = await fetch(port, client, "/-/reload", method="POST", authorization=alice)
        assert status == 200
        status, metrics = await fetch(
            port, client, "/metrics", authorization=basic("bob", BOB_PASSWORD)
        )
        assert status == 200
        assert last_reload_successful(metrics) == 1.0


async def test_tls_cannot_be_turned_on_by_a_reload(
    tls_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(web_yaml(cert=None, users={"alice": ALICE_HASH}))
    alice = basic("alice", ALICE_PASSWORD)
    async with exporter(web, caplog) as port:
        web.write_text(web_yaml(users={"alice": ALICE_HASH}))
        status, text = await fetch(port, None, "/-/reload", method="POST", authorization=alice)
        assert status == 500
        assert "web.yml: tls_server_config: cannot be added by a reload" in text
        assert (await fetch(port, None, "/-/healthy", authorization=alice))[0] == 200  # plain


async def test_main_and_web_config_are_reloaded_all_or_nothing(
    tls_dir: Path, ca: trustme.CA, client: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(web_yaml(users={"alice": ALICE_HASH}))
    served = der_of(tls_dir / "server.crt")
    alice, bob = basic("alice", ALICE_PASSWORD), basic("bob", BOB_PASSWORD)
    main = MainConfig()
    async with exporter(web, caplog, main) as port:
        # Web config valid (new user, new certificate), main config invalid: neither applies.
        write_leaf(tls_dir, ca.issue_cert("127.0.0.1"), "rotated")
        web.write_text(web_yaml(cert="rotated", users={"bob": BOB_HASH}))
        main.invalid = True
        status, text = await fetch(port, client, "/-/reload", method="POST", authorization=alice)
        assert status == 500
        assert "main.yaml: targets[0].region: is required" in text
        async with connect(port, client) as fresh:
            assert (await fresh.request("/metrics", authorization=alice))[0] == 200
            assert fresh.peer_certificate == served
        assert (await fetch(port, client, "/metrics", authorization=bob))[0] == 401

        # Main config valid (a new target), web config invalid: neither applies.
        main.invalid = False
        main.config = Config(
            targets=(make_target("a", NOWHERE), make_target("b", NOWHERE)), source="<test>"
        )
        web.write_text(web_yaml(cert="rotated", users={"bob": "not-a-hash"}))
        status, text = await fetch(port, client, "/-/reload", method="POST", authorization=alice)
        assert status == 500
        assert "web.yml: basic_auth_users.bob: is not a bcrypt hash" in text
        status, page = await fetch(port, client, "/", authorization=alice)
        assert "<tr><td>a</td>" in page
        assert "<tr><td>b</td>" not in page

        # Both invalid: both files' problems in one answer.
        main.invalid = True
        status, text = await fetch(port, client, "/-/reload", method="POST", authorization=alice)
        assert "main.yaml: targets[0].region" in text
        assert "web.yml: basic_auth_users.bob" in text

        # Both valid: both apply.
        main.invalid = False
        web.write_text(web_yaml(cert="rotated", users={"bob": BOB_HASH}))
        status, text = await fetch(port, client, "/-/reload", method="POST", authorization=alice)
        assert (status, text) == (200, "Reloaded. added: b\n")
        async with connect(port, client) as fresh:
            status, page = await fresh.request("/", authorization=bob)
            assert fresh.peer_certificate != served
        assert status == 200
        assert "<tr><td>b</td>" in page


async def test_no_password_hash_or_key_material_in_logs_or_answers(
    tls_dir: Path, ca: trustme.CA, client: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(web_yaml(users={"alice": ALICE_HASH}))
    alice = basic("alice", ALICE_PASSWORD)
    answers: list[str] = []
    key_lines = pem_body(tls_dir / "server.key")
    async with exporter(web, caplog) as port:
        wrong = basic("alice", WRONG_PASSWORD)
        answers.append((await fetch(port, client, "/", authorization=wrong))[1])
        # A private key where the certificate belongs, a hash with a typo: both problems.
        (tls_dir / "web.yml").write_text(
            web_yaml(users={"alice": ALICE_HASH[:-1] + "!"}).replace("server.crt", "server.key")
        )
        answers.append(
            (await fetch(port, client, "/-/reload", method="POST", authorization=alice))[1]
        )
        web.write_text(web_yaml(users={"alice": ALICE_HASH}))
        ca.issue_cert("x.example").private_key_pem.write_to_path(str(tls_dir / "server.key"))
        answers.append(
            (await fetch(port, client, "/-/reload", method="POST", authorization=alice))[1]
        )
    assert len(reload_failures(caplog)) == 2
    key_lines += pem_body(tls_dir / "server.key")
    logged = "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')} {r.exc_text or ''}" for r in caplog.records
    )
    for text in (logged, *answers):
        for secret in (ALICE_PASSWORD, WRONG_PASSWORD, ALICE_HASH, ALICE_HASH[7:29], *key_lines):
            assert secret not in text
        assert "PRIVATE KEY" not in text


async def test_a_main_config_failing_to_apply_puts_the_old_web_config_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = tmp_path / "web.yml"
    web.write_text(web_yaml(cert=None, users={"alice": ALICE_HASH}))
    config = MainConfig().config
    live = LiveWebConfig(load_web_settings(web), functools.partial(load_web_settings, web))
    app = create_app(config, web_config_live=live, enable_lifecycle=True)
    exporter_ = app[EXPORTER]

    def broken(_config: Config) -> ConfigChange:
        raise RuntimeError("the supervisor broke")

    runner = aiohttp_web.AppRunner(app)
    await runner.setup()  # starts the pollers: apply() works until now
    exporter_.supervisor.apply = broken  # type: ignore[method-assign,assignment]
    web.write_text(web_yaml(cert=None, users={"bob": BOB_HASH}))
    await aiohttp_web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        alice = basic("alice", ALICE_PASSWORD)
        status, text = await fetch(port, None, "/-/reload", method="POST", authorization=alice)
        assert status == 500
        assert "unexpected RuntimeError while applying the config: the supervisor broke" in text
        assert live.settings.config.users.keys() == {"alice"}
        assert (await fetch(port, None, "/-/healthy", authorization=alice))[0] == 200
        bob = basic("bob", BOB_PASSWORD)
        assert (await fetch(port, None, "/-/healthy", authorization=bob))[0] == 401
    finally:
        await runner.cleanup()
