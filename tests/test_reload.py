"""Reloading the config (POST /-/reload, SIGHUP) and stopping (SIGTERM), against the simulator."""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import load_config
from exporter.simulator import Simulator
from exporter.web import EXPORTER, create_app
from tests.conftest import ACCESS_KEY, OTHER_PROJECT, PROJECT, SECRET_KEY
from tests.processes import exporter_process, scrape_when_ready, stop

TARGET = """
  - name: {name}
    region: cn-north-4
    project_id: "{project}"
    endpoint: {endpoint}
    auth: {{access_key: {ak}, secret_key: {sk}}}
"""


def write_config(path: Path, endpoint: str, *targets: tuple[str, str]) -> Path:
    body = "".join(
        TARGET.format(name=n, project=p, endpoint=endpoint, ak=ACCESS_KEY, sk=SECRET_KEY)
        for n, p in targets
    )
    path.write_text(f"poll_interval: 1h\ntargets:{body}")
    return path


def metric_values(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def targets_of(text: str, name: str) -> set[str]:
    return {dict(labels)["target"] for labels in metric_values(text, name)}


@pytest.fixture
async def running_app(
    tmp_path: Path, simulator: Simulator, sim_url: str
) -> AsyncIterator[tuple[web.Application, str, Path]]:
    simulator.add_job(PROJECT, status="job_running")
    simulator.add_job(OTHER_PROJECT, status="job_running")
    path = write_config(tmp_path / "config.yaml", sim_url, ("a", PROJECT), ("b", OTHER_PROJECT))
    app = create_app(load_config(path), load_config=functools.partial(load_config, path))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    await scrape_when_ready(url)
    yield app, url, path
    await runner.cleanup()


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        return await resp.text()


async def post_reload(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(f"{url}/-/reload") as resp:
        return resp.status, await resp.text()


async def test_reload_adds_removes_and_keeps_targets(
    running_app: tuple[web.Application, str, Path], simulator: Simulator, sim_url: str
) -> None:
    app, url, path = running_app
    before = await scrape(url)
    assert targets_of(before, "dli_job_info") == {"a", "b"}
    a_requests = [r for r in simulator.request_log if PROJECT in r.path]
    write_config(path, sim_url, ("a", PROJECT), ("c", PROJECT))

    status, text = await post_reload(url)

    assert status == 200, text
    assert "added: c" in text and "removed: b" in text
    exporter = app[EXPORTER]
    async with asyncio.timeout(10):
        while not exporter.ready():
            await asyncio.sleep(0.02)
    after = await scrape(url)
    assert targets_of(after, "dli_job_info") == {"a", "c"}
    assert targets_of(after, "dli_api_requests_total") == {"a", "c"}
    # "a" did not change: its poller and series were kept, so it was not polled again.
    a_info = {k: v for k, v in metric_values(after, "dli_up").items() if ("target", "a") in k}
    assert a_info == {frozenset({("target", "a")}): 1.0}
    polled_for_a_and_c = [r for r in simulator.request_log if PROJECT in r.path]
    new_requests = polled_for_a_and_c[len(a_requests) :]
    assert len(new_requests) == 2  # c's first listing and its one execute-graph, nothing for a
    assert metric_values(after, "dli_config_last_reload_successful") == {frozenset(): 1.0}


async def test_a_bad_config_on_reload_keeps_the_running_one(
    running_app: tuple[web.Application, str, Path],
) -> None:
    _app, url, path = running_app
    before = await scrape(url)
    loaded_at = metric_values(before, "dli_config_last_reload_success_timestamp_seconds")
    path.write_text("targets:\n  - name: a\n    regoin: typo\n")

    status, text = await post_reload(url)

    assert status == 500
    assert "targets[0].regoin" in text
    after = await scrape(url)
    assert targets_of(after, "dli_job_info") == {"a", "b"}
    assert metric_values(after, "dli_config_last_reload_successful") == {frozenset(): 0.0}
    assert metric_values(after, "dli_config_last_reload_success_timestamp_seconds") == loaded_at


async def test_reload_needs_post(running_app: tuple[web.Application, str, Path]) -> None:
    _app, url, _path = running_app
    async with aiohttp.ClientSession() as session, session.get(f"{url}/-/reload") as resp:
        assert resp.status == 405


async def test_sighup_reloads_the_config_file(
    tmp_path: Path, simulator: Simulator, sim_url: str
) -> None:
    simulator.add_job(PROJECT, status="job_running")
    simulator.add_job(OTHER_PROJECT, status="job_finish")
    path = write_config(tmp_path / "config.yaml", sim_url, ("a", PROJECT))

    async with exporter_process("--config.file", str(path)) as (url, process, lines):
        assert targets_of(await scrape_when_ready(url), "dli_job_info") == {"a"}
        write_config(path, sim_url, ("a", PROJECT), ("b", OTHER_PROJECT))
        process.send_signal(signal.SIGHUP)
        async with asyncio.timeout(10):
            while targets_of(await scrape(url), "dli_job_info") != {"a", "b"}:
                await asyncio.sleep(0.05)
        assert await stop(process) == 0

    assert any('"msg": "config reloaded"' in line for line in lines)


async def test_sigterm_mid_poll_exits_cleanly_and_quickly(
    tmp_path: Path, simulator: Simulator, sim_url: str
) -> None:
    simulator.latency = 30.0  # the first poll is still waiting for DLI when the signal comes
    path = write_config(tmp_path / "config.yaml", sim_url, ("a", PROJECT))

    async with exporter_process("--config.file", str(path)) as (url, process, _lines):
        async with aiohttp.ClientSession() as session, session.get(f"{url}/-/ready") as resp:
            assert resp.status == 503  # the first poll is still in progress
        assert await stop(process) == 0  # stop() allows 5 seconds
