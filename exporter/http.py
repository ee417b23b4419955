"""The one request path for every upstream call (DLI, IAM and any later source).

`send` makes one HTTP exchange and returns its status, bounded body and the few headers the
exporter reads, already made safe. It never follows a redirect: the requests carry a signature
or a token (``X-Auth-Token``, ``X-Security-Token``) that must not reach another host, and the
Huawei Cloud APIs do not redirect, so a 3xx is an error with code ``redirect``. Timeouts and
transport failures become `DliApiError` with code ``timeout`` or ``error``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp
from yarl import URL

from exporter.config import TlsClientConfig
from exporter.dli.api import REQUEST_ID_HEADER, SUBJECT_TOKEN_HEADER
from exporter.errors import DliApiError, describe_client_error
from exporter.values import header_token, parse_retry_after

#: The code counted for a refused redirect.
REDIRECT: Final = "redirect"

#: What aiohttp's ``ssl`` argument takes: True (verify with the system store), False (do not
#: verify) or a context trusting a private CA.
SslSetting = ssl.SSLContext | bool


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One answer: status, body and the headers the exporter uses (sanitised)."""

    status: int
    body: bytes
    request_id: str | None
    retry_after: float | None
    #: The raw ``X-Subject-Token`` header (IAM's token); ``None`` when absent.
    subject_token: str | None = None


def ssl_setting(tls: TlsClientConfig) -> SslSetting:
    """The ``ssl`` argument for a target's requests (CPU work: build once per target)."""
    if tls.insecure_skip_verify:
        return False
    if tls.ca_pem is None:
        return True
    return ssl.create_default_context(cadata=tls.ca_pem)


async def send(
    session: aiohttp.ClientSession,
    operation: str,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    budget: float,
    max_body: int,
    body: bytes | None = None,
    ssl_option: SslSetting = True,
) -> HttpResponse:
    """Send one request (``url`` already encoded) and read its answer; no redirects.

    Raises `DliApiError`: code ``redirect`` for a 3xx (naming only the origin it pointed to),
    ``timeout`` after ``budget`` seconds, ``error`` for a transport failure or a body larger
    than ``max_body``. Other statuses are returned for the caller to judge.
    """
    try:
        async with session.request(
            method,
            URL(url, encoded=True),
            headers=headers,
            data=body,
            timeout=aiohttp.ClientTimeout(total=budget),
            allow_redirects=False,
            ssl=ssl_option,
        ) as resp:
            request_id = header_token(resp.headers.get(REQUEST_ID_HEADER))
            if 300 <= resp.status < 400:
                raise DliApiError(
                    operation,
                    REDIRECT,
                    f"refused to follow a redirect (HTTP {resp.status}) to "
                    f"{_origin(resp.headers.get('Location'))}",
                    status=resp.status,
                    request_id=request_id,
                )
            content = await read_body(resp, max_body)
            return HttpResponse(
                resp.status,
                content,
                request_id,
                parse_retry_after(resp.headers.get("Retry-After")),
                resp.headers.get(SUBJECT_TOKEN_HEADER),
            )
    except TimeoutError as exc:
        raise DliApiError(operation, "timeout", f"no response within {budget:g}s") from exc
    except aiohttp.ClientError as exc:
        raise DliApiError(operation, "error", describe_client_error(exc)) from exc


def _origin(location: str | None) -> str:
    """Where a redirect pointed, as scheme://host[:port] only (a path could carry a token)."""
    if not location:
        return "nowhere (no Location header)"
    try:
        target = URL(location)
    except ValueError:
        return "an unparseable Location"
    if not target.is_absolute() or not target.host:
        return "a relative Location on the same host"
    port = f":{target.explicit_port}" if target.explicit_port is not None else ""
    return header_token(f"{target.scheme}://{target.host}{port}", limit=200) or "?"


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, however many reads it takes; refuse one larger than ``limit`` bytes.

    A body announced (``Content-Length``) or found to be larger is refused before or while it
    is read, so a runaway response cannot exhaust memory.
    """
    if resp.content_length is not None and resp.content_length > limit:
        raise aiohttp.ClientPayloadError(f"body of {resp.content_length} bytes is too large")
    body = bytearray()
    async for chunk in resp.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise aiohttp.ClientPayloadError(f"body larger than {limit} bytes is too large")
    return bytes(body)
