"""Temporary AK/SK of the ECS agency from the instance metadata service (``type: metadata``).

The flow of the SDK's ``MetadataAccessor`` (``auth/internal.py``): ``PUT
/meta-data/latest/api/token`` with ``X-Metadata-Token-Ttl-Seconds`` for a session token, then
``GET /openstack/latest/securitykey`` with ``X-Metadata-Token``. A token endpoint answering 404,
405 or 503 (an older metadata service) means "go on without a token", and it is not asked again
for 24 h; a 401 on the key (other than "configure an agency first") renews the token once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import aiohttp

from exporter.auth.base import Issued, RequestObserver
from exporter.auth.calls import observed_call
from exporter.auth.temporary import TemporaryAkSk, TemporaryKey, parse_temporary_key
from exporter.dli.api import (
    METADATA,
    METADATA_SECURITY_KEY_PATH,
    METADATA_TOKEN_HEADER,
    METADATA_TOKEN_PATH,
    METADATA_TOKEN_TTL_HEADER,
)
from exporter.errors import DliApiError, error_from_body
from exporter.http import HttpResponse
from exporter.secret import Secret

#: The SDK asks for 6 h metadata tokens and re-checks a token-less service after 24 h.
METADATA_TOKEN_TTL: Final = 6 * 3600
TOKENLESS_RECHECK: Final = 24 * 3600.0
#: Token endpoint statuses meaning "this service has no tokens".
TOKENLESS_STATUSES: Final = frozenset({404, 405, 503})
#: The 401 text that means no agency is attached (renewing the token cannot help).
NO_AGENCY_TEXT: Final = b"Please configure Cloud Service Agency first"
_MAX_BODY: Final = 64 * 1024


class MetadataCredentials(TemporaryAkSk):
    """Temporary AK/SK of the instance's agency, from the metadata service at ``endpoint``.

    Every request to the service is observed as operation ``metadata``; a failure raises
    `DliApiError` with that operation, so the target is down with the step named. The metadata
    token, the SK and the security token appear in no repr, log or error.
    """

    kind = "metadata credentials"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        timeout: float,
        observe: RequestObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._timeout = timeout
        self._observe = observe
        self._metadata_token: Secret | None = None
        self._token_renew_at = 0.0
        #: When the token endpoint was last asked (None: never).
        self._token_checked_at: float | None = None

    def __repr__(self) -> str:
        return f"MetadataCredentials(endpoint={self._endpoint!r})"

    async def _fetch(self, *, after_401: bool) -> Issued[TemporaryKey]:
        fetched_at = self._clock()
        if self._token_due(fetched_at):
            await self._update_token(tokenless_ok=True)
        response = await self._get_key()
        if response.status == 401 and NO_AGENCY_TEXT not in response.body:
            await self._update_token(tokenless_ok=False)
            response = await self._get_key()
        if not 200 <= response.status < 300:
            raise error_from_body(METADATA, response.status, response.body, response.request_id)
        return parse_temporary_key(
            METADATA,
            response.status,
            response.body,
            response.request_id,
            fetched_at=fetched_at,
            after_401=after_401,
        )

    def _token_due(self, now: float) -> bool:
        if self._metadata_token is not None:
            return now >= self._token_renew_at
        checked = self._token_checked_at
        return checked is None or now - checked > TOKENLESS_RECHECK

    async def _update_token(self, *, tokenless_ok: bool) -> None:
        """``PUT`` the token endpoint; a tokenless answer clears the token when allowed."""
        now = self._clock()
        self._token_checked_at = now
        headers = {METADATA_TOKEN_TTL_HEADER: str(METADATA_TOKEN_TTL)}
        response = await self._send("PUT", METADATA_TOKEN_PATH, headers)
        if response.status == 200 and response.body.strip():
            self._metadata_token = Secret(response.body.decode("utf-8", "replace").strip())
            self._token_renew_at = now + 0.9 * METADATA_TOKEN_TTL
            return
        if response.status in TOKENLESS_STATUSES and tokenless_ok:
            self._metadata_token = None
            return
        self._metadata_token = None
        if response.status == 200:
            message = "unusable response: empty metadata token"
            raise DliApiError(METADATA, "error", message, status=200)
        raise error_from_body(METADATA, response.status, response.body, response.request_id)

    async def _get_key(self) -> HttpResponse:
        token = self._metadata_token
        headers = {} if token is None else {METADATA_TOKEN_HEADER: token.reveal()}
        return await self._send("GET", METADATA_SECURITY_KEY_PATH, headers)

    async def _send(self, method: str, path: str, headers: dict[str, str]) -> HttpResponse:
        """One request to the metadata service, observed as ``metadata``."""
        return await observed_call(
            self._session,
            METADATA,
            method,
            self._endpoint + path,
            headers=headers,
            read=lambda response: response,
            budget=self._timeout,
            max_body=_MAX_BODY,
            observe=self._observe,
        )

    def _fields(self, exc: DliApiError | None = None, **more: object) -> dict[str, object]:
        fields: dict[str, object] = {"metadata_endpoint": self._endpoint, **more}
        if exc is not None:
            fields["error"] = exc.describe()
        return {"fields": fields}
