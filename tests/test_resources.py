"""A resource beyond the job list, added by one module (`tests.widgets`) and registered.

Its samples appear on ``/metrics``; its failure leaves ``dli_up`` at 1 and every job series as
it was, and shows in its own result; it recovers on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from exporter.config import Config
from exporter.simulator import Simulator
from exporter.web import EXPORTER, create_app
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_target
from tests.exporting import Samples, scrape_until, serve_app
from tests.widgets import WIDGETS, WidgetShop, widget_route


@dataclass(slots=True)
class Running:
    url: str
    shop: WidgetShop
    app: web.Application


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    """The exporter polling a simulator that also serves widgets, with the widget resource."""
    simulator = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, seed=1, lifecycle=False)
    simulator.add_project(PROJECT)
    for status in ("job_running", "job_submitting"):
        simulator.add_job(PROJECT, status=status)
    shop = WidgetShop([{"name": "sprocket", "spares": 3}, {"name": "cog", "spares": 0}])
    async with serve_app(widget_route(simulator.app(), shop)) as sim_url:
        target = make_target("prod", sim_url, poll_interval=0.2, timeout=0.15)
        app = create_app(Config(targets=(target,), source="<test>"), resources=(WIDGETS,))
        async with serve_app(app) as url:
            yield Running(url, shop, app)


def spares(found: Samples) -> dict[str, float]:
    return {
        dict(labels)["widget"]: value
        for (name, labels), value in found.items()
        if name == "dli_test_widget_spares"
    }


def job_series(found: Samples) -> Samples:
    return {key: value for key, value in found.items() if key[0].startswith("dli_job_")}


def widgets_up(found: Samples) -> float | None:
    return found.get(("dli_test_widgets_up", frozenset({("target", "prod")})))


UP = ("dli_up", frozenset({("target", "prod")}))


async def test_a_registered_resource_publishes_its_samples(running: Running) -> None:
    found = await scrape_until(running.url, lambda f: bool(spares(f)))
    assert spares(found) == {"sprocket": 3.0, "cog": 0.0}
    assert widgets_up(found) == 1.0
    assert found[UP] == 1.0
    assert len({dict(labels)["job_id"] for (n, labels) in found if n == "dli_job_info"}) == 2


async def test_a_failing_resource_leaves_the_target_up_and_the_job_series_intact(
    running: Running,
) -> None:
    before = await scrape_until(running.url, lambda f: bool(spares(f)))
    running.shop.status = 500

    failed = await scrape_until(running.url, lambda f: widgets_up(f) == 0.0)

    assert failed[UP] == 1.0
    assert job_series(failed).keys() == job_series(before).keys()
    assert spares(failed) == {"sprocket": 3.0, "cog": 0.0}  # recent data kept, like jobs'
    snapshot = running.app[EXPORTER].store.snapshots()[0]
    result = snapshot.sources["widgets"]
    assert not result.ok and result.error is not None and "500" in result.error

    running.shop.status = 200
    running.shop.widgets = [{"name": "cog", "spares": 7}]
    recovered = await scrape_until(running.url, lambda f: spares(f) == {"cog": 7.0})
    assert widgets_up(recovered) == 1.0 and recovered[UP] == 1.0


async def test_without_the_resource_its_families_are_not_published(sim_url: str) -> None:
    app = create_app(Config(targets=(make_target("plain", sim_url),), source="<test>"))
    async with (
        serve_app(app) as url,
        aiohttp.ClientSession() as session,
        session.get(f"{url}/metrics") as resp,
    ):
        text = await resp.text()
    assert "dli_test_widget" not in text
