"""Workload identity (``type: workload_identity``): an OIDC id token exchanged at STS.

As the SDK's ``OidcStsAccessor`` (``auth/internal.py``): ``POST
{sts}/v5/agencies/assume-with-oidc`` with ``provider_urn``, ``agency_urn``,
``agency_session_name``, ``id_token`` and ``duration_seconds``; the answer's credentials are the
agency's temporary AK/SK. The id token file is re-read on every fetch (a projected service
account token is rotated).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Final

import aiohttp

from exporter.auth.base import Issued, RequestObserver
from exporter.auth.calls import observed_call, temporary_key_reader
from exporter.auth.temporary import (
    TemporaryAkSk,
    TemporaryKey,
    read_token_file,
)
from exporter.dli.api import STS_ASSUME_OIDC_PATH, WORKLOAD_IDENTITY
from exporter.errors import DliApiError
from exporter.http import SslSetting

_MAX_BODY: Final = 64 * 1024


class WorkloadIdentityCredentials(TemporaryAkSk):
    """The agency's temporary AK/SK for this workload's OIDC identity.

    Requests are observed as operation ``workload_identity``; failures raise `DliApiError` with
    that operation (code ``credentials`` when the id token file cannot be read). The id token
    and the keys appear in no repr, log or error.
    """

    kind = "workload identity credentials"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        sts_endpoint: str,
        provider_urn: str,
        agency_urn: str,
        id_token_file: str,
        session_name: str,
        duration_seconds: int,
        timeout: float,
        observe: RequestObserver | None = None,
        clock: Callable[[], float] = time.time,
        ssl_option: SslSetting = True,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self._sts_endpoint = sts_endpoint.rstrip("/")
        self._provider_urn = provider_urn
        self._agency_urn = agency_urn
        self._id_token_file = id_token_file
        self._session_name = session_name
        self._duration = duration_seconds
        self._timeout = timeout
        self._observe = observe
        self._ssl = ssl_option

    def __repr__(self) -> str:
        return (
            f"WorkloadIdentityCredentials(sts_endpoint={self._sts_endpoint!r}, "
            f"agency_urn={self._agency_urn!r})"
        )

    async def _fetch(self, *, after_401: bool) -> Issued[TemporaryKey]:
        id_token = await read_token_file(WORKLOAD_IDENTITY, self._id_token_file)
        payload = {
            "provider_urn": self._provider_urn,
            "agency_urn": self._agency_urn,
            "agency_session_name": self._session_name,
            "id_token": id_token.reveal(),
            "duration_seconds": self._duration,
        }
        return await observed_call(
            self._session,
            WORKLOAD_IDENTITY,
            "POST",
            self._sts_endpoint + STS_ASSUME_OIDC_PATH,
            headers={"Content-Type": "application/json;charset=UTF-8"},
            body=json.dumps(payload).encode(),
            read=temporary_key_reader(
                WORKLOAD_IDENTITY, fetched_at=self._clock(), after_401=after_401
            ),
            budget=self._timeout,
            max_body=_MAX_BODY,
            ssl_option=self._ssl,
            observe=self._observe,
        )

    def _fields(self, exc: DliApiError | None = None, **more: object) -> dict[str, object]:
        fields: dict[str, object] = {
            "sts_endpoint": self._sts_endpoint,
            "agency_urn": self._agency_urn,
            **more,
        }
        if exc is not None:
            fields["error"] = exc.describe()
        return {"fields": fields}
