"""--web.config.file: loading and validation, real HTTPS with trustme certificates.

The basic-auth middleware itself is tested in test_basicauth.py.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from exporter.basicauth import basic_auth_middleware
from exporter.config.problems import WebConfigError
from exporter.config.servertls import TlsConfig
from exporter.config.web import WebConfig, load_web_config, ssl_context

PASSWORD = "wonderland"
BOB_PASSWORD = "pässwörd ✓"
ALICE_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
BOB_HASH = bcrypt.hashpw(BOB_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture
def tls_dir(tmp_path: Path, server_cert: trustme.LeafCert, ca: trustme.CA) -> Path:
    """A directory with server.crt and server.key, plus other.key (not matching)."""
    server_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    server_cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.issue_cert("other.example").private_key_pem.write_to_path(str(tmp_path / "other.key"))
    return tmp_path


def write_config(directory: Path, text: str, name: str = "web.yml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _handler(request: web.Request) -> web.Response:
    """Answers with the path, and the TLS version in a header when over TLS."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    headers = {"X-TLS-Version": ssl_object.version()} if ssl_object else {}
    return web.Response(text=f"ok {request.path}\n", headers=headers)


@asynccontextmanager
async def serve(config: WebConfig) -> AsyncIterator[str]:
    """A tiny app with the exporter's paths, wrapped in the config's auth and TLS."""
    app = web.Application()
    middleware = basic_auth_middleware(config)
    if middleware is not None:
        app.middlewares.append(middleware)
    for path in ("/metrics", "/-/healthy", "/-/ready"):
        app.router.add_get(path, _handler)
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl_context(config)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"{'https' if context else 'http'}://{host}:{port}"
    finally:
        await runner.cleanup()


def client_context(
    ca: trustme.CA | None, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    if max_version is not None:
        context.maximum_version = max_version
    return context


async def fetch(
    url: str, *, ssl_ctx: ssl.SSLContext | None = None, authorization: str | None = None
) -> tuple[int, dict[str, str], str, str | None]:
    """GET ``url``; returns status, headers, body and the TLS version the server saw."""
    connector = aiohttp.TCPConnector(ssl=ssl_ctx) if ssl_ctx else None
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, headers=headers) as resp,
    ):
        body = await resp.text()
        return resp.status, dict(resp.headers), body, resp.headers.get("X-TLS-Version")


# --------------------------------------------------------------------------- loading


