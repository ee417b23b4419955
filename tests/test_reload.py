"""Reloading the config (POST /-/reload, SIGHUP) and stopping (SIGTERM), against the simulator.

Also: /-/reload is off without --web.enable-lifecycle and refuses cross-origin requests; every
reload failure (any exception, a hung read) is a failed reload; SIGHUP at start-up and during
shutdown never kills the process.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from exporter.cli import Listener, serve
from exporter.config import Config, ConfigError, ConfigProblem, load_config
from exporter.dli.api import (
    BATCH_QUERY_METRIC_DATA,
    EXECUTE_GRAPH,
    LIST_ELASTIC_RESOURCE_POOLS,
    LIST_JOBS,
    LIST_QUEUES,
)
from exporter.signals import EarlySignals
from exporter.simulator import Simulator
from exporter.web import EXPORTER, create_app
from tests.conftest import ACCESS_KEY, OTHER_PROJECT, PROJECT, SECRET_KEY, make_target
from tests.processes import EXPORTER as EXPORTER_COMMAND
from tests.processes import exporter_process, scrape_when_ready, stop

TARGET = """
  - name: {name}
    region: cn-north-4
    project_id: "{project}"
    endpoint: {endpoint}
    ces_endpoint: {endpoint}
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
    app = create_app(
        load_config(path), load_config=functools.partial(load_config, path), enable_lifecycle=True
    )
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
    # c's first poll (its listing, its one execute-graph, one call per further source), and
    # nothing for a.
    assert sorted(r.operation for r in new_requests) == sorted(
        (
            LIST_JOBS,
            EXECUTE_GRAPH,
            BATCH_QUERY_METRIC_DATA,
            LIST_QUEUES,
            LIST_ELASTIC_RESOURCE_POOLS,
        )
    )
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


# --------------------------------------------------------------------------- lifecycle and origin


async def test_reload_over_http_is_off_without_enable_lifecycle(
    simulator: Simulator, sim_url: str
) -> None:
    app = create_app(Config(targets=(make_target("a", sim_url),), source="<test>"))
    runner, url = await start(app)
    try:
        for method in ("POST", "PUT"):
            async with (
                aiohttp.ClientSession() as session,
                session.request(method, f"{url}/-/reload") as resp,
            ):
                assert resp.status == 403
                assert await resp.text() == "Lifecycle API is not enabled.\n"
        # SIGHUP's path stays on.
        app[EXPORTER].request_reload()
        await wait_for_reload_outcome(app, successful=True)
    finally:
        await runner.cleanup()


def origin_cases(port: int) -> list[tuple[dict[str, str] | list[tuple[str, str]], int]]:
    own = f"127.0.0.1:{port}"
    return [
        ({}, 200),
        ({"Origin": f"http://{own}"}, 200),
        ({"Origin": f"HTTP://{own}"}, 200),
        ({"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"}, 200),
        ({"Origin": "http://127.0.0.1", "Host": "127.0.0.1:80"}, 200),
        ({"Origin": "http://127.0.0.1:80", "Host": "127.0.0.1"}, 200),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": ""}, 403),
        ({"Origin": f"http://127.0.0.1:{port + 1}"}, 403),
        ({"Origin": f"https://{own}"}, 403),
        ({"Origin": f"http://{own}/"}, 403),
        ({"Origin": f"http://user@{own}"}, 403),
        ({"Origin": f"http://{own}.evil.example"}, 403),
        ({"Origin": "http://localhost", "Host": "localhost:xyz"}, 403),
        ([("Origin", f"http://{own}"), ("Origin", f"http://{own}")], 403),
    ]


async def test_cross_origin_reload_requests_are_refused(
    running_app: tuple[web.Application, str, Path],
) -> None:
    _app, url, _path = running_app
    port = int(url.rsplit(":", 1)[1])
    results = []
    for headers, expected in origin_cases(port):
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/-/reload", headers=headers) as resp,
        ):
            results.append((headers, resp.status, await resp.text(), expected))
    for headers, status, text, expected in results:
        assert status == expected, (headers, text)
        if expected == 403:
            assert text == "Cross-origin reload requests are refused.\n"


# --------------------------------------------------------------------------- failing reloads


