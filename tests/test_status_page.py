"""The status page's attention list, links, bounds and call table, from hand-made snapshots;
the per-poll call recorder and restart history; the call table of a real poll with a retry."""

from __future__ import annotations

import asyncio
import html
import math
import re
from collections.abc import Sequence
from types import MappingProxyType

import aiohttp
import pytest

from exporter import cli
from exporter.attention import (
    BACK_PRESSURED,
    FAILED,
    FLINK_NOT_RUNNING,
    RESTART_LOOP,
    STALLED,
    needing_attention,
)
from exporter.config import Config
from exporter.dli.api import LIST_JOBS
from exporter.dli.cloudeye import CLOUD_EYE, METRICS, CloudEyeData
from exporter.dli.jobmodel import ExecuteGraph, FlinkJob, JobState
from exporter.joblinks import job_dashboard_url, parse_grafana_url
from exporter.pollcalls import CallRecorder, CallSummary
from exporter.restarts import MAX_CHANGES, WINDOW_SECONDS, RestartHistory
from exporter.simulator import Fault, Simulator
from exporter.snapshot import Snapshot, SourceResult
from exporter.statuspage import MAX_ROWS, status_page
from exporter.web import EXPORTER, create_app
from tests.conftest import make_target
from tests.exporting import serve_app

NOW = 1_800_000_000.0
READ_RATE = next(i for i, m in enumerate(METRICS) if m.ces_name == "flink_read_records_per_second")
LEVEL = next(i for i, m in enumerate(METRICS) if m.ces_name == "flink_max_op_backpressure_level")


def running(job_id: int, name: str, flink: str | None = "RUNNING", **fields: object) -> JobState:
    job = FlinkJob(job_id, name=name, status="job_running", **fields)  # type: ignore[arg-type]
    return JobState(job, ExecuteGraph(state=flink) if flink else None)


def cloud_eye(
    points: dict[int, dict[int, float]], *, stamp: float = NOW - 60
) -> SourceResult[object]:
    """Cloud Eye's result: per job, per metric index, a value taken at ``stamp``."""
    rows = {}
    for job_id, values in points.items():
        row = [(math.nan, math.nan)] * len(METRICS)
        for index, value in values.items():
            row[index] = (value, stamp)
        rows[job_id] = tuple(row)
    data = CloudEyeData(MappingProxyType(rows), read_at=NOW, newest=stamp, max_age=300.0)
    return SourceResult(data, ok=True, last_success_time=NOW)


def snapshot(jobs: Sequence[JobState], target: str = "prod", **fields: object) -> Snapshot:
    return Snapshot(
        target=target,
        jobs=tuple(jobs),
        up=True,
        polled=True,
        last_success_time=NOW,
        **fields,  # type: ignore[arg-type]
    )


def kinds(found: Snapshot) -> dict[str, list[str]]:
    return {a.state.job.name or "": [p.kind for p in a.problems] for a in needing_attention(found)}


def attention_section(page: str) -> str:
    return page.split('<div id="attention">', 1)[1].split("<h2>", 1)[0]


def test_each_kind_of_trouble_is_found_and_a_healthy_job_is_not() -> None:
    failed = JobState(
        FlinkJob(1, name="pay", status="job_submit_fail", status_desc="DLI.0005 no queue")
    )
    jobs = [
        running(2, "fine"),
        failed,
        running(3, "restarting", "RESTARTING"),
        running(4, "looping", restart_times=9),
        running(5, "created", "CREATED"),
        running(6, "stalled"),
        running(7, "pressured"),
        running(8, "few restarts", restart_times=3),
        running(9, "no graph", None),
        JobState(FlinkJob(10, name="stopped", status="job_cancel_success")),
    ]
    ces = cloud_eye({2: {READ_RATE: 10.0, LEVEL: 50.0}, 6: {READ_RATE: 0.0}, 7: {LEVEL: 100.0}})
    found = snapshot(
        jobs,
        sources={"cloud_eye": ces},
        recent_restarts=MappingProxyType({4: 5, 8: 3}),
    )

    assert kinds(found) == {
        "pay": [FAILED],
        "restarting": [RESTART_LOOP],
        "looping": [RESTART_LOOP],
        "created": [FLINK_NOT_RUNNING],
        "stalled": [STALLED],
        "pressured": [BACK_PRESSURED],
    }
    reasons = {a.state.job.job_id: a.problems[0] for a in needing_attention(found)}
    assert reasons[1].reason == "job_submit_fail: DLI.0005" and reasons[1].detail.endswith("queue")
    assert reasons[3].reason == "Flink state RESTARTING"
    assert reasons[4].reason == "5 restarts in 15 min"
    assert reasons[5].reason == "DLI says job_running, Flink state CREATED"
    assert reasons[6].reason == "reads 0 records/s (Cloud Eye)"
    assert reasons[7].reason == "backpressure level 100 (high) (Cloud Eye)"


