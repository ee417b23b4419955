"""The event-loop lag self-metric: a stall shows as one observation beyond 100 ms."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from prometheus_client import CollectorRegistry

from exporter.config import Config
from exporter.looplag import LoopLag
from exporter.web import create_app
from tests.conftest import make_target
from tests.exporting import serve_app


def lag_samples(registry: CollectorRegistry) -> dict[str, float]:
    return {
        f"{s.name}{s.labels.get('le', '')}": s.value
        for family in registry.collect()
        for s in family.samples
        if s.name.startswith("dli_exporter_event_loop_lag_seconds")
    }


async def test_a_blocked_loop_is_measured_as_one_stall() -> None:
    registry = CollectorRegistry()
    probe = asyncio.create_task(LoopLag(registry, interval=0.01).run())
    await asyncio.sleep(0.1)  # a few healthy wake-ups first
    time.sleep(0.3)
    await asyncio.sleep(0.05)
    probe.cancel()
    samples = lag_samples(registry)
    count = samples["dli_exporter_event_loop_lag_seconds_count"]
    assert count >= 3
    stalls = count - samples["dli_exporter_event_loop_lag_seconds_bucket0.1"]
    assert stalls == 1  # one wake-up came >= 0.29 s late; the healthy ones were not
    assert samples["dli_exporter_event_loop_lag_seconds_bucket0.25"] == count - 1
    assert samples["dli_exporter_event_loop_lag_seconds_sum"] >= 0.29


async def test_the_exporter_publishes_its_loop_lag(sim_url: str) -> None:
    app = create_app(Config(targets=(make_target("a", sim_url),), source="<test>"))
    async with serve_app(app) as url, aiohttp.ClientSession() as session:
        async with asyncio.timeout(10):
            while True:
                async with session.get(f"{url}/metrics") as response:
                    text = await response.text()
                if "dli_exporter_event_loop_lag_seconds_count" in text and "dli_up{" in text:
                    break
                await asyncio.sleep(0.1)
    assert "# TYPE dli_exporter_event_loop_lag_seconds histogram" in text
    assert 'dli_exporter_event_loop_lag_seconds_bucket{le="0.1"}' in text
