"""The chart's sharding, end to end: 3 replicas render a StatefulSet whose pods, run as real
exporter processes with the rendered args and env against one simulator, poll every target once.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from exporter.shard import stable_bucket
from exporter.simulator import LIST_JOBS, Simulator, serve
from tests.processes import exporter_process, scrape_when_ready, stop
from tests.test_chart import Rendering, render

REPLICAS = 3
ACCESS_KEY = "CHARTSHARDAK00000001"
SECRET_KEY = "chart-shard-sk-not-real"
TARGETS = {f"project-{i:02d}": f"{i:032x}" for i in range(12)}


def pod_env(rendering: Rendering, pod: str) -> dict[str, str]:
    """The container's env as the kubelet would set it for ``pod`` (rendered Secrets only)."""
    secrets = {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
        for s in rendering.of_kind("Secret")
    }
    env: dict[str, str] = {}
    for entry in rendering.container().get("env", []):
        source = entry.get("valueFrom", {})
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[entry["name"]] = pod
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secrets[ref["name"]].get(ref["key"])
            assert value is not None or ref.get("optional"), ref
            if value is not None:
                env[entry["name"]] = value
        else:  # pragma: no cover - a new kind of env entry needs handling here
            raise AssertionError(f"unhandled env entry {entry}")
    return env


def pod_args(rendering: Rendering, config_file: Path) -> list[str]:
    """The container's args with the config file and listen address of this machine."""
    replaced = {
        "--config.file": f"--config.file={config_file}",
        "--web.listen-address": "--web.listen-address=127.0.0.1:0",
    }
    return [replaced.get(arg.partition("=")[0], arg) for arg in rendering.container()["args"]]


@asynccontextmanager
async def pod_process(args: list[str], env: dict[str, str]) -> AsyncIterator[str]:
    """The exporter run as a pod would run it (its args and env only); yields its URL."""
    pod_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_PROXY": "127.0.0.1", **env}
    async with exporter_process(*args, env=pod_env) as (url, process, _lines):
        yield url
        assert await stop(process) == 0


def samples(exposition: str, name: str) -> dict[str, float]:
    """``name``'s value by target label (list_jobs only for the request counter)."""
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("operation", LIST_JOBS) == LIST_JOBS:
                found[sample.labels["target"]] += sample.value
    return dict(found)


async def test_three_replicas_poll_every_target_exactly_once(tmp_path: Path) -> None:
    simulator = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, seed=1, lifecycle=False)
    for project in TARGETS.values():
        simulator.add_project(project)
        simulator.add_job(project)
    async with serve(simulator) as sim_url:
        rendering = render(
            {
                "replicas": REPLICAS,
                "credentials": {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY},
                "config": {
                    "poll_interval": "60s",
                    "timeout": "5s",
                    "sources": {
                        "cloud_eye": False,
                        "queues": False,
                        "elastic_resource_pools": False,
                    },
                    # No auth: the default chain reads HUAWEICLOUD_SDK_AK/SK, set from the
                    # chart's Secret.
                    "targets": [
                        {
                            "name": name,
                            "region": "cn-north-4",
                            "project_id": project,
                            "endpoint": sim_url,
                        }
                        for name, project in TARGETS.items()
                    ],
                },
            }
        )
        statefulset = rendering.one("StatefulSet")
        assert statefulset["spec"]["replicas"] == REPLICAS
        config_file = tmp_path / "config.yaml"
        config_file.write_text(rendering.one("ConfigMap")["data"]["config.yaml"])
        pods = [f"{statefulset['metadata']['name']}-{i}" for i in range(REPLICAS)]
        assert pods == [f"dli-exporter-{i}" for i in range(REPLICAS)]

        async with AsyncExitStack() as stack:
            urls = await asyncio.gather(
                *(
                    stack.enter_async_context(
                        pod_process(pod_args(rendering, config_file), pod_env(rendering, pod))
                    )
                    for pod in pods
                )
            )
            expositions = await asyncio.gather(*(scrape_when_ready(url) for url in urls))
            listed = Counter(
                record.path.split("/")[2]
                for record in simulator.request_log
                if record.operation == LIST_JOBS and record.status == 200
            )
            keys = {r.access_key for r in simulator.request_log if r.operation == LIST_JOBS}

    up = [samples(text, "dli_up") for text in expositions]
    requests = [samples(text, "dli_api_requests_total") for text in expositions]
    for name, project in TARGETS.items():
        owners = [index for index in range(REPLICAS) if name in up[index]]
        assert owners == [stable_bucket(name, REPLICAS)], name  # the pod whose ordinal it hashes to
        (owner,) = owners
        assert up[owner][name] == 1.0
        assert [index for index in range(REPLICAS) if requests[index].get(name)] == owners
        # Every list call the simulator answered for the project is the owner's.
        assert listed[project] >= 1
        assert listed[project] == requests[owner][name], name
    assert set(listed) == set(TARGETS.values())
    assert keys == {ACCESS_KEY}
    assert all(up), "a replica polls nothing: the split is skewed"
