"""End to end with the real binaries: exporter -> Prometheus (shipped rules) -> Alertmanager.

The exporter runs the demo's ``incident`` scenario (a healthy job, one that fails after a few
seconds, one restarting every two seconds, one running but stalled, one back-pressured, on a
saturated queue in a pool at its maximum). Prometheus scrapes it every second with the shipped
recording and alerting rules, whose ``for:`` durations are shortened from minutes to seconds so
the test takes seconds (promtool's unit tests check the real durations). Alertmanager runs the
shipped configuration unchanged. Then every dashboard query runs against that Prometheus.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from tests.dashboard_queries import panel_queries, substitute
from tests.processes import exporter_process, free_port, stop

ROOT = Path(__file__).resolve().parent.parent
TARGET = "demo-incident"
HEALTHY, FAILING, LOOPING = "orders_enrich", "payments_dedup", "clickstream_sink"
#: Panels that must show data for this scenario (others may legitimately be empty).
STALLED, PRESSURED, QUEUE, POOL = "fraud_scoring", "sessionize", "flink_prod", "pool_prod"
#: Panels that must show data for this scenario (others may legitimately be empty); the job
#: detail's are checked for the restart-loop job and the healthy one together.
CORE_PANELS = {
    "dli-overview": {
        "Running jobs",
        "Jobs by DLI status",
        "Configured CUs by queue",
        "Jobs",
        "Failed jobs and why",
        "Queue capacity",
        "Queue usage",
        "Elastic resource pool capacity",
    },
    "dli-job-detail": {
        "DLI status",
        "Flink state",
        "Restarts",
        "Resources",
        "Checkpointing",
        "Max restarts",
        "Records per second",
        "Bytes per second",
        "Backpressure level",
        "Operator latency",
        "CPU and memory usage",
    },
    "dli-exporter-health": {
        "Targets up",
        "Target status",
        "API requests by operation",
        "Source status",
        "Cloud Eye lag",
    },
}


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        f"{names[0]} not found: run `make tools` (Debian packages prometheus, "
        "prometheus-alertmanager)"
    )


def fast_rules(source: Path, target: Path) -> Path:
    """A copy of a rule file whose ``for:`` durations are seconds instead of minutes."""
    target.write_text(re.sub(r"(\bfor:\s*)(\d+)m\b", r"\g<1>\2s", source.read_text()))
    return target


@dataclass
class Stack:
    exporter: str
    prometheus: str
    alertmanager: str


@asynccontextmanager
async def process(*command: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def get_json(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as resp:
        return await resp.json(content_type=None)


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: Any) -> None:
    async with asyncio.timeout(30):
        while True:
            assert proc.returncode is None, (await proc.stderr.read()).decode()[-2000:]
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    prometheus_bin = binary("prometheus")
    alertmanager_bin = binary("prometheus-alertmanager", "alertmanager")
    work = tmp_path_factory.mktemp("e2e")
    am_port, prom_port = free_port(), free_port()
    async with (
        exporter_process("--demo", "--demo.scenario", "incident") as (exporter, exp_proc, _),
        process(
            alertmanager_bin,
            f"--config.file={ROOT / 'prometheus/alertmanager.yml'}",
            f"--storage.path={work / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ) as am_proc,
    ):
        config = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [
            str(fast_rules(ROOT / "prometheus" / name, work / name))
            for name in config["rule_files"]
        ]
        config["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{am_port}"]}
        ]
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "dli"]
        job.update(scrape_interval="1s", scrape_timeout="1s")
        job["static_configs"] = [{"targets": [exporter.removeprefix("http://")]}]
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        async with process(
            prometheus_bin,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ) as prom_proc:
            urls = Stack(exporter, f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}")
            async with aiohttp.ClientSession() as session:
                await wait_ready(session, f"{urls.alertmanager}/-/ready", am_proc)
                await wait_ready(session, f"{urls.prometheus}/-/ready", prom_proc)
            yield urls
        assert await stop(exp_proc) == 0


async def alerts_in_alertmanager(stack: Stack, *wanted: tuple[str, str]) -> list[dict[str, Any]]:
    """Wait until Alertmanager holds every (alertname, job_name) in ``wanted``; return all."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(60):
        while True:
            alerts = await get_json(session, f"{stack.alertmanager}/api/v2/alerts")
            seen = {(a["labels"]["alertname"], a["labels"].get("job_name")) for a in alerts}
            if set(wanted) <= seen:
                return list(alerts)
            await asyncio.sleep(0.5)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_right_alerts_reach_alertmanager(stack: Stack) -> None:
    alerts = await alerts_in_alertmanager(
        stack, ("DliJobFailed", FAILING), ("DliJobRestartLoop", LOOPING)
    )

    by_name = {(a["labels"]["alertname"], a["labels"].get("job_name")): a for a in alerts}
    failed = by_name["DliJobFailed", FAILING]
    assert failed["labels"]["severity"] == "critical"
    assert failed["labels"]["target"] == TARGET
    assert failed["labels"]["queue_name"] == "flink_prod"
    assert failed["labels"]["status"] == "job_running_exception"
    assert FAILING in failed["annotations"]["description"]
    assert failed["annotations"]["runbook_url"].endswith("docs/runbooks.md#dlijobfailed")
    loop = by_name["DliJobRestartLoop", LOOPING]
    assert loop["labels"]["severity"] == "warning"
    assert loop["labels"]["queue_name"] == "flink_prod"
    assert {a["receivers"][0]["name"] for a in (failed, loop)} == {"pager", "ticket"}
    # The healthy job raises nothing, firing or pending, in Prometheus or Alertmanager.
    async with aiohttp.ClientSession() as session:
        rules = await get_json(session, f"{stack.prometheus}/api/v1/alerts")
    pending_or_firing = rules["data"]["alerts"]
    assert all(a["labels"].get("job_name") != HEALTHY for a in pending_or_firing)
    assert all(a["labels"].get("job_name") != HEALTHY for a in alerts)
    assert not {a["labels"]["alertname"] for a in alerts} & {
        "DliTargetDown",
        "DliExporterAbsent",
        "DliStaleData",
        "DliApiErrorRatioHigh",
    }


