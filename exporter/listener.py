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
handshake that never finishes holds a slot and is bounded by the header timeout like any other.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import resource
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

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
_REFUSED: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 25\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    b"Too many connections open"
)
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


class _State(enum.Enum):
    HANDSHAKE = "handshake"  # TLS handshake in progress
    HEADERS = "headers"  # waiting for (the rest of) a request's headers
    BUSY = "busy"  # headers received, no response written yet
    RESPONDED = "responded"  # a response was written; idle once its bytes have left


class _Guard:
    """Counts the site's connections, applies the limit, and reports accept() failures."""

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
        self.connections: dict[_Connection, None] = {}
        self.handshakes: set[asyncio.Task[None]] = set()
        self._quiet_period = quiet_period
        #: Failed accept() calls in the current episode (0: none going on).
        self._accept_failures = 0
        self._last_failure = 0.0
        self._episode_timer: asyncio.TimerHandle | None = None

    def __call__(self) -> _Connection:
        """The protocol factory given to ``loop.create_server``: one wrapper per connection."""
        return _Connection(self)

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

    def admit(self, connection: _Connection) -> bool:
        """Count a new connection, evicting a waiting or idle one at the limit if it can."""
        if len(self.connections) >= self.limits.max_connections:
            victim = _pick_victim(self.connections)
            if victim is None:
                self.metrics.closed.labels("limit").inc()
                return False
            victim.abort("evicted")
        self.connections[connection] = None
        self.metrics.open.set(len(self.connections))
        return True

    def release(self, connection: _Connection) -> None:
        if connection in self.connections:
            del self.connections[connection]
            self.metrics.open.set(len(self.connections))

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


def _pick_victim(connections: Iterable[_Connection]) -> _Connection | None:
    """The connection waiting longest for headers, else the one idle longest, else None."""
    waiting: _Connection | None = None
    idle: _Connection | None = None
    for connection in connections:
        if connection.waiting_for_headers():
            if waiting is None or connection.since < waiting.since:
                waiting = connection
        elif connection.idle() and (idle is None or connection.since < idle.since):
            idle = connection
    return waiting or idle


class _Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's protocol inside, the limits around it."""

    def __init__(self, guard: _Guard) -> None:
        self._guard = guard
        self._loop = asyncio.get_running_loop()
        self._inner: asyncio.Protocol | None = None
        self._raw: asyncio.Transport | None = None
        self._transport: _WatchedTransport | None = None
        self._state = _State.HEADERS
        #: Loop time the current state began (orders eviction).
        self.since = self._loop.time()
        self._tail = b""
        #: Plaintext the TLS layer delivered before aiohttp's protocol was started.
        self._early: list[bytes] = []
        self._header_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._done = False

    # -- asyncio.Protocol, called by the socket transport (or the TLS layer) --------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = transport
        assert isinstance(raw, asyncio.Transport)
        self._raw = raw
        if not self._guard.admit(self):
            self._done = True
            if self._guard.ssl_context is None:
                raw.write(_REFUSED)
                raw.close()
            else:
                raw.abort()
            return
        self._arm_header_timer()
        if self._guard.ssl_context is None:
            self._start_inner(raw)
            return
        self._state = _State.HANDSHAKE
        raw.pause_reading()  # start_tls takes over reading
        task = self._loop.create_task(self._handshake(raw, self._guard.ssl_context))
        self._guard.handshakes.add(task)
        task.add_done_callback(self._guard.handshakes.discard)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            if not self._done:  # the handshake just finished; _handshake() delivers it
                self._early.append(data)
            return
        if self._state is _State.RESPONDED:  # the next keep-alive request begins
            self._enter(_State.HEADERS)
            self._arm_header_timer()
        if self._state is _State.HEADERS:
            seen = self._tail + data
            if b"\r\n\r\n" in seen or b"\n\n" in seen:
                self._enter(_State.BUSY)
                self._cancel_header_timer()
                self._tail = b""
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._write_timer is None:
            self._write_timer = self._loop.call_later(
                self._guard.limits.write_timeout, self.abort, "write_timeout"
            )
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)

    # -- the guard's view -----------------------------------------------------------------

    def waiting_for_headers(self) -> bool:
        return self._state in (_State.HANDSHAKE, _State.HEADERS)

    def idle(self) -> bool:
        """A response went out whole and no new request has begun."""
        return (
            self._state is _State.RESPONDED
            and self._transport is not None
            and self._transport.get_write_buffer_size() == 0
        )

    def abort(self, reason: str) -> None:
        """Close the connection at once, counting why."""
        if self._done:
            return
        self._guard.metrics.closed.labels(reason).inc()
        log.debug("closing a connection", extra={"fields": {"reason": reason}})
        self._finish()
        if self._raw is not None:
            self._raw.abort()

    def wrote(self) -> None:
        """aiohttp wrote (part of) a response."""
        if self._state in (_State.HEADERS, _State.BUSY):
            self._enter(_State.RESPONDED)
            self._cancel_header_timer()

    # -- internals ------------------------------------------------------------------------

    async def _handshake(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        try:
            transport = await self._loop.start_tls(
                raw,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self._guard.limits.header_timeout,
            )
        except asyncio.CancelledError:
            self._finish()
            raw.abort()
            raise
        except Exception as exc:  # any failed handshake just ends the connection
            log.debug("TLS handshake failed", extra={"fields": {"error": repr(exc)}})
            self._finish()
            raw.abort()
            return
        if transport is None or self._done:
            self._finish()
            raw.abort()
            return
        self._enter(_State.HEADERS)
        self._start_inner(transport)
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)

    def _start_inner(self, transport: asyncio.Transport) -> None:
        inner = self._guard.protocol_factory()
        assert isinstance(inner, asyncio.Protocol)
        self._inner = inner
        self._transport = _WatchedTransport(transport, self)
        inner.connection_made(self._transport)

    def _enter(self, state: _State) -> None:
        self._state = state
        self.since = self._loop.time()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self._loop.call_later(
            self._guard.limits.header_timeout, self._header_timeout
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.waiting_for_headers():
            self.abort("header_timeout")

    def _finish(self) -> None:
        """Stop counting this connection and its timers (idempotent)."""
        self._done = True
        self._cancel_header_timer()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._guard.release(self)


class _WatchedTransport(asyncio.Transport):
    """The transport aiohttp gets: the real one, telling the connection when a response starts."""

    def __init__(self, transport: asyncio.Transport, connection: _Connection) -> None:
        super().__init__()
        self._transport = transport
        self._connection = connection

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._connection.wrote()
        self._transport.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self._connection.wrote()
        self._transport.writelines(list_of_data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        raise NotImplementedError("the guarded connection's protocol cannot be replaced")

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._connection

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()


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
