"""The aiohttp application: `/metrics`, a status page, the config, health, readiness, reload.

The exporter itself (`exporter.runtime.Exporter`) is built by `create_app` and owned by the app.
Every handler answers with the exporter's own text on failure (an unexpected exception is logged
with its traceback and answered 500), never with aiohttp's default error page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator
from typing import Final

import aiohttp
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from exporter import __version__
from exporter.auth import CredentialsPool, describe_credentials
from exporter.basicauth import BasicAuth
from exporter.config import Config
from exporter.config.web import WebConfig, WebSettings
from exporter.configview import config_yaml
from exporter.dli.registry import RESOURCES
from exporter.dli.resource import Resource
from exporter.exposition import accepts_gzip, wants_openmetrics
from exporter.liveweb import LiveWebConfig
from exporter.runtime import (
    DEFAULT_RELOAD_TIMEOUT,
    ConfigLoader,
    Exporter,
    ExporterHooks,
    ProcessTuning,
    ReloadError,
    tune_process,
)
from exporter.statuspage import status_page
from exporter.supervisor import CredentialsFactory

log = logging.getLogger(__name__)

EXPORTER = web.AppKey("exporter", Exporter)
#: Whether ``/-/reload`` may be used (``--web.enable-lifecycle``).
LIFECYCLE = web.AppKey("lifecycle", bool)
#: Where the status page links a job's dashboard (``--web.grafana-url``); "" for no links.
GRAFANA_URL = web.AppKey("grafana_url", str)


def create_app(
    config: Config,
    *,
    load_config: ConfigLoader | None = None,
    credentials: CredentialsFactory | None = None,
    web_config: WebConfig | None = None,
    enable_lifecycle: bool = False,
    reload_timeout: float = DEFAULT_RELOAD_TIMEOUT,
    hooks: ExporterHooks | None = None,
    tuning: ProcessTuning | None = None,
    resources: tuple[Resource[object], ...] = RESOURCES,
    web_config_live: LiveWebConfig | None = None,
    grafana_url: str | None = None,
) -> web.Application:
    """Build the exporter's web app; its pollers start and stop with the app.

    ``load_config`` re-reads the configuration on reload (SIGHUP, ``POST /-/reload``); without
    it a reload re-applies ``config``. ``web_config`` adds basic auth (TLS is the listener's);
    ``web_config_live`` instead is a web config that reloads re-read with ``config`` (the CLI's).
    ``credentials`` builds each target's credentials (default: a `CredentialsPool` of this app,
    so targets assuming the same agency share one credential). ``enable_lifecycle`` enables
    ``/-/reload`` over HTTP (403 otherwise, as in Prometheus);
    ``reload_timeout`` bounds each reload's config read. ``hooks`` instrument the exporter and
    the app (see `ExporterHooks`). ``tuning`` applies `tune_process` first, as the CLI does;
    without it the process-wide settings are left alone. ``resources`` are what every target
    polls after its job list (`exporter.dli.registry.RESOURCES`). ``grafana_url`` (checked
    by `exporter.joblinks.parse_grafana_url`) links the status page's jobs to their dashboard.
    """
    if tuning is not None:
        tune_process(switch_interval=tuning.switch_interval)
    hooks = hooks or ExporterHooks()
    live = web_config_live
    if live is None and web_config is not None:
        live = LiveWebConfig(WebSettings(web_config))
    exporter = Exporter(
        config,
        load_config=load_config or (lambda: config),
        credentials=credentials or CredentialsPool(),
        reload_timeout=reload_timeout,
        hooks=hooks,
        resources=resources,
        web=live,
    )
    middlewares: list[Middleware] = [_errors]
    if live is not None:
        auth = BasicAuth(live.settings.config, registry=exporter.registry)
        live.subscribe(lambda settings: auth.update(settings.config))
        middlewares.append(auth.middleware)
    app = web.Application(middlewares=middlewares)
    app[EXPORTER] = exporter
    app[LIFECYCLE] = enable_lifecycle
    app[GRAFANA_URL] = grafana_url or ""
    app.cleanup_ctx.append(_run_pollers)
    app.router.add_get("/", _landing_page)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/config", _config)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_post("/-/reload", _reload)
    app.router.add_put("/-/reload", _reload)
    if hooks.instrument_app is not None:
        hooks.instrument_app(app)
    return app


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer an unexpected exception with a short text 500 and log it with its traceback."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise  # aiohttp's own answers: 404, 405, ...
    except Exception:
        log.exception(
            "request failed", extra={"fields": {"path": request.path, "method": request.method}}
        )
        return web.Response(
            status=500, text="Internal error while answering; see the exporter's log.\n"
        )


async def _run_pollers(app: web.Application) -> AsyncIterator[None]:
    exporter = app[EXPORTER]
    headers = {"User-Agent": f"dli-exporter/{__version__}"}
    # trust_env makes aiohttp look up ~/.netrc and the proxy settings in a worker thread on
    # every request (measured: twice the client CPU); only pay for it when a proxy is set.
    async with aiohttp.ClientSession(headers=headers, trust_env=proxy_configured()) as session:
        exporter.supervisor.start(session, exporter.config)
        probe = asyncio.create_task(exporter.loop_lag.run(), name="event loop lag")
        yield
        probe.cancel()
        await exporter.supervisor.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await probe


def proxy_configured() -> bool:
    """True when the environment names an HTTP(S) proxy (aiohttp honours it then)."""
    names = ("https_proxy", "http_proxy", "all_proxy")
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in names)


def _header(request: web.Request, name: str) -> str:
    """Every ``name`` header of the request joined into one list, as RFC 9110 allows."""
    return ", ".join(request.headers.getall(name, ()))


async def _metrics(request: web.Request) -> web.Response:
    openmetrics = wants_openmetrics(_header(request, hdrs.ACCEPT))
    rendered = await request.app[EXPORTER].cache.get(openmetrics=openmetrics)
    headers = {"Content-Type": rendered.content_type, "Vary": "Accept, Accept-Encoding"}
    if accepts_gzip(_header(request, hdrs.ACCEPT_ENCODING)):
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
    if not request.app[LIFECYCLE]:
        return web.Response(status=403, text="Lifecycle API is not enabled.\n")
    if not _same_origin(request):
        log.warning(
            "refused a cross-origin reload request",
            extra={
                "fields": {"remote": request.remote or "", "origin": _header(request, "Origin")}
            },
        )
        return web.Response(status=403, text="Cross-origin reload requests are refused.\n")
    try:
        change = await request.app[EXPORTER].reload()
    except ReloadError as exc:
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


_ORIGIN_RE: Final = re.compile(
    r"([a-z][a-z0-9+.-]*)://(\[[0-9a-f:.]+\]|[a-z0-9._~%!$&'()*+,;=-]+)(?::([0-9]{1,5}))?",
    re.IGNORECASE,
)
_HOST_RE: Final = re.compile(
    r"(\[[0-9a-f:.]+\]|[a-z0-9._~%!$&'()*+,;=-]+)(?::([0-9]{1,5}))?", re.IGNORECASE
)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _same_origin(request: web.Request) -> bool:
    """True without an ``Origin`` header, or when it is this exporter's own origin.

    The own origin is the request's scheme with its ``Host`` header; ``Origin: null``, a
    malformed or repeated header, or a missing ``Host`` count as foreign.
    """
    origins = request.headers.getall("Origin", [])
    if not origins:
        return True
    hosts = request.headers.getall(hdrs.HOST, [])
    if len(origins) != 1 or len(hosts) != 1:
        return False
    origin = _ORIGIN_RE.fullmatch(origins[0].strip())
    host = _HOST_RE.fullmatch(hosts[0].strip())
    if origin is None or host is None:
        return False
    scheme = request.scheme
    return (origin[1].lower(), origin[2].lower(), _port(origin[3], origin[1].lower())) == (
        scheme,
        host[1].lower(),
        _port(host[2], scheme),
    )


def _port(text: str | None, scheme: str) -> int | None:
    return int(text) if text else _DEFAULT_PORTS.get(scheme)


async def _landing_page(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    credentials = {target.name: describe_credentials(target) for target in exporter.config.targets}
    grafana = request.app[GRAFANA_URL] or None
    page = status_page(exporter.store.snapshots(), credentials, grafana)
    return web.Response(text=page, content_type="text/html")


async def _config(request: web.Request) -> web.Response:
    """The effective configuration, secrets redacted (as blackbox_exporter's ``/config``)."""
    exporter = request.app[EXPORTER]
    web_config = exporter.web.settings.config if exporter.web is not None else None
    if web_config is not None and web_config == WebConfig():
        web_config = None  # no --web.config.file
    # Built in a thread: YAML of thousands of targets takes a while; the config is immutable.
    text = await asyncio.to_thread(config_yaml, exporter.config, web_config)
    return web.Response(text=text, content_type="text/plain")