def test_loads_full_config_with_paths_relative_to_the_file(
    tls_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = write_config(
        tls_dir,
        f"""
tls_server_config:
  cert_file: server.crt
  key_file: {tls_dir / "server.key"}
  min_version: TLS13
basic_auth_users:
  alice: {ALICE_HASH}
  "bob": '{BOB_HASH}'
unauthenticated_paths: ["/-/healthy", "/-/ready", "/-/healthy"]
""",
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load_web_config(path)
    assert config.tls == TlsConfig(
        tls_dir / "server.crt", tls_dir / "server.key", ssl.TLSVersion.TLSv1_3, None
    )
    assert dict(config.users) == {"alice": ALICE_HASH.encode(), "bob": BOB_HASH.encode()}
    assert config.unauthenticated_paths == {"/-/healthy", "/-/ready"}
    assert config.source == str(path)
    context = ssl_context(config)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_auth_only_config_has_no_tls_and_tls_only_config_has_no_middleware(
    tls_dir: Path,
) -> None:
    auth_only = load_web_config(
        write_config(tls_dir, f"basic_auth_users: {{alice: '{ALICE_HASH}'}}")
    )
    assert auth_only.tls is None
    assert ssl_context(auth_only) is None
    assert basic_auth_middleware(auth_only) is not None
    tls_only = load_web_config(
        write_config(tls_dir, "tls_server_config: {cert_file: server.crt, key_file: server.key}")
    )
    assert tls_only.tls is not None
    assert tls_only.tls.min_version == ssl.TLSVersion.TLSv1_2
    assert basic_auth_middleware(tls_only) is None


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_accepts_every_bcrypt_prefix(tmp_path: Path, prefix: str) -> None:
    hashed = prefix + ALICE_HASH[4:]
    config = load_web_config(write_config(tmp_path, f"basic_auth_users:\n  alice: '{hashed}'\n"))
    assert config.users["alice"] == hashed.encode()


BAD_CONFIGS: list[tuple[str, str, list[str]]] = [
    ("empty file", "", [": is empty"]),
    ("only comments", "# nothing\n", [": is empty"]),
    ("not a mapping", "- a\n- b\n", [": must be a mapping of settings, not list"]),
    ("invalid YAML", "basic_auth_users: [\n", [": invalid YAML at line"]),
    (
        "unknown keys with hints",
        "tls_config: {}\ntls_server_config: {cert_file: server.crt, key_file: server.key, "
        "min_versoin: TLS12}\n",
        [
            ': tls_config: unknown key (did you mean "tls_server_config"?)',
            ': tls_server_config.min_versoin: unknown key (did you mean "min_version"?)',
        ],
    ),
    (
        "toolkit keys we do not support",
        "http_server_config: {http2: false}\nrate_limit: {interval: 1s}\n"
        "auth_excluded_paths: [/metrics]\n"
        "tls_server_config: {cert_file: server.crt, key_file: server.key, "
        "client_ca: inline, client_allowed_sans: [a], "
        "cipher_suites: [TLS_AES_128_GCM_SHA256]}\n",
        [
            ": http_server_config: is not supported by dli-exporter",
            ": rate_limit: is not supported by dli-exporter",
            ": auth_excluded_paths: is not supported by dli-exporter; use unauthenticated_paths",
            ": tls_server_config.client_ca: is not supported by dli-exporter",
            ": tls_server_config.client_allowed_sans: is not supported by dli-exporter",
            ": tls_server_config.cipher_suites: is not supported by dli-exporter",
        ],
    ),
    (
        "missing cert and key files",
        "tls_server_config: {cert_file: nope.crt, key_file: /nonexistent/nope.key}\n",
        [
            ": tls_server_config.cert_file: cannot read ",
            "nope.crt': No such file or directory",
            ": tls_server_config.key_file: cannot read '/nonexistent/nope.key'",
        ],
    ),
    (
        "cert and key required",
        "tls_server_config: {min_version: TLS12}\n",
        [": tls_server_config.cert_file: is required", ": tls_server_config.key_file: is required"],
    ),
    (
        "key not matching cert",
        "tls_server_config: {cert_file: server.crt, key_file: other.key}\n",
        [": tls_server_config.key_file: does not match the certificate in cert_file"],
    ),
    (
        "cert and key swapped",
        "tls_server_config: {cert_file: server.key, key_file: server.crt}\n",
        [
            ": tls_server_config.cert_file: does not contain a PEM certificate",
            ": tls_server_config.key_file: does not contain a PEM private key",
        ],
    ),
    (
        "encrypted key",
        "tls_server_config: {cert_file: server.crt, key_file: encrypted.key}\n",
        [": tls_server_config.key_file: is encrypted; passphrase-protected keys are not supported"],
    ),
    (
        "bad TLS versions",
        "tls_server_config: {cert_file: server.crt, key_file: server.key, "
        "min_version: TLS1.2, max_version: 13}\n",
        [
            ": tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, "
            "not 'TLS1.2'",
            ": tls_server_config.max_version: must be one of TLS10, TLS11, TLS12, TLS13, "
            "not integer",
        ],
    ),
    (
        "max below min",
        "tls_server_config: {cert_file: server.crt, key_file: server.key, "
        "min_version: TLS13, max_version: TLS12}\n",
        [": tls_server_config.max_version: must not be lower than min_version"],
    ),
    (
        "hashes that are not bcrypt",
        "basic_auth_users:\n  alice: hunter2-plaintext\n  bob: $1$md5salt$abcdefghijklmnopqrstuv\n"
        f"  carol: '{ALICE_HASH[:-1]}'\n  dave: '{ALICE_HASH[:28]}A{ALICE_HASH[29:]}'\n",
        [
            ": basic_auth_users.alice: is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31)",
            ": basic_auth_users.bob: is not a bcrypt hash",
            ": basic_auth_users.carol: is not a bcrypt hash",
            ": basic_auth_users.dave: is not a bcrypt hash",  # malformed salt
        ],
    ),
    (
        "wrong types",
        "tls_server_config: server.crt\nbasic_auth_users: [alice]\n"
        "unauthenticated_paths: /-/healthy\n",
        [
            ": tls_server_config: must be a mapping, not string",
            ": basic_auth_users: must be a mapping of user name to bcrypt hash, not list",
            ": unauthenticated_paths: must be a list of paths (/-/healthy or /-/ready), not string",
        ],
    ),
    (
        "wrong types inside",
        "tls_server_config: {cert_file: 12, key_file: ''}\n"
        "basic_auth_users: {alice: 12345, 42: x, 'a:b': x, carol: null}\n"
        "unauthenticated_paths: [/metrics, 7]\n",
        [
            ": tls_server_config.cert_file: must be a file name, not integer",
            ": tls_server_config.key_file: must not be empty",
            ": basic_auth_users.alice: must be a bcrypt hash string, not integer",
            ": basic_auth_users.42: user names must be strings, not integer (quote it)",
            ": basic_auth_users.a:b: user names must be non-empty and must not contain ':'",
            ": basic_auth_users.carol: must be a bcrypt hash string, not null",
            ": unauthenticated_paths[0]: must be /-/healthy or /-/ready, not '/metrics'",
            ": unauthenticated_paths[1]: must be /-/healthy or /-/ready, not integer",
        ],
    ),
    (
        "duplicate user",
        f"basic_auth_users:\n  alice: '{ALICE_HASH}'\n  alice: '{BOB_HASH}'\n",
        [": basic_auth_users.alice: duplicate key (line 3)"],
    ),
    (
        "unauthenticated paths without users",
        "unauthenticated_paths: [/-/healthy]\n",
        [": unauthenticated_paths: has no effect without basic_auth_users"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CONFIGS], ids=[case[0] for case in BAD_CONFIGS]
)
def test_bad_config_names_file_key_and_problem(
    tls_dir: Path, server_cert: trustme.LeafCert, text: str, expected: list[str]
) -> None:
    key = serialization.load_pem_private_key(server_cert.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (tls_dir / "encrypted.key").write_bytes(encrypted)
    path = write_config(tls_dir, text)
    with pytest.raises(WebConfigError) as info:
        load_web_config(path)
    message = str(info.value)
    lines = message.splitlines()
    assert len(lines) == len(info.value.problems) >= 1
    assert all(line.startswith(f"{path}: ") for line in lines), message
    for fragment in expected:
        assert fragment in message, message
    assert all(p.source == str(path) for p in info.value.problems)


def test_all_problems_reported_together(tls_dir: Path) -> None:
    path = write_config(
        tls_dir,
        "tls_server_config: {cert_file: server.crt, key_file: other.key, min_version: SSL3}\n"
        "basic_auth_users: {alice: plaintext}\n"
        "unauthenticated_paths: [/metrics]\n"
        "extra: 1\n",
    )
    with pytest.raises(WebConfigError) as info:
        load_web_config(path)
    assert [p.key for p in info.value.problems] == [
        "extra",
        "tls_server_config.min_version",
        "tls_server_config.key_file",
        "basic_auth_users.alice",
        "unauthenticated_paths[0]",
    ]


def test_unreadable_config_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yml"
    with pytest.raises(WebConfigError, match=r"missing\.yml: cannot read: No such file"):
        load_web_config(path)


def test_ssl_context_reports_files_broken_after_loading(tls_dir: Path) -> None:
    path = write_config(tls_dir, "tls_server_config: {cert_file: server.crt, key_file: server.key}")
    config = load_web_config(path)
    (tls_dir / "server.key").write_bytes((tls_dir / "other.key").read_bytes())
    with pytest.raises(WebConfigError) as info:
        ssl_context(config)
    assert str(info.value) == (
        f"{path}: tls_server_config.key_file: does not match the certificate in cert_file"
    )


# --------------------------------------------------------------------------- no secrets shown


def test_repr_and_errors_never_show_hashes_or_passwords(tmp_path: Path) -> None:
    config = load_web_config(write_config(tmp_path, f"basic_auth_users: {{alice: '{ALICE_HASH}'}}"))
    for text in (repr(config), str(config), f"{config}"):
        assert "alice" in text
        assert ALICE_HASH not in text
        assert "$2" not in text
    bad_hash = ALICE_HASH[:-2]  # a truncated real hash
    path = write_config(
        tmp_path, f"basic_auth_users:\n  alice: hunter2-plaintext\n  bob: '{bad_hash}'\n"
    )
    with pytest.raises(WebConfigError) as info:
        load_web_config(path)
    for text in (str(info.value), repr(info.value)):
        assert "hunter2" not in text
        assert bad_hash not in text


def test_yaml_syntax_error_does_not_echo_the_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"basic_auth_users:\n  alice: '{ALICE_HASH}\n  bob: [\n")
    with pytest.raises(WebConfigError) as info:
        load_web_config(path)
    assert "invalid YAML at line" in str(info.value)
    assert ALICE_HASH[7:] not in str(info.value)


# --------------------------------------------------------------------------- TLS over the wire


@pytest.fixture
def tls_config(tls_dir: Path) -> Callable[..., WebConfig]:
    def make(**settings: str) -> WebConfig:
        lines = [f"  {key}: {value}" for key, value in settings.items()]
        text = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        return load_web_config(write_config(tls_dir, text + "\n".join(lines) + "\n"))

    return make


async def test_https_with_the_ca(tls_config: Callable[..., WebConfig], ca: trustme.CA) -> None:
    async with serve(tls_config()) as url:
        assert url.startswith("https://")
        status, _, body, version = await fetch(f"{url}/metrics", ssl_ctx=client_context(ca))
    assert (status, body) == (200, "ok /metrics\n")
    assert version == "TLSv1.3"


async def test_https_without_the_ca_fails_verification(
    tls_config: Callable[..., WebConfig],
) -> None:
    async with serve(tls_config()) as url:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await fetch(f"{url}/metrics", ssl_ctx=client_context(None))


async def test_plain_http_to_the_tls_port_fails(tls_config: Callable[..., WebConfig]) -> None:
    async with serve(tls_config()) as url:
        with pytest.raises(aiohttp.ClientError):
            await fetch(url.replace("https://", "http://") + "/metrics")


@pytest.mark.parametrize(
    ("settings", "client_max", "negotiated"),
    [
        ({}, ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
        ({"min_version": "TLS13"}, None, "TLSv1.3"),
        ({"min_version": "TLS13"}, ssl.TLSVersion.TLSv1_2, None),
        ({"max_version": "TLS12"}, None, "TLSv1.2"),
    ],
    ids=["default-accepts-tls12", "tls13-only", "tls13-rejects-tls12-client", "max-tls12"],
)
async def test_tls_versions(
    tls_config: Callable[..., WebConfig],
    ca: trustme.CA,
    settings: dict[str, str],
    client_max: ssl.TLSVersion | None,
    negotiated: str | None,
) -> None:
    async with serve(tls_config(**settings)) as url:
        client = client_context(ca, client_max)
        if negotiated is None:
            with pytest.raises(aiohttp.ClientConnectorError):
                await fetch(f"{url}/metrics", ssl_ctx=client)
        else:
            status, _, _, version = await fetch(f"{url}/metrics", ssl_ctx=client)
            assert (status, version) == (200, negotiated)


async def test_tls_and_basic_auth_together(tls_dir: Path, ca: trustme.CA) -> None:
    text = (
        "tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
        f"basic_auth_users: {{alice: '{ALICE_HASH}'}}\n"
    )
    config = load_web_config(write_config(tls_dir, text))
    async with serve(config) as url:
        denied = await fetch(f"{url}/metrics", ssl_ctx=client_context(ca))
        allowed = await fetch(
            f"{url}/metrics",
            ssl_ctx=client_context(ca),
            authorization=auth_header("alice", PASSWORD),
        )
    assert denied[0] == 401
    assert allowed[0] == 200


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (ALIAS_BOMB, "more than 100,000 YAML nodes"),
        ("x: &a [*a]\n", "recursive YAML alias"),
    ],
    ids=["alias-bomb", "recursive-alias"],
)
def test_hostile_yaml_is_a_problem_not_a_hang(tmp_path: Path, text: str, problem: str) -> None:
    """The web config shares the main config's loader and its budgets."""
    with pytest.raises(WebConfigError, match=problem):
        load_web_config(write_config(tmp_path, text))


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_pem_files_that_are_not_regular_files_are_refused(
    tls_dir: Path, special: str, tmp_path: Path
) -> None:
    """A FIFO would hang the read (and the TLS loader); /dev/zero would fill memory."""
    if special == "fifo":
        fifo = tmp_path / "cert.fifo"
        os.mkfifo(fifo)
        cert = str(fifo)
    else:
        cert = special
    path = write_config(
        tls_dir,
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: server.key\n",
    )
    with pytest.raises(WebConfigError, match=r"cert_file: cannot read .*is not a regular file"):
        load_web_config(path)
