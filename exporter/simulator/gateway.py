"""`Gateway`: what the API gateway does before and after DLI (or IAM) answers.

Latency, lifecycles brought up to date, route lookup, AK/SK signature or IAM token check,
throttling, injected faults (delivered as the fault says: an error body, a reset connection, a
truncated body) and the request log. IAM's token endpoint and the metadata service are not behind
DLI's gateway: they get no authentication or throttling, only their faults.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from exporter.dli.api import (
    AUTH_TOKEN_HEADER,
    FEDERATED_TOKEN,
    IAM_TOKEN,
    METADATA,
    OPERATIONS,
    POD_IDENTITY,
    REQUEST_ID_HEADER,
    WORKLOAD_IDENTITY,
)
from exporter.signing import SignatureError
from exporter.simulator.faults import Fault, Faults
from exporter.simulator.iam import Iam
from exporter.simulator.projects import Projects
from exporter.simulator.traffic import UNKNOWN, Traffic
from exporter.simulator.wire import USER, apig_error, iam_error_body, parse_query

__all__ = ["Gateway"]

#: Route names that are not operation names, and the operation they count as.
_ROUTE_OPERATIONS: Final = {"metadata_token": METADATA}
#: Operations not behind DLI's gateway: no authentication or throttling, only their faults.
_UNGUARDED: Final = frozenset(
    {IAM_TOKEN, METADATA, POD_IDENTITY, WORKLOAD_IDENTITY, FEDERATED_TOKEN}
)

#: Set when an injected fault reset the connection instead of answering.
_RESET: Final = web.RequestKey("reset", bool)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gateway:
    """The gateway in front of the handlers, as an aiohttp middleware (`middleware`)."""

    def __init__(self, projects: Projects, iam: Iam, faults: Faults, traffic: Traffic) -> None:
        self._projects = projects
        self._iam = iam
        self._faults = faults
        self._traffic = traffic

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Everything the API gateway does before and after DLI answers."""
        traffic = self._traffic
        if traffic.latency > 0:
            await asyncio.sleep(traffic.latency)
        self._projects.advance()
        request_id = uuid.uuid4().hex
        route_name = request.match_info.route.name
        route_name = _ROUTE_OPERATIONS.get(route_name or "", route_name)
        operation = route_name if route_name in OPERATIONS else UNKNOWN
        try:
            if operation in _UNGUARDED:
                response = await self._answer_unguarded(request, handler, operation, request_id)
                access_key = None
            else:
                response, access_key = await self._answer(request, handler, operation, request_id)
        except ConnectionResetError:
            # The client left while its body was read (a call abandoned at its deadline):
            # nobody is there to answer, and it is no error of the simulator's.
            raise web.HTTPBadRequest(text="the client went away") from None
        if not response.prepared:  # a truncated answer was sent already, with its id
            response.headers[REQUEST_ID_HEADER] = request_id
        query: dict[str, str] = {}
        for key, value in parse_query(request).items():
            query.setdefault(key, value)
        traffic.record(
            method=request.method,
            path=request.path,
            query=query,
            status=0 if request.get(_RESET) else response.status,
            access_key=access_key,
            operation=operation,
            user=request.get(USER),
        )
        return response

    async def _answer_unguarded(
        self, request: web.Request, handler: _Handler, operation: str, request_id: str
    ) -> web.StreamResponse:
        """IAM, metadata, pod identity and STS are not behind DLI's gateway: only faults."""
        fault = self._faults.take(operation)
        if fault is not None:
            return await _fault_response(request, fault, request_id, operation)
        return await handler(request)

    async def _answer(
        self, request: web.Request, handler: _Handler, operation: str, request_id: str
    ) -> tuple[web.StreamResponse, str | None]:
        """A DLI request: route, authenticate, throttle, maybe fail; with its access key."""
        no_route = request.match_info.http_exception
        if no_route is not None:
            message = "The API does not exist or has not been published in the environment"
            return apig_error(no_route.status, "APIG.0101", message, request_id), None
        token = request.headers.get(AUTH_TOKEN_HEADER)
        access_key: str | None = None
        if token is not None:
            issued = self._iam.token_info(token)
            if issued is None:
                message = "Incorrect IAM authentication information: token expired or invalid"
                return apig_error(401, "APIG.0301", message, request_id), None
            request[USER] = issued.user
        else:
            try:
                access_key = await self._verify_signature(request)
            except SignatureError as err:
                return apig_error(401, err.error_code, err.error_msg, request_id), None
        if not self._traffic.admit():
            return _throttled(self._traffic.rate_limit or 0.0, request_id), access_key
        fault = self._faults.take(operation)
        if fault is not None:
            return await _fault_response(request, fault, request_id, operation), access_key
        return await handler(request), access_key

    async def _verify_signature(self, request: web.Request) -> str:
        """The access key of a correctly signed request; `SignatureError` otherwise."""
        raw_path, _, raw_query = request.raw_path.partition("?")
        body = await request.read()
        return self._iam.verify_signature(
            request.method, raw_path, raw_query, request.headers, body
        )


def _throttled(rate_limit: float, request_id: str) -> web.Response:
    message = (
        "The throttling threshold has been reached: policy user over ratelimit, "
        f"limit:{rate_limit:g}, time:1 second"
    )
    return apig_error(429, "APIG.0308", message, request_id)


async def _fault_response(
    request: web.Request, fault: Fault, request_id: str, operation: str
) -> web.StreamResponse:
    """Deliver ``fault`` after its delay: reset, truncated, or answered whole."""
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    if fault.reset:
        return _reset(request, fault.status)
    body = fault.body
    if body is None and operation == IAM_TOKEN:
        message = "Server-side errors occur." if fault.status >= 500 else "The request failed."
        body = json.dumps(iam_error_body(fault.status, message)).encode()
    elif body is None:
        body = json.dumps(_default_fault_body(fault.status, request_id)).encode()
    if fault.truncate:
        return await _truncated(request, fault, body, request_id)
    response = web.Response(status=fault.status, body=body, content_type=fault.content_type)
    response.headers.update(fault.headers)
    return response


def _reset(request: web.Request, status: int) -> web.Response:
    """Reset the connection (RST, not a graceful close); the returned response is never sent."""
    request[_RESET] = True
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: closing sends RST and drops unsent data
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=status)


async def _truncated(
    request: web.Request, fault: Fault, body: bytes, request_id: str
) -> web.StreamResponse:
    """Announce ``len(body)`` bytes, send half of them, then close the connection."""
    response = web.StreamResponse(status=fault.status, headers=fault.headers)
    response.content_type = fault.content_type
    response.content_length = len(body)
    response.headers[REQUEST_ID_HEADER] = request_id
    response.force_close()
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    return response


def _default_fault_body(status: int, request_id: str) -> dict[str, str]:
    """The body the real service sends with ``status`` when a fault gives none."""
    if status == 429:
        return {
            "error_code": "APIG.0308",
            "error_msg": "The throttling threshold has been reached",
            "request_id": request_id,
        }
    if status == 401:
        return {
            "error_code": "APIG.0301",
            "error_msg": "Incorrect IAM authentication information",
            "request_id": request_id,
        }
    message = "Server-side errors occur." if status >= 500 else "The request failed."
    return {
        "is_success": "false",
        "message": message,
        "error_code": "DLI.0999",
        "error_msg": message,
    }
