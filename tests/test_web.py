"""The whole exporter app over HTTP: pollers against the simulator, /metrics, status, health."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config
from exporter.exposition import accepts_gzip, parse_header_list, wants_openmetrics
from exporter.simulator import Simulator
from exporter.snapshot import Snapshot
from exporter.web import EXPORTER, create_app, proxy_configured
from tests.conftest import (
    ACCESS_KEY,
    OTHER_PROJECT,
    PROJECT,
    SECRET_KEY,
    make_target,
    promtool_path,
)

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition the app reaches on its own (a poll finishing)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def exporter_url(simulator: Simulator, sim_url: str) -> AsyncIterator[str]:
    """The exporter app polling two simulator projects, after its first polls finished."""
    for status in ("job_running", "job_running", "job_submitting", "job_running_exception"):
        simulator.add_job(PROJECT, status=status)
    simulator.add_job(OTHER_PROJECT, status="job_running", name='quote " back \\ slash ✓')
    config = Config(
        targets=(
            make_target("beijing", sim_url),
            make_target("shanghai", sim_url, project_id=OTHER_PROJECT),
        ),
        source="<test>",
    )
    app = create_app(config)
    runner, url = await start(app)
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            async with session.get(f"{url}/-/ready") as resp:
                return resp.status == 200

        async with asyncio.timeout(10):
            while not await ready():
                await asyncio.sleep(0.02)
    yield url
    await runner.cleanup()


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET without aiohttp's default gzip negotiation unless the caller asks for it."""
    headers.setdefault("Accept-Encoding", "identity")
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


async def test_metrics_reports_every_job_of_every_target(
    exporter_url: str, simulator: Simulator
) -> None:
    status, headers, body = await get(f"{exporter_url}/metrics")

    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    info = [s.labels for s in families["dli_job_info"].samples]
    expected = {("beijing", str(job.job_id)) for job in simulator.jobs(PROJECT)} | {
        ("shanghai", str(job.job_id)) for job in simulator.jobs(OTHER_PROJECT)
    }
    assert {(labels["target"], labels["job_id"]) for labels in info} == expected
    names = {labels["job_name"] for labels in info}
    assert 'quote " back \\ slash ✓' in names
    up = {s.labels["target"]: s.value for s in families["dli_up"].samples}
    assert up == {"beijing": 1.0, "shanghai": 1.0}
    requests = {
        (s.labels["target"], s.labels["operation"], s.labels["code"]): s.value
        for s in families["dli_api_requests"].samples
        if s.name == "dli_api_requests_total"
    }
    assert requests[("beijing", "list_jobs", "200")] == 1
    assert requests[("beijing", "execute_graph", "200")] == 2
    assert "dli_exporter_build_info" in families


async def test_metrics_passes_promtool(exporter_url: str) -> None:
    promtool = promtool_path()
    _, _, body = await get(f"{exporter_url}/metrics")

    result = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=body, capture_output=True
    )

    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode() + result.stderr.decode() == ""


async def test_metrics_speaks_openmetrics_and_gzip_to_prometheus(exporter_url: str) -> None:
    status, headers, body = await get(
        f"{exporter_url}/metrics", Accept=PROMETHEUS_ACCEPT, **{"Accept-Encoding": "gzip"}
    )

    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(body).decode()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    names = {family.name for family in parse_om(text)}
    assert {"dli_job_info", "dli_up", "dli_api_requests", "dli_job_restarts"} <= names


async def test_metrics_never_carry_the_secret_key(exporter_url: str) -> None:
    _, _, plain = await get(f"{exporter_url}/metrics")
    _, _, page = await get(f"{exporter_url}/")

    assert SECRET_KEY not in plain.decode()
    assert SECRET_KEY not in page.decode()


async def test_status_page_lists_targets(exporter_url: str) -> None:
    status, headers, body = await get(f"{exporter_url}/")

    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert 'href="metrics"' in page
    assert "<td>beijing</td><td>up</td><td>4</td>" in page
    assert "<td>shanghai</td><td>up</td><td>1</td>" in page
    assert f"<td>AK/SK (access key {ACCESS_KEY})</td></tr>" in page  # where credentials come from
    assert SECRET_KEY not in page


async def test_health_is_always_ok(exporter_url: str) -> None:
    status, _, body = await get(f"{exporter_url}/-/healthy")

    assert status == 200 and body == b"Healthy\n"


async def test_ready_waits_for_every_targets_first_poll(simulator: Simulator, sim_url: str) -> None:
    simulator.latency = 0.5
    config = Config(targets=(make_target("slow", sim_url),), source="<test>")
    app = create_app(config)
    runner, url = await start(app)
    try:
        status, _, body = await get(f"{url}/-/ready")
        assert status == 503
        assert b"slow" in body
        await wait_until(app[EXPORTER].ready)
        status, _, _ = await get(f"{url}/-/ready")
        assert status == 200
    finally:
        await runner.cleanup()


