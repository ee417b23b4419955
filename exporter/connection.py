"""One accepted connection of the guarded listener: its states, timers and TLS handshake.

`Connection` is the protocol ``loop.create_server`` gets for each accepted socket. It asks its
`Admission` (the listener's guard, in `exporter.listener`) to count it, then wraps aiohttp's
protocol and tracks where the connection is in a request:

- a request's headers (and, with TLS, the handshake before the first one) must arrive within
  the header timeout of the connection's start or of the first byte of a keep-alive request;
- a response the client stops reading (no write progress for the write timeout) is abandoned;
- a connection refused at the limit gets a 503 and is closed (TLS ones are just closed).

TLS is started here (``loop.start_tls``) after the connection is counted, so a handshake that
never finishes holds a slot and is bounded by the header timeout like any other. The context
is the admission's at accept time: a reload that swaps it applies to later connections only.
This module knows nothing of the limit, eviction or metrics; it reports to its `Admission`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

__all__ = ["Admission", "Connection"]

log = logging.getLogger(__name__)

_REFUSED: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 25\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    b"Too many connections open"
)


class Admission(Protocol):
    """What a connection needs from whoever counts the listener's connections."""

    #: Makes the aiohttp protocol a connection wraps once it is admitted (and TLS is up).
    protocol_factory: Callable[[], asyncio.BaseProtocol]
    ssl_context: ssl.SSLContext | None
    #: TLS handshakes in progress, for the listener to cancel when it stops.
    handshakes: set[asyncio.Task[None]]

    @property
    def header_timeout(self) -> float: ...

    @property
    def write_timeout(self) -> float: ...

    def admit(self, connection: Connection) -> bool:
        """Count a new connection; False: refuse it."""
        ...

    def release(self, connection: Connection) -> None:
        """Stop counting a connection (called more than once is fine)."""
        ...

    def count_closed(self, reason: str) -> None:
        """Note that a connection was closed by the exporter, and why."""
        ...


class _State(enum.Enum):
    HANDSHAKE = "handshake"  # TLS handshake in progress
    HEADERS = "headers"  # waiting for (the rest of) a request's headers
    BUSY = "busy"  # headers received, no response written yet
    RESPONDED = "responded"  # a response was written; idle once its bytes have left


class Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's protocol inside, the limits around it."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
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
        # Read once: a reload may swap the context; this connection keeps the one it got.
        context = self._admission.ssl_context
        if not self._admission.admit(self):
            self._done = True
            if context is None:
                raw.write(_REFUSED)
                raw.close()
            else:
                raw.abort()
            return
        self._arm_header_timer()
        if context is None:
            self._start_inner(raw)
            return
        self._state = _State.HANDSHAKE
        raw.pause_reading()  # start_tls takes over reading
        task = self._loop.create_task(self._handshake(raw, context))
        self._admission.handshakes.add(task)
        task.add_done_callback(self._admission.handshakes.discard)

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
                self._admission.write_timeout, self.abort, "write_timeout"
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

    # -- the admission's view -------------------------------------------------------------

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
        self._admission.count_closed(reason)
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
                ssl_handshake_timeout=self._admission.header_timeout,
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
        inner = self._admission.protocol_factory()
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
            self._admission.header_timeout, self._header_timeout
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
        self._admission.release(self)


class _WatchedTransport(asyncio.Transport):
    """The transport aiohttp gets: the real one, telling the connection when a response starts."""

    def __init__(self, transport: asyncio.Transport, connection: Connection) -> None:
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
