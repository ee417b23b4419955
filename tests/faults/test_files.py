"""Hostile config and secret files, against the real command line in a subprocess.

A FIFO without a writer, /dev/zero, an alias bomb, a recursive alias: each must end in exit code
2 with a message naming the file and key, instead of hanging or exhausting memory. The timeouts
are generous; they only turn a regression into a failure instead of a hung test run.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
from pathlib import Path

import aiohttp

from exporter.simulator import Simulator
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY
from tests.processes import EXPORTER, exporter_process, scrape_when_ready, stop

TIMEOUT = 20
#: The child's address space: a regression reading /dev/zero fails with MemoryError quickly.
MEMORY_LIMIT = 1 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPORTER, "--web.listen-address", "127.0.0.1:0", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit_memory,
    )


def config(path: Path, auth: str, endpoint: str = "https://dli.example.com") -> Path:
    path.write_text(
        "targets:\n"
        "  - name: a\n"
        "    region: cn-north-4\n"
        f"    project_id: '{PROJECT}'\n"
        f"    endpoint: {endpoint}\n"
        f"    ces_endpoint: {endpoint}\n"
        f"    auth: {auth}\n"
    )
    return path


def billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        name, previous = chr(97 + level), chr(96 + level)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_check_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    done = run("--config.check", "--config.file", str(path))
    assert done.returncode == 2, done.stderr
    assert f"{path}: too large: more than 100,000 YAML nodes" in done.stderr
    assert "Traceback" not in done.stderr


def test_recursive_alias_check_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "rec.yaml"
    path.write_text("x: &a [*a]\n")
    done = run("--config.check", "--config.file", str(path))
    assert done.returncode == 2, done.stderr
    assert f"{path}: recursive YAML alias at line 1, column 8" in done.stderr
    assert "Traceback" not in done.stderr


def test_fifo_secret_file_check_exits_2(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "sk")
    path = config(tmp_path / "c.yaml", "{access_key: ak, secret_key_file: sk}")
    done = run("--config.check", "--config.file", str(path))
    assert done.returncode == 2, done.stderr
    assert (
        f"{path}: targets[0].auth.secret_key_file: cannot read '{tmp_path / 'sk'}': "
        "is not a regular file (a FIFO)"
    ) in done.stderr


def test_fifo_secret_file_start_exits_2(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pw")
    auth = "{type: password, username: u, password_file: pw, domain_name: d}"
    path = config(tmp_path / "c.yaml", auth)
    done = run("--config.file", str(path))
    assert done.returncode == 2, done.stderr
    assert f"{path}: targets[0].auth.password_file: cannot read" in done.stderr
    assert "(a FIFO)" in done.stderr
    assert "listening" not in done.stderr


def test_dev_zero_secret_file_exits_2(tmp_path: Path) -> None:
    path = config(tmp_path / "c.yaml", "{access_key: ak, secret_key_file: /dev/zero}")
    done = run("--config.check", "--config.file", str(path))
    assert done.returncode == 2, done.stderr
    assert (
        f"{path}: targets[0].auth.secret_key_file: cannot read '/dev/zero': "
        "is not a regular file (a character device)"
    ) in done.stderr


def test_fifo_ca_file_exits_2(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ca.pem")
    path = tmp_path / "c.yaml"
    config(path, f"{{access_key: {ACCESS_KEY}, secret_key: {SECRET_KEY}}}")
    path.write_text(path.read_text() + "    tls: {ca_file: ca.pem}\n")
    done = run("--config.check", "--config.file", str(path))
    assert done.returncode == 2, done.stderr
    assert f"{path}: targets[0].tls.ca_file: cannot read" in done.stderr
    assert "(a FIFO)" in done.stderr


def test_config_file_fifo_and_device_exit_2(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "c.yaml")
    for path, kind in ((str(tmp_path / "c.yaml"), "a FIFO"), ("/dev/zero", "a character device")):
        done = run("--config.check", "--config.file", path)
        assert done.returncode == 2, done.stderr
        assert f"{path}: cannot read file: is not a regular file ({kind})" in done.stderr


async def test_reload_with_a_fifo_secret_file_fails_and_releases_the_lock(
    tmp_path: Path, simulator: Simulator, sim_url: str
) -> None:
    simulator.add_job(PROJECT, status="job_running")
    good = f"{{access_key: {ACCESS_KEY}, secret_key: {SECRET_KEY}}}"
    path = config(tmp_path / "c.yaml", good, sim_url)
    os.mkfifo(tmp_path / "sk")
    async with exporter_process("--config.file", str(path), "--web.enable-lifecycle") as (
        url,
        process,
        _lines,
    ):
        await scrape_when_ready(url)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            config(path, "{access_key: ak, secret_key_file: sk}", sim_url)
            async with session.post(f"{url}/-/reload") as resp:
                assert resp.status == 500
                text = await resp.text()
            assert "targets[0].auth.secret_key_file" in text
            assert "(a FIFO)" in text
            # The reload lock was released: the next reload works.
            config(path, good, sim_url)
            async with session.post(f"{url}/-/reload") as resp:
                assert resp.status == 200, await resp.text()
        async with asyncio.timeout(TIMEOUT):
            assert await stop(process) == 0
