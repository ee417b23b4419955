"""The aiohttp application: `/metrics`, a status page, health and readiness; owns the pollers."""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.auth import Credentials, RequestObserver, credentials_for
from exporter.client import DliClient
from exporter.collector import SnapshotCollector
from exporter.config import Config, TargetConfig
from exporter.exposition import (
    ExpositionCache,
    SnapshotStore,
    accepts_gzip,
    wants_openmetrics,
)
from exporter.model import Snapshot
from exporter.poller import Poller
from exporter.ratelimit import RateLimiter
from exporter.telemetry import ApiMetrics, register_build_info

log = logging.getLogger(__name__)

CredentialsFactory = Callable[
    [TargetConfig, aiohttp.ClientSession, RequestObserver | None], Credentials
]

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", SnapshotStore)
CACHE = web.AppKey("cache", ExpositionCache)
API_METRICS = web.AppKey("api_metrics", ApiMetrics)
CREDENTIALS: web.AppKey[CredentialsFactory] = web.AppKey("credentials")
RENDERS = web.AppKey("renders", set[asyncio.Task[object]])


def create_app(
    config: Config, *, credentials: CredentialsFactory = credentials_for
) -> web.Application:
    """Build the exporter's web app; its pollers start and stop with the app."""
    registry = CollectorRegistry(auto_describe=True)
    store = SnapshotStore(target.name for target in config.targets)
    registry.register(SnapshotCollector(store.snapshots))
    app = web.Application()
    app[CONFIG] = config
    app[STORE] = store
    app[CACHE] = ExpositionCache(registry)
    app[API_METRICS] = ApiMetrics(registry)
    app[CREDENTIALS] = credentials
    app[RENDERS] = set()
    register_build_info(registry, __version__)
    app.cleanup_ctx.append(_run_pollers)
    app.router.add_get("/", _landing_page)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    return app


async def _run_pollers(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    timeout = aiohttp.ClientTimeout(total=max(t.timeout for t in config.targets))
    headers = {"User-Agent": f"dli-exporter/{__version__}"}
    async with aiohttp.ClientSession(timeout=timeout, headers=headers, trust_env=True) as session:
        tasks = [
            asyncio.create_task(_poller(app, session, target).run(), name=f"poll {target.name}")
            for target in config.targets
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _poller(app: web.Application, session: aiohttp.ClientSession, target: TargetConfig) -> Poller:
    api_metrics = app[API_METRICS]

    def observe(operation: str, code: str, seconds: float) -> None:
        api_metrics.observe(target.name, operation, code, seconds)

    client = DliClient(
        session,
        endpoint=target.endpoint,
        project_id=target.project_id,
        credentials=app[CREDENTIALS](target, session, observe),
        timeout=target.timeout,
        filters=target.filters,
        page_concurrency=target.concurrency,
        limiter=RateLimiter(target.rate_limit),
        observe=observe,
    )
    return Poller(target, client, lambda snapshot: _publish(app, snapshot))


def _publish(app: web.Application, snapshot: Snapshot) -> None:
    """Store a finished poll's snapshot and start rendering the new exposition right away."""
    app[STORE].publish(snapshot)
    cache = app[CACHE]
    cache.invalidate()
    task: asyncio.Task[object] = asyncio.create_task(cache.get())
    renders = app[RENDERS]
    renders.add(task)
    task.add_done_callback(renders.discard)


async def _metrics(request: web.Request) -> web.Response:
    openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
    rendered = await request.app[CACHE].get(openmetrics=openmetrics)
    headers = {"Content-Type": rendered.content_type, "Vary": "Accept, Accept-Encoding"}
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=rendered.gzipped, headers=headers)
    return web.Response(body=rendered.body, headers=headers)


async def _healthy(_request: web.Request) -> web.Response:
    return web.Response(text="Healthy\n")


async def _ready(request: web.Request) -> web.Response:
    store = request.app[STORE]
    if store.ready():
        return web.Response(text="Ready\n")
    waiting = ", ".join(s.target for s in store.snapshots() if not s.polled)
    return web.Response(status=503, text=f"Not ready: first poll pending for {waiting}\n")


async def _landing_page(request: web.Request) -> web.Response:
    rows = "\n".join(_status_row(snapshot) for snapshot in request.app[STORE].snapshots())
    page = _LANDING_PAGE.format(version=html.escape(__version__), rows=rows)
    return web.Response(text=page, content_type="text/html")


def _status_row(snapshot: Snapshot) -> str:
    state = ("up" if snapshot.up else "down") if snapshot.polled else "pending"
    cells = (
        snapshot.target,
        state,
        str(len(snapshot.jobs)) if snapshot.polled else "",
        _format_time(snapshot.last_success_time),
        f"{snapshot.poll_duration_seconds:.2f}s" if snapshot.poll_duration_seconds else "",
        snapshot.last_error or "",
    )
    return "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"


def _format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    age = max(0.0, time.time() - timestamp)
    stamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({age:.0f}s ago)"


_LANDING_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>DLI exporter</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
</style></head>
<body>
<h1>DLI exporter</h1>
<p>Prometheus exporter for Huawei Cloud DLI Flink jobs, version {version}.</p>
<p><a href="metrics">Metrics</a> &middot; <a href="-/healthy">Health</a> &middot;
<a href="-/ready">Readiness</a></p>
<h2>Targets</h2>
<table>
<tr><th>Target</th><th>State</th><th>Jobs</th><th>Last successful poll</th>
<th>Poll duration</th><th>Last error</th></tr>
{rows}
</table>
</body>
</html>
"""
