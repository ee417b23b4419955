"""The aiohttp application: `/metrics`, a status page, health, readiness and reload.

Every handler answers with the exporter's own text on failure (an unexpected exception is logged
with its traceback and answered 500), never with aiohttp's default error page.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Final, TypeVar

import aiohttp
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics_exposition

from exporter import __version__
from exporter.auth import credentials_for
from exporter.basicauth import basic_auth_middleware
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
from exporter.values import clean_text
from exporter.webconfig import WebConfig
from exporter.writer import ExpositionWriter

log = logging.getLogger(__name__)

#: Reads the configuration afresh (blocking; run in a thread). Raises ConfigError.
ConfigLoader = Callable[[], Config]
#: A reload whose config read takes longer than this fails (the read may hang on a bad mount).
DEFAULT_RELOAD_TIMEOUT: Final = 30.0
#: How much of an unexpected exception's message a reload answer shows (the log has it all).
_MAX_PROBLEM_CHARS: Final = 500

_T = TypeVar("_T")


class ReloadError(Exception):
    """A reload failed and the running config was kept; ``str()`` says why."""


class Exporter:
    """The exporter's live state: config, snapshots, exposition cache, pollers, reloads."""

    def __init__(
        self,
        config: Config,
        *,
        load_config: ConfigLoader,
        credentials: CredentialsFactory,
        reload_timeout: float = DEFAULT_RELOAD_TIMEOUT,
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
        self._reload_timeout = reload_timeout
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
        """Re-read the config and apply it; on any failure keep the running config.

        Raises :class:`ReloadError` for every failure: a :class:`ConfigError`, a read that does
        not finish within the reload timeout, or any other exception (logged with traceback).
        """
        async with self._reload_lock:
            try:
                config = await _call_in_thread(self._load_config, self._reload_timeout)
            except ConfigError as exc:
                error = self._failed_reload(str(exc))
            except _Hung:
                error = self._failed_reload(
                    f"reading the config did not finish within {self._reload_timeout:g}s"
                )
            except Exception as exc:
                error = self._failed_reload(_describe("reading", exc), exc)
            else:
                try:
                    change = self._apply(config)
                except Exception as exc:
                    error = self._failed_reload(_describe("applying", exc), exc)
                else:
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
            await self._reexpose()
            raise error

    def _apply(self, config: Config) -> ConfigChange:
        writer = self.writer
        if config.metrics != self.config.metrics:
            writer = self._writer(config)
        change = self.supervisor.apply(config)
        self.writer = writer
        self.config = config
        return change

    def _failed_reload(self, problems: str, exc: BaseException | None = None) -> ReloadError:
        """Count and log a failed reload (once, with the traceback of an unexpected error)."""
        self.reload_metrics.record(successful=False, now=time.time())
        log.error(
            "config reload failed; keeping the running config",
            extra={"fields": {"problems": problems}},
            exc_info=exc,
        )
        return ReloadError(problems)

    async def _reexpose(self) -> None:
        """Render the changed exposition before answering, so the answer and /metrics agree."""
        self.cache.invalidate()
        try:
            await self.cache.refresh()
        except Exception:  # the next scrape renders again; a reload's outcome stands
            log.exception("rendering the exposition failed")

    def request_reload(self) -> None:
        """Reload in the background (for SIGHUP); the outcome is logged and exported."""

        async def reload_quietly() -> None:
            with contextlib.suppress(ReloadError):  # logged and counted by reload()
                await self.reload()

        self._spawn(reload_quietly())

    def _spawn(self, coroutine: Coroutine[object, object, object]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task failed", exc_info=exc)


class _Hung(Exception):
    """A blocking call did not return in time (it may still be running in its thread)."""


async def _call_in_thread(function: Callable[[], _T], limit: float) -> _T:
    """Run blocking ``function`` in a daemon thread of its own; :class:`_Hung` after ``limit`` s.

    Unlike ``asyncio.to_thread`` a call that never returns holds no executor thread and cannot
    keep the process from exiting.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def set_result(result: _T) -> None:
        if not future.done():
            future.set_result(result)

    def set_exception(exc: Exception) -> None:
        if not future.done():
            future.set_exception(exc)

    def run() -> None:
        try:
            result = function()
        except Exception as exc:
            deliver: Callable[[], object] = functools.partial(set_exception, exc)
        else:
            deliver = functools.partial(set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(deliver)

    threading.Thread(target=run, name="config-reader", daemon=True).start()
    try:
        done, _ = await asyncio.wait([future], timeout=limit)
    finally:
        future.cancel()  # a no-op once settled; otherwise the late outcome is dropped
    if not done:
        raise _Hung
    return future.result()


def _describe(step: str, exc: BaseException) -> str:
    return clean_text(
        f"unexpected {type(exc).__name__} while {step} the config: {exc}", _MAX_PROBLEM_CHARS
    )


EXPORTER = web.AppKey("exporter", Exporter)
#: Whether ``/-/reload`` may be used (``--web.enable-lifecycle``).
LIFECYCLE = web.AppKey("lifecycle", bool)


def create_app(
    config: Config,
    *,
    load_config: ConfigLoader | None = None,
    credentials: CredentialsFactory = credentials_for,
    web_config: WebConfig | None = None,
    enable_lifecycle: bool = False,
    reload_timeout: float = DEFAULT_RELOAD_TIMEOUT,
) -> web.Application:
    """Build the exporter's web app; its pollers start and stop with the app.

    ``load_config`` re-reads the configuration on reload (SIGHUP, ``POST /-/reload``); without
    it a reload re-applies ``config``. ``web_config`` adds basic auth (TLS is the listener's).
    ``enable_lifecycle`` enables ``/-/reload`` over HTTP (403 otherwise, as in Prometheus);
    ``reload_timeout`` bounds each reload's config read.
    """
    exporter = Exporter(
        config,
        load_config=load_config or (lambda: config),
        credentials=credentials,
        reload_timeout=reload_timeout,
    )
    middlewares: list[Middleware] = [_errors]
    auth = basic_auth_middleware(web_config, registry=exporter.registry) if web_config else None
    if auth is not None:
        middlewares.append(auth)
    app = web.Application(middlewares=middlewares)
    app[EXPORTER] = exporter
    app[LIFECYCLE] = enable_lifecycle
    app.cleanup_ctx.append(_run_pollers)
    app.router.add_get("/", _landing_page)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_post("/-/reload", _reload)
    app.router.add_put("/-/reload", _reload)
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
        yield
        await exporter.supervisor.stop()


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
    try:
        stamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # out of datetime's range, or NaN
        return f"invalid time {timestamp!r}"
    age = max(0.0, time.time() - timestamp)
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
