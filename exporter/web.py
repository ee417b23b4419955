"""The aiohttp application: `/metrics`, a status page, health, readiness and reload."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics_exposition

from exporter import __version__
from exporter.auth import credentials_for
from exporter.collector import build_catalogue
from exporter.config import Config, ConfigError
from exporter.exposition import (
    ExpositionCache,
    SnapshotStore,
    accepts_gzip,
    wants_openmetrics,
)
from exporter.model import Snapshot
from exporter.supervisor import ConfigChange, CredentialsFactory, Supervisor
from exporter.telemetry import ApiMetrics, ProblemMetrics, ReloadMetrics, register_build_info
from exporter.webconfig import WebConfig, basic_auth_middleware
from exporter.writer import ExpositionWriter

log = logging.getLogger(__name__)

#: Reads the configuration afresh (blocking; run in a thread). Raises ConfigError.
ConfigLoader = Callable[[], Config]


class Exporter:
    """The exporter's live state: config, snapshots, exposition cache, pollers, reloads."""

    def __init__(
        self, config: Config, *, load_config: ConfigLoader, credentials: CredentialsFactory
    ) -> None:
        self.config = config
        #: The exporter's own metrics; the job and target families come from the writer.
        self.registry = CollectorRegistry(auto_describe=True)
        self.store = SnapshotStore(target.name for target in config.targets)
        self.problem_metrics = ProblemMetrics(self.registry)
        self.writer = self._writer(config)
        self.cache = ExpositionCache(self.render)
        self.api_metrics = ApiMetrics(self.registry)
        self.reload_metrics = ReloadMetrics(self.registry, time.time())
        register_build_info(self.registry, __version__)
        self.supervisor = Supervisor(
            store=self.store,
            api_metrics=self.api_metrics,
            problem_metrics=self.problem_metrics,
            credentials=credentials,
            on_change=self.refresh_exposition,
        )
        self._load_config = load_config
        self._reload_lock = asyncio.Lock()
        #: The first exposition generation holding every target's first poll (None: not yet).
        self._complete_from: int | None = None
        self._background: set[asyncio.Task[object]] = set()

    def _writer(self, config: Config) -> ExpositionWriter:
        return ExpositionWriter(
            build_catalogue(config.metrics), on_error=self.problem_metrics.render_error
        )

    def render(self, openmetrics: bool) -> list[bytes]:
        """The whole exposition in parts: job families, then the exporter's own (blocking)."""
        parts = self.writer.parts(self.store.snapshots(), openmetrics=openmetrics)
        if openmetrics:
            own: bytes = openmetrics_exposition.generate_latest(self.registry)  # type: ignore[no-untyped-call]
        else:
            own = generate_latest(self.registry)
        return [*parts, own]

    def refresh_exposition(self) -> None:
        """The data changed: start rendering the new exposition right away, off the loop."""
        self.cache.invalidate()
        if not self.store.ready():
            self._complete_from = None
        elif self._complete_from is None:
            self._complete_from = self.cache.generation
        self._spawn(self.cache.refresh())

    def ready(self) -> bool:
        """Every target has finished its first poll and ``/metrics`` already serves them all."""
        return (
            self._complete_from is not None
            and self.store.ready()
            and self.cache.serves_generation(self._complete_from)
        )

    async def reload(self) -> ConfigChange:
        """Re-read the config and apply it; on a bad one keep the running config and raise."""
        async with self._reload_lock:
            try:
                config = await asyncio.to_thread(self._load_config)
            except ConfigError as exc:
                self.reload_metrics.record(successful=False, now=time.time())
                await self._reexpose()
                log.error(
                    "config reload failed; keeping the running config",
                    extra={"fields": {"problems": str(exc)}},
                )
                raise
            if config.metrics != self.config.metrics:
                self.writer = self._writer(config)
            change = self.supervisor.apply(config)
            self.config = config
            self.reload_metrics.record(successful=True, now=time.time())
            await self._reexpose()
            log.info(
                "config reloaded",
                extra={
                    "fields": {
                        "added": ",".join(change.added),
                        "changed": ",".join(change.changed),
                        "removed": ",".join(change.removed),
                    }
                },
            )
            return change

    async def _reexpose(self) -> None:
        """Render the changed exposition before answering, so the answer and /metrics agree."""
        self.cache.invalidate()
        await self.cache.refresh()

    def request_reload(self) -> None:
        """Reload in the background (for SIGHUP); the outcome is logged and exported."""

        async def reload_quietly() -> None:
            with contextlib.suppress(ConfigError):  # logged and counted by reload()
                await self.reload()

        self._spawn(reload_quietly())

    def _spawn(self, coroutine: Coroutine[object, object, object]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


EXPORTER = web.AppKey("exporter", Exporter)


def create_app(
    config: Config,
    *,
    load_config: ConfigLoader | None = None,
    credentials: CredentialsFactory = credentials_for,
    web_config: WebConfig | None = None,
) -> web.Application:
    """Build the exporter's web app; its pollers start and stop with the app.

    ``load_config`` re-reads the configuration on reload (SIGHUP, ``POST /-/reload``); without
    it a reload re-applies ``config``. ``web_config`` adds basic auth (TLS is the listener's).
    """
    auth = basic_auth_middleware(web_config) if web_config else None
    app = web.Application(middlewares=[auth] if auth else [])
    app[EXPORTER] = Exporter(
        config, load_config=load_config or (lambda: config), credentials=credentials
    )
    app.cleanup_ctx.append(_run_pollers)
    app.router.add_get("/", _landing_page)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_post("/-/reload", _reload)
    app.router.add_put("/-/reload", _reload)
    return app


async def _run_pollers(app: web.Application) -> AsyncIterator[None]:
    exporter = app[EXPORTER]
    headers = {"User-Agent": f"dli-exporter/{__version__}"}
    # trust_env makes aiohttp look up ~/.netrc and the proxy settings in a worker thread on
    # every request (measured: twice the client CPU); only pay for it when a proxy is set.
    async with aiohttp.ClientSession(headers=headers, trust_env=proxy_configured()) as session:
        exporter.supervisor.start(session, exporter.config)
        yield
        await exporter.supervisor.stop()


def proxy_configured() -> bool:
    """True when the environment names an HTTP(S) proxy (aiohttp honours it then)."""
    names = ("https_proxy", "http_proxy", "all_proxy")
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in names)


