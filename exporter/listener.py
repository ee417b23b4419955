"""The exporter's listening socket, guarded so that no scraper can starve the exporter.

`GuardedSite` replaces aiohttp's ``TCPSite``. Every accepted connection is wrapped before
aiohttp's protocol sees it:

- at most ``max_connections`` are open at once. When a new one arrives at the limit, the
  connection that has waited longest for its request headers (a slowloris victim) is closed to
  make room, else the one idle longest between keep-alive requests; only when every connection
  is busy with a request is the new one refused (503 and close);
- a request's headers (and, with TLS, the handshake before the first one) must arrive within
  ``header_timeout`` of the connection's start or of the first byte of a keep-alive request;
- a response the client stops reading (no write progress for ``write_timeout``) is abandoned;
- an ``accept()`` failing for lack of file descriptors or memory is logged once per episode
  (asyncio would log a traceback for every attempt, up to the backlog's length every second)
  and counted; an episode ends after ``quiet_period`` seconds without such a failure.

TLS is started per connection (``loop.start_tls``) after the connection is counted, so a
handshake that never finishes holds a slot and is bounded by the header timeout like any other,
and a new context (`GuardedSite.set_ssl_context`, on reload) applies to the next connection.

This module owns the site, the limit, eviction, accept() failures and the metrics; the
per-connection part (states, timers, TLS, the 503) is `exporter.connection`, which this module
imports and which imports nothing from it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from exporter.connection import Connection

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "KEEPALIVE_TIMEOUT",
    "ConnectionLimits",
    "GuardedSite",
    "connection_cap",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS: Final = 64
DEFAULT_HEADER_TIMEOUT: Final = 10.0
DEFAULT_WRITE_TIMEOUT: Final = 30.0
#: Idle keep-alive connections are closed after this long (aiohttp's default is 3630 s). Longer
#: than a 60 s scrape interval, so Prometheus keeps reusing its connection.
KEEPALIVE_TIMEOUT: Final = 75.0
#: An accept() failure episode ends after this long without one; longer than asyncio's 1 s
#: retry delay, or every retry would start a new episode.
DEFAULT_QUIET_PERIOD: Final = 10.0
#: ``accept()`` errors that mean "out of descriptors or memory"; asyncio retries after 1 s.
_RESOURCE_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
CLOSE_REASONS: Final = ("limit", "evicted", "header_timeout", "write_timeout")


def connection_cap(requested: int) -> int:
    """``requested``, lowered to a quarter of the soft RLIMIT_NOFILE (other uses need fds too)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft // 4))


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How many connections may be open, and how long each phase of a request may take."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if not (self.header_timeout > 0 and self.write_timeout > 0):
            raise ValueError("timeouts must be positive")


class ListenerMetrics:
    """The listener's own metrics (into ``registry``; a private one when ``None``)."""

    def __init__(self, registry: CollectorRegistry | None, limit: int) -> None:
        registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.open = Gauge(
            "dli_exporter_http_connections",
            "HTTP connections to the exporter open now (TLS handshakes included).",
            registry=registry,
        )
        limit_gauge = Gauge(
            "dli_exporter_http_connections_limit",
            "The most HTTP connections the exporter keeps open at once (--web.max-connections).",
            registry=registry,
        )
        limit_gauge.set(limit)
        self.closed = Counter(
            "dli_exporter_http_connections_closed_total",
            "HTTP connections the exporter closed itself, by reason: limit (refused, every "
            "connection busy), evicted (waiting for headers or idle, to make room), "
            "header_timeout, write_timeout (the client stopped reading).",
            ("reason",),
            registry=registry,
        )
        for reason in CLOSE_REASONS:
            self.closed.labels(reason)
        self.accept_errors = Counter(
            "dli_exporter_http_accept_errors_total",
            "accept() calls that failed for lack of file descriptors or memory.",
            registry=registry,
        )


