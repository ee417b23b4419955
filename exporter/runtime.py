"""The composition root: `Exporter` (config, snapshots, exposition, pollers, reloads) and hooks.

`exporter.web` serves an `Exporter` over HTTP; `exporter.cli` starts one. Benchmarks and tests
instrument it through `ExporterHooks` instead of patching it, and process-wide settings are
applied only by `tune_process`, when the starter asks for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics_exposition

from exporter import __version__
from exporter.catalogue import build_catalogue
from exporter.config import Config, ConfigError
from exporter.config.problems import WebConfigError
from exporter.config.web import WebSettings
from exporter.dli.registry import RESOURCES
from exporter.dli.resource import Resource
from exporter.exposition import COALESCE_SECONDS, ExpositionCache, Rendered, SnapshotStore
from exporter.gzipjoin import GZIP_LEVEL, SegmentCompressor, gzip_join
from exporter.liveweb import LiveWebConfig
from exporter.looplag import LoopLag
from exporter.snapshot import Snapshot
from exporter.supervisor import ConfigChange, CredentialsFactory, Supervisor
from exporter.telemetry import ApiMetrics, ProblemMetrics, ReloadMetrics, register_build_info
from exporter.values import clean_text
from exporter.writer import ExpositionWriter

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

#: Reads the configuration afresh (blocking; run in a thread). Raises ConfigError.
ConfigLoader = Callable[[], Config]
#: A reload whose config read takes longer than this fails (the read may hang on a bad mount).
DEFAULT_RELOAD_TIMEOUT: Final = 30.0
#: How much of an unexpected exception's message a reload answer shows (the log has it all).
_MAX_PROBLEM_CHARS: Final = 500
#: Python's own GIL switch interval, in seconds (``sys.getswitchinterval()`` unless changed).
PYTHON_SWITCH_INTERVAL: Final = 0.005
#: The exporter's: seconds a thread may hold the GIL while another waits.
RENDER_SWITCH_INTERVAL: Final = 0.001

_T = TypeVar("_T")


# --- process-wide settings -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessTuning:
    """A request to apply `tune_process` (with these arguments) when the app is built."""

    #: An explicit GIL switch interval; ``None``: the exporter's, unless already changed.
    switch_interval: float | None = None


def tune_process(*, switch_interval: float | None = None) -> None:
    """Apply the exporter's process-wide settings (they affect everything in the process).

    - prometheus_client's ``_created`` series are turned off: on the request counters they
      would only add a series per target, operation and code, and nobody uses them.
    - The GIL switch interval: ``switch_interval`` when given (an explicit choice wins).
      Otherwise `RENDER_SWITCH_INTERVAL`, but only while the interpreter still has Python's
      default: a value the embedding program set itself is kept, never silently overridden.
      The exposition renders in a worker thread; a shorter interval keeps the event loop
      (scrapes, polls) responsive meanwhile: 10,000 jobs, longest loop stall 113 -> 64 ms,
      for ~15% more CPU during the render (bench/README.md).

    The CLI always applies it (``cli.main(tuning=...)``); a `create_app` user asks for it with
    ``create_app(tuning=ProcessTuning(...))`` and gets the same; without that (the tests) the
    process is left alone.
    """
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    elif math.isclose(sys.getswitchinterval(), PYTHON_SWITCH_INTERVAL):
        sys.setswitchinterval(RENDER_SWITCH_INTERVAL)
    else:
        log.debug(
            "keeping the GIL switch interval already set",
            extra={"fields": {"switch_interval": sys.getswitchinterval()}},
        )


# --- hooks -----------------------------------------------------------------------------------


class ExpositionSource(Protocol):
    """What the exporter needs of its exposition cache; `ExpositionCache` is the product's."""

    @property
    def generation(self) -> int:
        """Bumped by every :meth:`invalidate`."""

    def serves_generation(self, generation: int) -> bool:
        """True when every format in use is rendered from ``generation`` or later."""

    def invalidate(self) -> None:
        """The data changed."""

    async def refresh(self) -> None:
        """Render ahead of the next scrape."""

    async def get(self, *, openmetrics: bool = False) -> Rendered:
        """The latest exposition in the asked format."""


@dataclass(frozen=True, slots=True)
class ExporterHooks:
    """Explicit instrumentation points (benchmarks, tests); each default is the product's way.

    ``cache`` builds the exposition cache from the exporter, whose other parts exist by then
    (default: ``ExpositionCache(exporter.render, coalesce=COALESCE_SECONDS)``).
    ``instrument_app`` is called with the finished web app before `create_app` returns it
    (e.g. to add a ``cleanup_ctx``).
    ``on_publish`` is called on the event loop with every snapshot right after it is published;
    it must neither block nor raise.
    """

    cache: Callable[[Exporter], ExpositionSource] | None = None
    instrument_app: Callable[[web.Application], None] | None = None
    on_publish: Callable[[Snapshot], None] | None = None


