"""Client certificates: ``tls_server_config.client_auth_type`` and ``client_ca_file``.

Real TLS on loopback through `exporter.cli.serve`, certificates from trustme in real files.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
import trustme

from exporter.config.problems import WebConfigError
from exporter.config.web import load_web_config, load_web_settings, ssl_context
from tests.test_webconfig_reload import exporter, fetch, refused, web_yaml, write_leaf


@pytest.fixture(scope="module")
def server_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    return trustme.CA(organization_name="client CA")


@pytest.fixture
def tls_dir(tmp_path: Path, server_ca: trustme.CA, client_ca: trustme.CA) -> Path:
    write_leaf(tmp_path, server_ca.issue_cert("127.0.0.1"), "server")
    client_ca.cert_pem.write_to_path(str(tmp_path / "clients.crt"))
    return tmp_path


def client(server_ca: trustme.CA, issuer: trustme.CA | None = None) -> ssl.SSLContext:
    """A client trusting the server; with a certificate from ``issuer`` when given."""
    context = ssl.create_default_context()
    server_ca.configure_trust(context)
    if issuer is not None:
        issuer.issue_cert("prometheus.example").configure_cert(context)
    return context


def mtls(client_auth: str, ca_file: str = "clients.crt") -> str:
    return web_yaml(extra_tls=f"  client_auth_type: {client_auth}\n  client_ca_file: {ca_file}\n")


async def test_require_and_verify_refuses_clients_without_a_good_certificate(
    tls_dir: Path,
    server_ca: trustme.CA,
    client_ca: trustme.CA,
    caplog: pytest.LogCaptureFixture,
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(mtls("RequireAndVerifyClientCert"))
    settings = load_web_settings(web)
    assert settings.tls is not None and settings.tls.verify_mode == ssl.CERT_REQUIRED
    async with exporter(web, caplog) as port:
        assert await refused(port, client(server_ca))  # no certificate
        assert await refused(port, client(server_ca, trustme.CA()))  # not from client_ca_file
        assert await refused(port, client(server_ca, server_ca))  # the server's CA is not it
        good = client(server_ca, client_ca)
        assert await fetch(port, good, "/-/healthy") == (200, "Healthy\n")


async def test_verify_if_given_lets_clients_without_a_certificate_in(
    tls_dir: Path,
    server_ca: trustme.CA,
    client_ca: trustme.CA,
    caplog: pytest.LogCaptureFixture,
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(mtls("VerifyClientCertIfGiven"))
    async with exporter(web, caplog) as port:
        assert await fetch(port, client(server_ca), "/-/healthy") == (200, "Healthy\n")
        assert await fetch(port, client(server_ca, client_ca), "/-/healthy") == (200, "Healthy\n")
        assert await refused(port, client(server_ca, trustme.CA()))  # given, but bad


async def test_the_client_ca_and_the_client_auth_type_are_reloadable(
    tls_dir: Path,
    server_ca: trustme.CA,
    client_ca: trustme.CA,
    caplog: pytest.LogCaptureFixture,
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(mtls("RequireAndVerifyClientCert"))
    other_ca = trustme.CA(organization_name="next client CA")
    other_ca.cert_pem.write_to_path(str(tls_dir / "next-clients.crt"))
    old_client, new_client = client(server_ca, client_ca), client(server_ca, other_ca)
    async with exporter(web, caplog) as port:
        assert await refused(port, new_client)
        web.write_text(mtls("RequireAndVerifyClientCert", "next-clients.crt"))
        assert (await fetch(port, old_client, "/-/reload", method="POST"))[0] == 200
        assert await fetch(port, new_client, "/-/healthy") == (200, "Healthy\n")
        assert await refused(port, old_client)
        # Back to no client certificates at all.
        web.write_text(web_yaml())
        assert (await fetch(port, new_client, "/-/reload", method="POST"))[0] == 200
        assert await fetch(port, client(server_ca), "/-/healthy") == (200, "Healthy\n")


def problems_of(web: Path) -> str:
    with pytest.raises(WebConfigError) as info:
        load_web_config(web)
    return str(info.value)


@pytest.mark.parametrize(
    ("client_auth", "problem"),
    [
        (
            "RequestClientCert",
            "tls_server_config.client_auth_type: RequestClientCert is not supported: Python's "
            "ssl cannot request a client certificate without verifying it; use "
            "VerifyClientCertIfGiven with client_ca_file",
        ),
        (
            "RequireAnyClientCert",
            "tls_server_config.client_auth_type: RequireAnyClientCert is not supported: "
            "Python's ssl cannot require a client certificate without verifying it; use "
            "RequireAndVerifyClientCert with client_ca_file",
        ),
        (
            "RequireClientCert",
            "tls_server_config.client_auth_type: RequireClientCert is not supported",
        ),
        (
            "requireandverifyclientcert",
            "tls_server_config.client_auth_type: must be one of NoClientCert, "
            "VerifyClientCertIfGiven, RequireAndVerifyClientCert, not "
            "'requireandverifyclientcert'",
        ),
        ("42", "tls_server_config.client_auth_type: must be one of NoClientCert"),
    ],
)
def test_unsupported_client_auth_types_are_config_problems(
    tls_dir: Path, client_auth: str, problem: str
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(mtls(client_auth))
    assert f"{web}: {problem}" in problems_of(web)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "client_ca_file: is required with client_auth_type RequireAndVerifyClientCert",
        ),
        (
            "  client_auth_type: VerifyClientCertIfGiven\n",
            "client_ca_file: is required with client_auth_type VerifyClientCertIfGiven",
        ),
        (
            "  client_ca_file: clients.crt\n",
            "client_ca_file: has no effect with client_auth_type NoClientCert (the default); "
            "set VerifyClientCertIfGiven or RequireAndVerifyClientCert",
        ),
        (
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: missing.crt\n",
            "client_ca_file: cannot read '{dir}/missing.crt': No such file or directory",
        ),
        (
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: .\n",
            "client_ca_file: cannot read '{dir}': is not a regular file (a directory)",
        ),
        (
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.key\n",
            "client_ca_file: does not contain a PEM certificate",
        ),
        (
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ''\n",
            "client_ca_file: must not be empty",
        ),
    ],
    ids=[
        "verify-needs-ca",
        "if-given-needs-ca",
        "ca-without-auth",
        "missing",
        "dir",
        "no-cert",
        "empty",
    ],
)
def test_client_ca_file_problems(tls_dir: Path, settings: str, problem: str) -> None:
    web = tls_dir / "web.yml"
    web.write_text(web_yaml(extra_tls=settings))
    expected = f"{web}: tls_server_config.{problem.format(dir=tls_dir)}"
    assert expected in problems_of(web).splitlines()


def test_a_client_ca_file_broken_after_loading_is_reported_when_put_in_force(
    tls_dir: Path,
) -> None:
    web = tls_dir / "web.yml"
    web.write_text(mtls("RequireAndVerifyClientCert"))
    config = load_web_config(web)
    assert config.tls is not None and config.tls.client_ca_file == tls_dir / "clients.crt"
    (tls_dir / "clients.crt").write_text("not a certificate\n")
    with pytest.raises(WebConfigError) as info:
        ssl_context(config)
    assert str(info.value) == (
        f"{web}: tls_server_config.client_ca_file: does not contain a PEM certificate"
    )


def test_a_client_ca_fifo_is_a_problem_not_a_hang(tls_dir: Path) -> None:
    (tls_dir / "clients.crt").unlink()
    os.mkfifo(tls_dir / "clients.crt")
    web = tls_dir / "web.yml"
    web.write_text(mtls("RequireAndVerifyClientCert"))
    assert (
        f"{web}: tls_server_config.client_ca_file: cannot read '{tls_dir / 'clients.crt'}': "
        "is not a regular file (a FIFO)"
    ) in problems_of(web).splitlines()