class Loader:
    """A config loader whose next reads succeed, raise or hang, as the test says."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.behaviour = "good"
        self.released = threading.Event()

    def __call__(self) -> Config:
        if self.behaviour == "runtime":
            raise RuntimeError("the loader broke")
        if self.behaviour == "recursion":
            raise RecursionError("maximum recursion depth exceeded")
        if self.behaviour == "config":
            raise ConfigError([ConfigProblem("c.yaml", "targets", "is required")])
        if self.behaviour == "hang":
            self.released.wait(5)  # blocks the worker thread, not the loop
        return self.config


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def wait_for_reload_outcome(app: web.Application, *, successful: bool) -> None:
    registry = app[EXPORTER].registry
    async with asyncio.timeout(10):
        while registry.get_sample_value("dli_config_last_reload_successful") != successful:
            await asyncio.sleep(0.01)


@pytest.fixture
async def loader_app(
    simulator: Simulator, sim_url: str
) -> AsyncIterator[tuple[web.Application, str, Loader]]:
    config = Config(targets=(make_target("a", sim_url),), source="<test>")
    loader = Loader(config)
    app = create_app(config, load_config=loader, enable_lifecycle=True, reload_timeout=0.2)
    runner, url = await start(app)
    await scrape_when_ready(url)
    yield app, url, loader
    loader.released.set()
    await runner.cleanup()


FAILURES = {
    "runtime": "unexpected RuntimeError while reading the config: the loader broke",
    "recursion": "unexpected RecursionError while reading the config: maximum recursion depth",
    "hang": "reading the config did not finish within 0.2s",
    "config": "c.yaml: targets: is required",
}


@pytest.mark.parametrize("behaviour", FAILURES)
async def test_every_reload_failure_is_a_failed_reload(
    loader_app: tuple[web.Application, str, Loader],
    behaviour: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _app, url, loader = loader_app
    loader.behaviour = behaviour

    status, text = await post_reload(url)

    assert status == 500
    assert text.startswith("Reload failed; the running config is kept:\n")
    assert FAILURES[behaviour] in text
    assert metric_values(await scrape(url), "dli_config_last_reload_successful") == {
        frozenset(): 0.0
    }
    failures = [r for r in caplog.records if r.getMessage().startswith("config reload failed")]
    assert len(failures) == 1
    assert FAILURES[behaviour] in failures[0].fields["problems"]  # type: ignore[attr-defined]
    unexpected = behaviour in ("runtime", "recursion")
    assert (failures[0].exc_info is not None) is unexpected  # a traceback only when unexpected

    # The lock was released (even by the hung read): a good reload works again.
    loader.behaviour = "good"
    status, text = await post_reload(url)
    assert (status, text) == (200, "Reloaded. No target changed.\n")
    assert metric_values(await scrape(url), "dli_config_last_reload_successful") == {
        frozenset(): 1.0
    }


async def test_a_failed_sighup_reload_leaves_no_unretrieved_task_exception(
    loader_app: tuple[web.Application, str, Loader], caplog: pytest.LogCaptureFixture
) -> None:
    app, _url, loader = loader_app
    loader.behaviour = "runtime"

    app[EXPORTER].request_reload()  # what SIGHUP calls
    await wait_for_reload_outcome(app, successful=False)
    async with asyncio.timeout(10):
        while app[EXPORTER]._background:  # the reload task and the re-render finish
            await asyncio.sleep(0.01)
    gc.collect()  # an unretrieved exception is reported when its task is collected

    messages = [r.getMessage() for r in caplog.records]
    assert not any("never retrieved" in message for message in messages), messages
    assert messages.count("config reload failed; keeping the running config") == 1


# --------------------------------------------------------------------------- SIGHUP timing


def sighup_caught(pid: int) -> bool:
    """True when the process has a handler for SIGHUP (``SigCgt`` in /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    return False


async def test_sighup_during_start_up_neither_kills_nor_is_lost(
    tmp_path: Path, simulator: Simulator, sim_url: str
) -> None:
    simulator.add_job(PROJECT, status="job_running")
    path = write_config(tmp_path / "config.yaml", sim_url, ("a", PROJECT))
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *EXPORTER_COMMAND,
            "--config.file",
            str(path),
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        # The handler must exist long before the exporter listens. (No program can catch a
        # signal before the interpreter runs its first line: wait for the handler to exist.)
        async with asyncio.timeout(20):
            while not sighup_caught(process.pid):
                assert process.returncode is None, log_path.read_text()
                await asyncio.sleep(0.001)
        assert '"msg": "listening"' not in log_path.read_text()
        for _ in range(20):  # SIGHUPs over the first half second
            process.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.025)
        async with asyncio.timeout(20):
            while '"msg": "config reloaded"' not in log_path.read_text():
                assert process.returncode is None, log_path.read_text()
                await asyncio.sleep(0.05)
        lines = [json.loads(line) for line in log_path.read_text().splitlines()]
        url = next(event["address"] for event in lines if event["msg"] == "listening")
        assert targets_of(await scrape_when_ready(url), "dli_job_info") == {"a"}
        assert await stop(process) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    events = [json.loads(line)["msg"] for line in log_path.read_text().splitlines()]
    assert events.index("listening") < events.index("config reloaded")
    assert "SIGHUP received during start-up; reloading now" in events


async def test_sighup_during_shutdown_does_not_kill_the_process(
    simulator: Simulator, sim_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After the loop's handlers are removed SIGHUP must not get its default action back."""
    caplog.set_level(logging.INFO)
    config = Config(targets=(make_target("a", sim_url),), source="<test>")
    early = EarlySignals()
    original = signal.getsignal(signal.SIGHUP)
    try:
        early.install()
        serving = asyncio.create_task(serve(config, Listener("127.0.0.1", 0), early=early))
        async with asyncio.timeout(10):
            while not any(r.getMessage() == "listening" for r in caplog.records):
                await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # the serving loop's handler stops it
        assert await serving == 0
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, None)
        os.kill(os.getpid(), signal.SIGHUP)  # recorded, not fatal
        assert early.take_reload_request()
    finally:
        signal.signal(signal.SIGHUP, original)