# --- the exporter ----------------------------------------------------------------------------


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
        hooks: ExporterHooks | None = None,
        resources: tuple[Resource[object], ...] = RESOURCES,
        web: LiveWebConfig | None = None,
    ) -> None:
        hooks = hooks or ExporterHooks()
        self.config = config
        #: The web config, reloaded together with ``config`` (all or nothing).
        self.web = web
        #: What every target polls after its job list (`exporter.dli.registry.RESOURCES`).
        self.resources = resources
        #: The exporter's own metrics; the job and target families come from the writer.
        self.registry = CollectorRegistry(auto_describe=True)
        self.store = SnapshotStore(target.name for target in config.targets)
        self.problem_metrics = ProblemMetrics(self.registry)
        self.writer = self._writer(config)
        self.api_metrics = ApiMetrics(self.registry)
        self.reload_metrics = ReloadMetrics(self.registry, time.time())
        register_build_info(self.registry, __version__)
        #: The event loop's lag, measured while the pollers run (`exporter.looplag`).
        self.loop_lag = LoopLag(self.registry)
        self.supervisor = Supervisor(
            store=self.store,
            api_metrics=self.api_metrics,
            problem_metrics=self.problem_metrics,
            credentials=credentials,
            on_change=self.refresh_exposition,
            on_publish=hooks.on_publish,
            resources=resources,
        )
        self._load_config = load_config
        self._reload_timeout = reload_timeout
        self._reload_lock = asyncio.Lock()
        #: The first exposition generation holding every target's first poll (None: not yet).
        self._complete_from: int | None = None
        self._background: set[asyncio.Task[object]] = set()
        # Last, so that a hook's factory sees every other part.
        self.cache: ExpositionSource = (
            hooks.cache(self)
            if hooks.cache is not None
            else ExpositionCache(self.render, coalesce=COALESCE_SECONDS)
        )

    def _writer(self, config: Config) -> ExpositionWriter:
        return ExpositionWriter(
            build_catalogue(config.metrics, self.resources),
            on_error=self.problem_metrics.render_error,
        )

    def render(self, openmetrics: bool) -> bytes:
        """The whole exposition, gzip-compressed: job families, then the exporter's own.

        Blocking CPU work: a join of the writer's segments (`exporter.gzipjoin`) and the
        exporter's own metrics, written and compressed each time.
        """
        segments = self.writer.segments(self.store.snapshots(), openmetrics=openmetrics)
        if openmetrics:
            own: bytes = openmetrics_exposition.generate_latest(self.registry)  # type: ignore[no-untyped-call]
        else:
            own = generate_latest(self.registry)
        segments.append(SegmentCompressor(GZIP_LEVEL).segment(own))
        return gzip_join(segments)

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
        """Re-read the config and the web config and apply both; on any failure keep both.

        Raises :class:`ReloadError` for every failure: a :class:`ConfigError` or
        :class:`WebConfigError` (both files' problems are reported), a read that does not
        finish within the reload timeout, or any other exception (logged with traceback).
        """
        async with self._reload_lock:
            read = functools.partial(_read_both, self._load_config, self.web)
            try:
                config, web = await _call_in_thread(read, self._reload_timeout)
            except _Invalid as exc:
                error = self._failed_reload(str(exc))
            except _Hung:
                error = self._failed_reload(
                    f"reading the config did not finish within {self._reload_timeout:g}s"
                )
            except Exception as exc:
                error = self._failed_reload(_describe("reading", exc), exc)
            else:
                try:
                    change = self._apply(config, web)
                except Exception as exc:
                    error = self._failed_reload(_describe("applying", exc), exc)
                else:
                    self.reload_metrics.record(successful=True, now=time.time())
                    await self._reexpose()
                    fields = {
                        "added": ",".join(change.added),
                        "changed": ",".join(change.changed),
                        "removed": ",".join(change.removed),
                    }
                    if web is not None:
                        fields["web_config"] = web.config.source
                    log.info("config reloaded", extra={"fields": fields})
                    return change
            await self._reexpose()
            raise error

    def _apply(self, config: Config, web: WebSettings | None) -> ConfigChange:
        writer = self.writer
        if config.metrics != self.config.metrics:
            writer = self._writer(config)
        previous = self.web.switch(web) if self.web is not None and web is not None else None
        try:
            change = self.supervisor.apply(config)
        except BaseException:
            if self.web is not None and previous is not None:
                self.web.switch(previous)  # all or nothing: the two never disagree
            raise
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


class _Invalid(Exception):
    """The config, the web config or both are invalid; ``str()`` lists every problem."""


def _read_both(
    load_config: ConfigLoader, web: LiveWebConfig | None
) -> tuple[Config, WebSettings | None]:
    """Both files afresh (blocking), or :class:`_Invalid` with the problems of both."""
    problems: list[str] = []
    config: Config | None = None
    settings: WebSettings | None = None
    try:
        config = load_config()
    except ConfigError as exc:
        problems.append(str(exc))
    try:
        settings = web.read() if web is not None else None
    except WebConfigError as exc:
        problems.append(str(exc))
    if problems or config is None:
        raise _Invalid("\n".join(problems))
    return config, settings


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
