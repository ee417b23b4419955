"""Run an aiohttp app (the exporter's, the simulator's) on loopback and read its ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

#: Every sample of a scrape: (name, labels) -> value.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """``app`` on 127.0.0.1 with an ephemeral port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def scrape(url: str) -> Samples:
    """One scrape of ``url``'s ``/metrics``, parsed."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape_until(
    url: str, condition: Callable[[Samples], bool], *, within: float = 15.0
) -> Samples:
    """Scrape until ``condition`` holds (a failure after ``within`` seconds)."""
    async with asyncio.timeout(within):
        while True:
            found = await scrape(url)
            if condition(found):
                return found
            await asyncio.sleep(0.05)
