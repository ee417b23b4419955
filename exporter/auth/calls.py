"""`observed_call`: one request to a credential service, counted once, like a DLI call.

Every provider that asks a service for credentials (IAM, STS, the metadata service, pod
identity) makes its requests through this, so each is sent on the one request path
(`exporter.http.send`: no redirects, bounded body, per-target TLS) and observed once with its
outcome under its operation: the HTTP status, or ``timeout``/``redirect``/``error``; an answer
``read`` cannot use counts as ``error``, as for DLI calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import aiohttp

from exporter.auth.base import Issued, RequestObserver
from exporter.auth.temporary import TemporaryKey, parse_temporary_key
from exporter.errors import DliApiError, error_from_body
from exporter.http import HttpResponse, SslSetting, send

__all__ = ["observed_call", "require_success", "temporary_key_reader"]

_T = TypeVar("_T")


async def observed_call(
    session: aiohttp.ClientSession,
    operation: str,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    read: Callable[[HttpResponse], _T],
    budget: float,
    max_body: int,
    body: bytes | None = None,
    ssl_option: SslSetting = True,
    observe: RequestObserver | None = None,
) -> _T:
    """Send one request and return ``read(response)``; raises `DliApiError`."""
    started = time.monotonic()
    code = "error"
    try:
        response = await send(
            session,
            operation,
            method,
            url,
            headers=headers,
            body=body,
            budget=budget,
            max_body=max_body,
            ssl_option=ssl_option,
        )
        code = str(response.status)
        return read(response)
    except DliApiError as exc:
        code = exc.code
        raise
    finally:
        if observe is not None:
            observe(operation, code, time.monotonic() - started)


def require_success(operation: str, response: HttpResponse) -> HttpResponse:
    """``response`` when it is a 2xx; else its error, read from its body."""
    if not 200 <= response.status < 300:
        raise error_from_body(operation, response.status, response.body, response.request_id)
    return response


def temporary_key_reader(
    operation: str, *, fetched_at: float, after_401: bool
) -> Callable[[HttpResponse], Issued[TemporaryKey]]:
    """A ``read`` for `observed_call`: a 2xx answer's temporary AK/SK."""

    def read(response: HttpResponse) -> Issued[TemporaryKey]:
        require_success(operation, response)
        return parse_temporary_key(
            operation,
            response.status,
            response.body,
            response.request_id,
            fetched_at=fetched_at,
            after_401=after_401,
        )

    return read