async def test_a_target_that_fails_is_down_and_shown_on_the_status_page(sim_url: str) -> None:
    config = Config(
        targets=(make_target("ghost", sim_url, project_id="missing-project"),), source="<test>"
    )
    runner, url = await start(create_app(config))
    try:
        async with asyncio.timeout(10):
            while (await get(f"{url}/-/ready"))[0] != 200:
                await asyncio.sleep(0.02)
        _, _, body = await get(f"{url}/metrics")
        _, _, page = await get(f"{url}/")
    finally:
        await runner.cleanup()

    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert [(s.labels["target"], s.value) for s in families["dli_up"].samples] == [("ghost", 0.0)]
    assert "<td>ghost</td><td>down</td>" in page.decode()
    assert "code=404" in page.decode()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, True),
        ({"http_proxy": "http://proxy:3128"}, True),
        ({"ALL_PROXY": ""}, False),
        ({"NO_PROXY": "127.0.0.1"}, False),
    ],
)
def test_the_environment_proxy_is_used_only_when_set(
    environ: dict[str, str], expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    assert proxy_configured() is expected


# --------------------------------------------------------------------------- content negotiation

ACCEPT_ENCODING_CASES = [
    ("gzip", True),
    ("GZIP", True),
    ("x-gzip", True),
    ("gzip;q=0", False),
    ("GZIP;Q=0", False),  # codings and parameter names are case-insensitive
    ("gzip ; q=0.000", False),
    ("gzip;q=0.001", True),
    ("gzip;q=1.000", True),
    ("gzip;q=1.5", False),  # not a qvalue: that entry is not acceptable
    ("gzip;q=abc", False),
    ("gzip;q=", False),
    ("gzip;q=-1", False),
    ("gzip;q=0.0001", False),
    ("deflate, br", False),
    ("*", True),
    ("*;q=0", False),
    ("*;q=0, gzip", True),  # the specific entry wins over the wildcard
    ("gzip;q=0, *", False),
    ("identity", False),
    ("gzip;q=0.5, identity", False),  # identity preferred
    ("gzip, identity;q=0.5", True),
    ("gzip;q=0.5, identity;q=0.5", True),  # a tie: gzip, what is stored
    ("gzip, gzip;q=0", False),  # a refusal wins
    ('br;foo="a,gzip", deflate', False),  # a quoted comma does not start an entry
    ('gzip;foo="x;q=0"', True),
    ("", False),
    (" , ,gzip", True),
    ("gzip;level", True),  # a parameter without a value is ignored
]


@pytest.mark.parametrize(("header", "expected"), ACCEPT_ENCODING_CASES)
def test_accept_encoding_is_parsed_per_rfc_9110(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


ACCEPT_CASES = [
    (PROMETHEUS_ACCEPT, True),
    ("application/openmetrics-text", True),
    ("APPLICATION/OpenMetrics-Text; Version=1.0.0", True),
    ("application/openmetrics-text;version=0.0.1", True),
    ("application/openmetrics-text;q=0", False),
    ("application/openmetrics-text;Q=0", False),
    ("application/openmetrics-text;q=x", False),
    ("text/plain;version=0.0.4", False),
    ("text/plain;q=1, application/openmetrics-text;q=0.5", False),
    ("text/plain;q=0.5, application/openmetrics-text;q=0.5", True),
    ("*/*", False),
    ("*/*;q=0.1, application/openmetrics-text;q=0.2", True),
    ('text/html;a="application/openmetrics-text, x", */*', False),
    ("", False),
]


@pytest.mark.parametrize(("header", "expected"), ACCEPT_CASES)
def test_accept_is_parsed_case_insensitively(header: str, expected: bool) -> None:
    assert wants_openmetrics(header) is expected


def test_header_lists_keep_quoted_strings_and_escapes_whole() -> None:
    assert parse_header_list('A;B="x,\\"y\\";z";C=d, e ;; , F') == [
        ("a", {"b": 'x,"y";z', "c": "d"}),
        ("e", {}),
        ("f", {}),
    ]


async def test_a_refused_gzip_is_honoured_over_http(exporter_url: str) -> None:
    status, headers, body = await get(f"{exporter_url}/metrics", **{"Accept-Encoding": "GZIP;Q=0"})

    assert status == 200
    assert "Content-Encoding" not in headers
    assert b"dli_job_info" in body


async def test_repeated_negotiation_headers_are_read_as_one_list(exporter_url: str) -> None:
    headers = [
        ("Accept", "text/plain;q=0.1"),
        ("Accept", "application/openmetrics-text"),
        ("Accept-Encoding", "identity;q=0.5"),
        ("Accept-Encoding", "gzip"),
    ]
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(f"{exporter_url}/metrics", headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert resp.headers["Content-Encoding"] == "gzip"


# --------------------------------------------------------------------------- failure modes


async def test_the_status_page_survives_an_impossible_timestamp(
    simulator: Simulator, sim_url: str
) -> None:
    config = Config(targets=(make_target("a", sim_url),), source="<test>")
    app = create_app(config)
    runner, url = await start(app)
    try:
        await wait_until(app[EXPORTER].ready)
        app[EXPORTER].store.publish(
            Snapshot(target="a", polled=True, up=True, last_success_time=1e300)
        )
        status, _, body = await get(f"{url}/")
    finally:
        await runner.cleanup()

    assert status == 200
    assert "<td>a</td><td>up</td>" in body.decode()
    assert "invalid time" in body.decode()


async def test_an_unexpected_error_gets_a_short_text_500_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(_request: web.Request) -> web.Response:
        raise ZeroDivisionError("one bad value")

    app = create_app(Config(targets=(), source="<test>"))
    app.router.add_get("/broken", broken)  # a stand-in for any handler's bug
    runner, url = await start(app)
    try:
        status, headers, body = await get(f"{url}/broken")
        missing, _, _ = await get(f"{url}/missing")
    finally:
        await runner.cleanup()

    assert status == 500
    assert headers["Content-Type"].startswith("text/plain")
    assert body == b"Internal error while answering; see the exporter's log.\n"
    assert missing == 404  # aiohttp's own answers pass through
    record = next(r for r in caplog.records if r.getMessage() == "request failed")
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
