"""The command line as a user runs it: real processes, real sockets, exit codes and logs."""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from exporter.cli import parse_header_timeout, parse_listen_address
from exporter.simulator import Simulator
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY
from tests.processes import EXPORTER, exporter_process, scrape_when_ready, stop


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPORTER, *args], check=False, capture_output=True, text=True, timeout=60
    )


def write_config(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
poll_interval: 60s
targets:
  - name: sim
    region: cn-north-4
    project_id: {PROJECT}
    endpoint: {endpoint}
    ces_endpoint: {endpoint}
    auth:
      access_key: {ACCESS_KEY}
      secret_key: {SECRET_KEY}
"""
    )
    return path


def test_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9")

    result = run("--config.check", "--config.file", str(path))

    assert result.returncode == 0, result.stderr
    assert "OK (1 targets)" in result.stdout
    assert "credentials from AK/SK (access key" in result.stdout
    assert "sources: cloud_eye (max_age 5m), queues, elastic_resource_pools" in result.stdout
    assert SECRET_KEY not in result.stdout + result.stderr


def test_config_check_names_the_sources_each_target_polls(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9")
    text = (
        path.read_text()
        + "    sources: {cloud_eye: false, queues: false, elastic_resource_pools: false}\n"
    )
    path.write_text(text)

    result = run("--config.check", "--config.file", str(path))

    assert result.returncode == 0, result.stderr
    assert "sources: job list only" in result.stdout


def test_config_check_names_file_key_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "targets:\n  - name: x\n    region: cn-north-4\n    project_id: p\n    timout: 5s\n"
    )

    result = run("--config.check", "--config.file", str(path))

    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "targets[0].timout" in result.stderr


def test_a_bad_config_stops_the_exporter_before_it_listens(tmp_path: Path) -> None:
    result = run("--config.file", str(tmp_path / "missing.yaml"))

    assert result.returncode == 2
    assert "missing.yaml" in result.stderr


def test_a_bad_listen_address_is_rejected() -> None:
    result = run("--demo", "--web.listen-address", "localhost")

    assert result.returncode == 2
    assert "--web.listen-address" in result.stderr


@pytest.mark.parametrize(
    ("address", "expected"),
    [(":9469", (None, 9469)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:80", ("::1", 80))],
)
def test_listen_address_forms(address: str, expected: tuple[str | None, int]) -> None:
    assert parse_listen_address(address) == expected


@pytest.mark.parametrize(
    "address", [":\u00b2", ":\u0669\u0664\u0666\u0669", ":65536", ":" + "9" * 5000]
)
def test_listen_address_ports_are_ascii_and_in_range(address: str) -> None:
    with pytest.raises(ValueError, match="invalid listen address"):
        parse_listen_address(address)


async def test_exporter_serves_the_simulator_and_never_logs_the_secret(
    tmp_path: Path, simulator: Simulator, sim_url: str
) -> None:
    job = simulator.add_job(PROJECT, status="job_running")
    config = write_config(tmp_path, sim_url)

    async with exporter_process("--config.file", str(config), "--log.level", "debug") as (
        url,
        process,
        lines,
    ):
        text = await scrape_when_ready(url)
        assert await stop(process) == 0

    ids = {
        s.labels["job_id"]
        for f in text_string_to_metric_families(text)
        if f.name == "dli_job_info"
        for s in f.samples
    }
    assert ids == {str(job.job_id)}
    logs = "".join(lines)
    assert '"msg": "shutting down"' in logs
    assert SECRET_KEY not in logs and SECRET_KEY not in text


async def test_demo_serves_jobs_in_several_statuses_within_ten_seconds() -> None:
    async with exporter_process("--demo") as (url, process, _lines):
        text = await scrape_when_ready(url)
        assert await stop(process) == 0

    statuses = {
        s.labels["status"]
        for f in text_string_to_metric_families(text)
        if f.name == "dli_job_status"
        for s in f.samples
        if s.value == 1
    }
    assert len(statuses) >= 3, statuses
    assert "job_running" in statuses


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_tls_and_basic_auth_from_the_web_config_file(tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certificate.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(rounds=4)).decode()
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
        "unauthenticated_paths: ['/-/healthy']\n"
    )
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)

    async with exporter_process("--demo", "--web.config.file", str(web_config)) as (
        url,
        process,
        _lines,
    ):
        assert url.startswith("https://")
        connector = aiohttp.TCPConnector(ssl=client_tls)
        async with aiohttp.ClientSession(connector=connector) as session:
            auth = {"Authorization": basic_auth("prometheus", "s3cret-pass")}
            async with session.get(f"{url}/metrics", headers=auth) as resp:
                assert resp.status == 200
            async with session.get(f"{url}/metrics") as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"].startswith("Basic")
            wrong = {"Authorization": basic_auth("prometheus", "guess")}
            async with session.get(f"{url}/metrics", headers=wrong) as resp:
                assert resp.status == 401
            async with session.get(f"{url}/-/healthy") as resp:
                assert resp.status == 200
        assert await stop(process) == 0


def test_a_bad_web_config_file_is_rejected_before_start(tmp_path: Path) -> None:
    web_config = tmp_path / "web.yml"
    web_config.write_text("basic_auth_users:\n  admin: not-a-bcrypt-hash\n")

    result = run("--demo", "--web.config.file", str(web_config))

    assert result.returncode == 2
    assert "basic_auth_users.admin" in result.stderr
    assert "not-a-bcrypt-hash" not in result.stderr


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--web.max-connections", "0"),
        ("--web.max-connections", "-3"),
        ("--web.max-connections", "many"),
        ("--web.header-timeout", "0s"),
        ("--web.header-timeout", "10"),
        ("--web.header-timeout", "soon"),
    ],
)
def test_bad_connection_flags_are_rejected_before_start(flag: str, value: str) -> None:
    result = run("--demo", f"{flag}={value}")

    assert result.returncode == 2
    assert flag in result.stderr and repr(value) in result.stderr


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10.0), ("500ms", 0.5), ("1m30s", 90.0)])
def test_header_timeout_durations(text: str, seconds: float) -> None:
    assert parse_header_timeout(text) == seconds


async def test_reload_over_http_needs_enable_lifecycle() -> None:
    for flags, expected in (((), 403), (("--web.enable-lifecycle",), 200)):
        async with exporter_process("--demo", *flags) as (url, process, _lines):
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{url}/-/reload") as resp,
            ):
                assert resp.status == expected, await resp.text()
            assert await stop(process) == 0