def test_cloud_eye_points_older_than_max_age_are_not_trouble() -> None:
    stale = cloud_eye({6: {READ_RATE: 0.0, LEVEL: 100.0}}, stamp=NOW - 301)

    assert kinds(snapshot([running(6, "stalled")], sources={CLOUD_EYE.name: stale})) == {}


def test_the_page_lists_trouble_first_escaped_and_healthy_targets_after() -> None:
    evil = "<script>alert(1)</script>"
    trouble = snapshot(
        [
            running(1, "ok"),
            JobState(FlinkJob(2, name=evil, status="job_running_exception", status_desc=evil)),
        ],
        target="prod & co",
    )
    calm = snapshot([running(3, "fine")], target="calm")
    page = status_page([calm, trouble], {"prod & co": "AK/SK (access key AK)"})

    section = attention_section(page)
    assert "prod &amp; co" in section and "calm" not in section
    assert 'data-job-id="2"' in section and 'data-job-id="1"' not in section
    assert evil not in page and html.escape(evil) in section
    assert "<script" not in page  # no JavaScript at all, and none smuggled in
    healthy = page.split('<div id="healthy">', 1)[1].split("<h2>", 1)[0]
    assert "<b>calm</b>: up, 1 job, none needs attention" in healthy
    assert page.index('<div id="attention">') < page.index("<h2>Targets</h2>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "1 job needs attention; 0 of 2 targets down." in page
    assert "grafana" not in section  # no Grafana URL configured: no links


def test_a_down_target_comes_first_with_its_error() -> None:
    up = snapshot([JobState(FlinkJob(1, name="f", status="job_submit_fail"))], target="a")
    down = Snapshot(target="b", polled=True, up=False, last_error="list_jobs failed code=503")
    section = attention_section(status_page([up, down], {}))

    assert section.index("<h3>b") < section.index("<h3>a")
    assert "down: list_jobs failed code=503" in section


def test_jobs_link_to_the_job_detail_dashboard_encoded_and_escaped() -> None:
    base = parse_grafana_url("https://grafana.example.com/sub/")
    found = snapshot([JobState(FlinkJob(42, name="f", status="job_submit_fail"))], target="a&b c")
    page = status_page([found], {}, base)

    url = job_dashboard_url(base, "a&b c", 42)
    assert url == "https://grafana.example.com/sub/d/dli-job-detail?var-target=a%26b+c&var-job=42"
    assert f'<a class="grafana" href="{html.escape(url)}">' in page


def test_a_grafana_url_must_be_an_http_url() -> None:
    for bad in ("grafana.example.com", "ftp://g", "https://g/?x=1", "javascript:alert(1)"):
        try:
            parse_grafana_url(bad)
        except ValueError as exc:
            assert "--web.grafana-url" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")


def test_the_attention_list_is_bounded_per_target() -> None:
    many = [
        JobState(FlinkJob(i, name=f"j{i}", status="job_submit_fail")) for i in range(MAX_ROWS + 25)
    ]
    section = attention_section(status_page([snapshot(many)], {}))

    assert section.count('<tr class="job"') == MAX_ROWS
    assert "and 25 more" in section
    assert f"{MAX_ROWS + 25} of {MAX_ROWS + 25} jobs need attention" in section


def test_the_call_table_shows_each_operation_and_code() -> None:
    calls = (
        CallSummary("execute_graph", "200", 5, 0.5, 0.2, 0),
        CallSummary("list_jobs", "503", 2, 1.25, 1.0, 1),
    )
    page = status_page([snapshot([], calls=calls)], {})
    table = page.split('<div id="calls">', 1)[1]

    assert re.search(
        r"<td>list_jobs</td><td>503</td><td[^>]*>2</td><td[^>]*>1</td>"
        r"<td[^>]*>1.250s</td><td[^>]*>1.000s</td>",
        table,
    )
    assert "<td>execute_graph</td><td>200</td>" in table


def test_the_recorder_sums_by_operation_and_code_and_resets() -> None:
    recorder = CallRecorder()
    recorder.observe("list_jobs", "503", 0.5)
    recorder.observe("list_jobs", "200", 0.1)
    recorder.retried("list_jobs", "200")
    recorder.observe("execute_graph", "200", 0.3)
    recorder.observe("execute_graph", "200", 0.2)

    assert recorder.summary() == (
        CallSummary("execute_graph", "200", 2, 0.5, 0.3, 0),
        CallSummary("list_jobs", "200", 1, 0.1, 0.1, 1),
        CallSummary("list_jobs", "503", 1, 0.5, 0.5, 0),
    )
    recorder.reset()
    assert recorder.summary() == ()


def test_restarts_are_counted_within_the_window_only() -> None:
    history = RestartHistory()

    def seen(restarts: int, at: float, job_id: int = 1) -> int:
        jobs = [FlinkJob(job_id, restart_times=restarts)]
        return history.record(jobs, at).get(job_id, 0)

    assert seen(10, 0.0) == 0  # restarts before the exporter saw the job do not count
    assert seen(12, 60.0) == 2
    assert seen(15, 120.0) == 5
    assert seen(15, 60.0 + WINDOW_SECONDS) == 3  # the count the window began with is 12
    assert seen(15, 120.0 + WINDOW_SECONDS) == 0
    assert seen(3, 10_000.0, job_id=2) == 0  # job 1 is no longer listed: forgotten
    assert history.record([FlinkJob(1, restart_times=15)], 10_001.0) == {}


def test_restart_history_is_bounded_per_job() -> None:
    history = RestartHistory()
    for count in range(10 * MAX_CHANGES):
        recent = history.record([FlinkJob(1, restart_times=count)], float(count))
    assert recent[1] == MAX_CHANGES - 1  # a lower bound once the oldest changes are dropped


async def test_a_real_poll_shows_its_calls_and_retries(simulator: Simulator, sim_url: str) -> None:
    simulator.add_job("p" * 32, status="job_running")
    simulator.inject_fault(Fault(status=503, operation=LIST_JOBS))
    target = make_target("a", sim_url, project_id="p" * 32)
    app = create_app(Config(targets=(target,), source="<test>"))
    async with serve_app(app) as url:
        exporter = app[EXPORTER]
        async with asyncio.timeout(10):
            while not exporter.store.ready():
                await asyncio.sleep(0.02)
        calls = {(c.operation, c.code): c for c in exporter.store.snapshots()[0].calls}
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            page = await response.text()

    assert calls[(LIST_JOBS, "503")].count == 1 and calls[(LIST_JOBS, "503")].retries == 0
    assert calls[(LIST_JOBS, "200")].retries == 1  # the second attempt of the same call
    assert calls[("execute_graph", "200")].count == 1
    assert "<td>list_jobs</td><td>503</td>" in page


def test_a_bad_grafana_url_is_a_bad_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--demo", "--web.grafana-url", "grafana:3000"]) == cli.EXIT_BAD_INPUT
    assert "--web.grafana-url: 'grafana:3000' is not an http(s) URL" in capsys.readouterr().err