async def _metrics(request: web.Request) -> web.Response:
    openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
    rendered = await request.app[EXPORTER].cache.get(openmetrics=openmetrics)
    headers = {"Content-Type": rendered.content_type, "Vary": "Accept, Accept-Encoding"}
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=rendered.gzipped, headers=headers)
    return web.Response(body=await asyncio.to_thread(rendered.plain), headers=headers)


async def _healthy(_request: web.Request) -> web.Response:
    return web.Response(text="Healthy\n")


async def _ready(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    if exporter.ready():
        return web.Response(text="Ready\n")
    waiting = ", ".join(s.target for s in exporter.store.snapshots() if not s.polled)
    if not waiting:
        return web.Response(status=503, text="Not ready: rendering the first exposition\n")
    return web.Response(status=503, text=f"Not ready: first poll pending for {waiting}\n")


async def _reload(request: web.Request) -> web.Response:
    try:
        change = await request.app[EXPORTER].reload()
    except ConfigError as exc:
        return web.Response(status=500, text=f"Reload failed; the running config is kept:\n{exc}\n")
    summary = ", ".join(
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("added", change.added),
            ("changed", change.changed),
            ("removed", change.removed),
        )
        if names
    )
    return web.Response(text=f"Reloaded. {summary or 'No target changed.'}\n")


async def _landing_page(request: web.Request) -> web.Response:
    rows = "\n".join(_status_row(s) for s in request.app[EXPORTER].store.snapshots())
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
