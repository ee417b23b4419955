"""The guarded listener over real loopback sockets: connection limit, eviction and timeouts."""

from __future__ import annotations

import asyncio
import resource
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
import trustme
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.config import Config
from exporter.listener import (
    KEEPALIVE_TIMEOUT,
    ConnectionLimits,
    GuardedSite,
    connection_cap,
)
from exporter.simulator import Simulator
from exporter.web import EXPORTER, create_app
from tests.conftest import PROJECT, make_target

PARTIAL_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"


@asynccontextmanager
async def guarded(
    app: web.Application,
    limits: ConnectionLimits,
    registry: CollectorRegistry,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[GuardedSite, int]]:
    runner = web.AppRunner(app, keepalive_timeout=KEEPALIVE_TIMEOUT)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, limits=limits, registry=registry, ssl_context=tls)
    await site.start()
    try:
        yield site, runner.addresses[0][1]
    finally:
        await runner.cleanup()


def closed(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value(
        "dli_exporter_http_connections_closed_total", {"reason": reason}
    )
    assert value is not None
    return value


async def wait_for(condition: Callable[[], bool]) -> None:
    """Wait for something the server does on its own; the timeout only prevents a hang."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


async def partial(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sent part of its request headers and then nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PARTIAL_REQUEST)
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True when the server closed the connection (EOF or reset) without answering."""
    try:
        async with asyncio.timeout(30):
            return await reader.read() == b""
    except ConnectionResetError:
        return True


def simple_app(**handlers: Callable[[web.Request], object]) -> web.Application:
    app = web.Application()

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app.router.add_get("/", ok)
    for path, handler in handlers.items():
        app.router.add_get(f"/{path}", handler)  # type: ignore[arg-type]
    return app


# --------------------------------------------------------------------------- the limit


async def test_partial_connections_cannot_starve_a_normal_scrape(
    simulator: Simulator, sim_url: str
) -> None:
    """Limit 8, 50 connections stuck in their headers: /metrics still answers 200."""
    simulator.add_job(PROJECT, status="job_running")
    app = create_app(Config(targets=(make_target("a", sim_url),), source="<test>"))
    registry = app[EXPORTER].registry
    limits = ConnectionLimits(max_connections=8, header_timeout=60)
    async with guarded(app, limits, registry) as (site, port):
        stuck = [await partial(port) for _ in range(50)]
        await wait_for(lambda: site.open_connections == 8)
        async with (
            aiohttp.ClientSession() as session,
            asyncio.timeout(30),
            session.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            assert resp.status == 200
            assert "dli_job_info" in await resp.text()
        # The oldest stuck connections were the ones closed to make room.
        assert all([await closed_by_server(reader) for reader, _ in stuck[:42]])
        assert closed(registry, "evicted") == 43  # 42 stuck ones and one more for the scrape
        assert site.open_connections <= 8
        for _, writer in stuck:
            writer.close()


async def test_the_oldest_waiting_connection_is_evicted_first() -> None:
    registry = CollectorRegistry()
    async with guarded(simple_app(), ConnectionLimits(3, 60), registry) as (site, port):
        first, second, third = [await partial(port) for _ in range(3)]
        fourth = await partial(port)
        assert await closed_by_server(first[0])
        await wait_for(lambda: site.open_connections == 3)
        # The others are still open: they can finish their request.
        for reader, writer in (second, third, fourth):
            writer.write(b"\r\n\r\n")
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 404")
            writer.close()
    assert closed(registry, "evicted") == 1


async def test_a_new_connection_is_refused_only_when_every_one_is_busy() -> None:
    release = asyncio.Event()
    entered: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        entered.append(request.path)
        await release.wait()
        return web.Response(text="slow\n")

    registry = CollectorRegistry()
    app = simple_app(slow=slow)
    async with (
        guarded(app, ConnectionLimits(2, 60), registry) as (_site, port),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
    ):
        busy = [asyncio.create_task(session.get(f"http://127.0.0.1:{port}/slow")) for _ in "ab"]
        await wait_for(lambda: len(entered) == 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = await reader.read()
        writer.close()
        release.set()
        for task in busy:
            response = await task
            assert response.status == 200
            response.release()
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Retry-After: 1\r\n" in answer
    assert answer.endswith(b"Too many connections open")
    assert closed(registry, "limit") == 1


async def test_idle_keepalive_connections_make_room_for_new_ones() -> None:
    registry = CollectorRegistry()
    async with guarded(simple_app(), ConnectionLimits(2, 60), registry) as (site, port):
        idle = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            assert (await reader.readuntil(b"ok\n")).startswith(b"HTTP/1.1 200")
            idle.append((reader, writer))
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as resp,
        ):
            assert resp.status == 200
        assert await closed_by_server(idle[0][0])
        assert closed(registry, "evicted") == 1
        for _, writer in idle:
            writer.close()
        assert site.open_connections <= 2


async def test_the_limit_is_at_most_a_quarter_of_the_open_files_limit() -> None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("no open-files limit")
    assert connection_cap(10**9) == soft // 4
    assert connection_cap(3) == 3


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionLimits(max_connections=0)
    with pytest.raises(ValueError, match="positive"):
        ConnectionLimits(header_timeout=0)


# --------------------------------------------------------------------------- timeouts


async def test_connections_stuck_in_their_headers_are_closed_after_the_header_timeout() -> None:
    registry = CollectorRegistry()
    async with guarded(simple_app(), ConnectionLimits(64, 0.2), registry) as (site, port):
        silent = await asyncio.open_connection("127.0.0.1", port)  # sends nothing at all
        stuck = [await partial(port) for _ in range(5)]
        for reader, _ in [silent, *stuck]:
            assert await closed_by_server(reader)
        await wait_for(lambda: site.open_connections == 0)
    assert closed(registry, "header_timeout") == 6


async def test_a_slow_handler_is_not_cut_off_by_the_header_timeout() -> None:
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(0.6)  # longer than the header timeout
        return web.Response(text="slow\n")

    registry = CollectorRegistry()
    app = simple_app(slow=slow)
    async with (
        guarded(app, ConnectionLimits(8, 0.2), registry) as (_site, port),
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/slow") as resp,
    ):
        assert resp.status == 200
        assert await resp.text() == "slow\n"
    assert closed(registry, "header_timeout") == 0


async def test_a_keepalive_request_stuck_in_its_headers_times_out_too() -> None:
    registry = CollectorRegistry()
    async with guarded(simple_app(), ConnectionLimits(8, 0.3), registry) as (_site, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):  # idle keep-alive is fine; the header timer restarts per request
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            assert (await reader.readuntil(b"ok\n")).startswith(b"HTTP/1.1 200")
        writer.write(PARTIAL_REQUEST)
        await writer.drain()
        assert await closed_by_server(reader)
        writer.close()
    assert closed(registry, "header_timeout") == 1


async def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout() -> None:
    async def huge(_request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (64 << 20))

    registry = CollectorRegistry()
    limits = ConnectionLimits(8, 10, write_timeout=0.3)
    async with guarded(simple_app(huge=huge), limits, registry) as (site, port):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
        writer.write(b"GET /huge HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        await wait_for(lambda: site.open_connections == 0)  # never read a byte
        writer.close()
    assert closed(registry, "write_timeout") == 1


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context and a client context trusting it."""
    authority = trustme.CA()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return server, client


async def test_tls_connections_are_served_and_counted(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, client = tls

    async def peer(request: web.Request) -> web.Response:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        return web.Response(text=f"{request.scheme} {ssl_object.version() if ssl_object else ''}")

    registry = CollectorRegistry()
    app = simple_app(peer=peer)
    async with guarded(app, ConnectionLimits(3, 1.5), registry, server) as (site, port):
        # Handshakes that never start hold a slot only until the header timeout.
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client)) as session,
            session.get(f"https://127.0.0.1:{port}/peer") as resp,
        ):
            assert resp.status == 200
            assert (await resp.text()).startswith("https TLSv1.")
        for reader, writer in silent:
            assert await closed_by_server(reader)
            writer.close()
        await wait_for(lambda: site.open_connections == 0)
    assert closed(registry, "evicted") == 1  # the scrape took the oldest handshake's slot
    assert closed(registry, "header_timeout") == 2


async def test_a_new_tls_context_applies_to_new_connections_and_tls_stays_on(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, client = tls
    authority = trustme.CA()
    rotated = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(rotated)
    trusting_rotated = ssl.create_default_context()
    authority.configure_trust(trusting_rotated)
    async with guarded(simple_app(), ConnectionLimits(), CollectorRegistry(), server) as (
        site,
        port,
    ):
        with pytest.raises(ValueError, match="cannot turn TLS on or off"):
            site.set_ssl_context(None)
        site.set_ssl_context(rotated)
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=client)
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusting_rotated)
        writer.close()
        assert site.name.startswith("https://")