@pytest.mark.asyncio(loop_scope="module")
async def test_the_runtime_alerts_reach_alertmanager(stack: Stack) -> None:
    """The stalled job, the back-pressured job and the saturated queue each raise their alert."""
    alerts = await alerts_in_alertmanager(
        stack,
        ("DliJobStalled", STALLED),
        ("DliJobBackpressureHigh", PRESSURED),
        ("DliJobOperatorLatencyHigh", PRESSURED),
        ("DliQueueSaturated", None),
        ("DliElasticResourcePoolAtMax", None),
    )
    by_name = {(a["labels"]["alertname"], a["labels"].get("job_name")): a for a in alerts}
    for alert, job in (("DliJobStalled", STALLED), ("DliJobBackpressureHigh", PRESSURED)):
        labels = by_name[alert, job]["labels"]
        assert (labels["severity"], labels["target"], labels["queue_name"]) == (
            "warning",
            TARGET,
            QUEUE,
        )
        assert labels["job_id"].isdigit()
        assert by_name[alert, job]["annotations"]["runbook_url"].endswith(f"#{alert.lower()}")
    queue = by_name["DliQueueSaturated", None]["labels"]
    assert (queue["target"], queue["queue_name"]) == (TARGET, QUEUE)
    pool = by_name["DliElasticResourcePoolAtMax", None]["labels"]
    assert (pool["target"], pool["elastic_resource_pool"]) == (TARGET, POOL)
    # Only the stalled job is stalled, only the back-pressured one back-pressured; every source
    # works, and the healthy job raises nothing (checked for every alert in the test above).
    raised = {(a["labels"]["alertname"], a["labels"].get("job_name")) for a in alerts}
    assert {job for name, job in raised if name == "DliJobStalled"} == {STALLED}
    assert {job for name, job in raised if name == "DliJobBackpressureHigh"} == {PRESSURED}
    assert all(a["labels"].get("job_name") != HEALTHY for a in alerts)
    assert "DliSourceDown" not in {name for name, _ in raised}


@pytest.mark.asyncio(loop_scope="module")
async def test_every_dashboard_query_runs_and_core_panels_have_data(stack: Stack) -> None:
    # Alerts firing means the rules and scrapes have produced a few samples to query.
    await alerts_in_alertmanager(stack, ("DliJobRestartLoop", LOOPING), ("DliJobFailed", FAILING))
    async with aiohttp.ClientSession() as session:
        info = await get_json(session, f"{stack.prometheus}/api/v1/query", query="dli_job_info")
        job_ids = {r["metric"]["job_name"]: r["metric"]["job_id"] for r in info["data"]["result"]}
        for path in sorted((ROOT / "grafana/dashboards").glob("*.json")):
            dashboard = json.loads(path.read_text())
            with_data: set[str] = set()
            for job in (job_ids[LOOPING], job_ids[HEALTHY]):
                variables = {"target": TARGET, "queue": ".*", "job": job, "scrape_job": "dli"}
                for title, expr in panel_queries(dashboard):
                    query = substitute(expr, variables)
                    answer = await get_json(
                        session, f"{stack.prometheus}/api/v1/query", query=query
                    )
                    assert answer["status"] == "success", (path.name, title, query, answer)
                    if answer["data"]["result"]:
                        with_data.add(title)
            missing = CORE_PANELS[dashboard["uid"]] - with_data
            assert not missing, f"{path.name}: no data for {sorted(missing)}"