class _Guard:
    """Counts the site's connections, applies the limit, and reports accept() failures.

    It is the `Admission` that every `Connection` it creates reports to.
    """

    def __init__(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        limits: ConnectionLimits,
        metrics: ListenerMetrics,
        ssl_context: ssl.SSLContext | None,
        quiet_period: float,
    ) -> None:
        self.protocol_factory = protocol_factory
        self.limits = limits
        self.metrics = metrics
        self.ssl_context = ssl_context
        #: Open connections in the order they were accepted (a dict as an ordered set).
        self.connections: dict[Connection, None] = {}
        self.handshakes: set[asyncio.Task[None]] = set()
        self._quiet_period = quiet_period
        #: Failed accept() calls in the current episode (0: none going on).
        self._accept_failures = 0
        self._last_failure = 0.0
        self._episode_timer: asyncio.TimerHandle | None = None

    @property
    def header_timeout(self) -> float:
        return self.limits.header_timeout

    @property
    def write_timeout(self) -> float:
        return self.limits.write_timeout

    def __call__(self) -> Connection:
        """The protocol factory given to ``loop.create_server``: one wrapper per connection."""
        return Connection(self)

    def close(self) -> None:
        """Stop the accept-failure episode timer (the site stopped)."""
        if self._episode_timer is not None:
            self._episode_timer.cancel()
            self._episode_timer = None

    def _accept_failed(self, loop: asyncio.AbstractEventLoop, exc: OSError) -> None:
        self.metrics.accept_errors.inc()
        self._last_failure = loop.time()
        if not self._accept_failures:
            log.warning(
                "cannot accept connections: out of file descriptors or memory; "
                "retrying every second",
                extra={
                    "fields": {
                        "error": errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                        "open_connections": len(self.connections),
                    }
                },
            )
            self._episode_timer = loop.call_later(self._quiet_period, self._end_episode, loop)
        self._accept_failures += 1

    def _end_episode(self, loop: asyncio.AbstractEventLoop) -> None:
        quiet_since = loop.time() - self._last_failure
        if quiet_since < self._quiet_period:
            remaining = self._quiet_period - quiet_since
            self._episode_timer = loop.call_later(remaining, self._end_episode, loop)
            return
        self._episode_timer = None
        log.info(
            "accept() failures stopped",
            extra={
                "fields": {
                    "failed_accepts": self._accept_failures,
                    "quiet_seconds": self._quiet_period,
                }
            },
        )
        self._accept_failures = 0

    def admit(self, connection: Connection) -> bool:
        """Count a new connection, evicting a waiting or idle one at the limit if it can."""
        if len(self.connections) >= self.limits.max_connections:
            victim = _pick_victim(self.connections)
            if victim is None:
                self.count_closed("limit")
                return False
            victim.abort("evicted")
        self.connections[connection] = None
        self.metrics.open.set(len(self.connections))
        return True

    def release(self, connection: Connection) -> None:
        if connection in self.connections:
            del self.connections[connection]
            self.metrics.open.set(len(self.connections))

    def count_closed(self, reason: str) -> None:
        self.metrics.closed.labels(reason).inc()

    def exception_handler(
        self, previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
    ) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
        """A loop exception handler turning accept() resource errors into one warning."""

        def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if (
                isinstance(exc, OSError)
                and exc.errno in _RESOURCE_ERRNOS
                and str(context.get("message", "")).startswith("socket.accept()")
            ):
                self._accept_failed(loop, exc)
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        return handle


def _pick_victim(connections: Iterable[Connection]) -> Connection | None:
    """The connection waiting longest for headers, else the one idle longest, else None."""
    waiting: Connection | None = None
    idle: Connection | None = None
    for connection in connections:
        if connection.waiting_for_headers():
            if waiting is None or connection.since < waiting.since:
                waiting = connection
        elif connection.idle() and (idle is None or connection.since < idle.since):
            idle = connection
    return waiting or idle


class GuardedSite(web.BaseSite):
    """A TCP site for an aiohttp runner with the connection limits of this module."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        limits: ConnectionLimits | None = None,
        registry: CollectorRegistry | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        quiet_period: float = DEFAULT_QUIET_PERIOD,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        if quiet_period <= 1.0:
            raise ValueError("quiet_period must be longer than asyncio's 1 s accept retry delay")
        server = runner.server
        assert server is not None  # BaseSite checked that setup() ran
        self._host = host
        self._port = port
        self._tls = ssl_context
        self.limits = limits or ConnectionLimits()
        metrics = ListenerMetrics(registry, self.limits.max_connections)
        self._guard = _Guard(server, self.limits, metrics, ssl_context, quiet_period)
        self._previous_handler: (
            Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
        ) = None

    @property
    def name(self) -> str:
        scheme = "https" if self._tls else "http"
        host = self._host or "0.0.0.0"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self._port}"

    def set_ssl_context(self, context: ssl.SSLContext | None) -> None:
        """Use ``context`` for connections accepted from now on (open ones keep theirs).

        TLS cannot be turned on or off this way: the site's scheme is fixed when it is made.
        """
        if (context is None) != (self._tls is None):
            raise ValueError("a reload cannot turn TLS on or off")
        self._tls = context
        self._guard.ssl_context = context

    @property
    def open_connections(self) -> int:
        """Connections counted now (TLS handshakes included)."""
        return len(self._guard.connections)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._guard.exception_handler(self._previous_handler))
        self._server = await loop.create_server(
            self._guard, self._host, self._port, backlog=self._backlog
        )

    async def stop(self) -> None:
        await super().stop()
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._previous_handler)
        self._guard.close()
        # Connections aiohttp knows are shut down by the runner; TLS handshakes are ours.
        handshakes = list(self._guard.handshakes)
        for task in handshakes:
            task.cancel()
        await asyncio.gather(*handshakes, return_exceptions=True)
