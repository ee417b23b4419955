"""Federated identity (``type: federated``): an id token exchanged at IAM for temporary AK/SK.

As the SDK's ``FederalAccessor`` (``auth/internal.py``): ``POST
{iam}/v3.0/OS-AUTH/id-token/tokens`` with header ``X-Idp-Id`` and body
``{"auth": {"id_token": {"id": ...}}}`` answers an unscoped token in ``X-Subject-Token``; ``POST
{iam}/v3.0/OS-CREDENTIAL/securitytokens`` with ``methods: ["token"]``, that token and
``duration_seconds`` answers the temporary AK/SK (``credential``). The id token file is re-read
and a new unscoped token obtained on every fetch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Final

import aiohttp

from exporter.auth.base import Issued, RequestObserver
from exporter.auth.calls import observed_call, require_success, temporary_key_reader
from exporter.auth.temporary import (
    TemporaryAkSk,
    TemporaryKey,
    read_token_file,
)
from exporter.dli.api import (
    ASSUME_AGENCY_PATH,
    AUTH_TOKEN_HEADER,
    FEDERATED_CREDENTIAL,
    FEDERATED_TOKEN,
    FEDERATED_TOKEN_PATH,
    IDP_ID_HEADER,
    SUBJECT_TOKEN_HEADER,
)
from exporter.errors import DliApiError
from exporter.http import HttpResponse, SslSetting
from exporter.secret import Secret

_MAX_BODY: Final = 64 * 1024
_JSON: Final = "application/json;charset=UTF-8"


class FederatedCredentials(TemporaryAkSk):
    """Temporary AK/SK for a federated identity's id token.

    The id token request is observed as operation ``federated_token`` (code ``credentials``
    when the id token file cannot be read), the key request as ``federated_credential``; a
    failure raises `DliApiError` with the operation of the step that failed. The id token, the
    unscoped token and the keys appear in no repr, log or error.
    """

    kind = "federated credentials"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        iam_endpoint: str,
        idp_id: str,
        id_token_file: str,
        duration_seconds: int,
        timeout: float,
        observe: RequestObserver | None = None,
        clock: Callable[[], float] = time.time,
        ssl_option: SslSetting = True,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self._iam_endpoint = iam_endpoint.rstrip("/")
        self._idp_id = idp_id
        self._id_token_file = id_token_file
        self._duration = duration_seconds
        self._timeout = timeout
        self._observe = observe
        self._ssl = ssl_option

    def __repr__(self) -> str:
        return f"FederatedCredentials(iam_endpoint={self._iam_endpoint!r}, idp_id={self._idp_id!r})"

    async def _fetch(self, *, after_401: bool) -> Issued[TemporaryKey]:
        token = await self._unscoped_token()
        payload = {
            "auth": {
                "identity": {
                    "methods": ["token"],
                    "token": {"id": token.reveal(), "duration_seconds": self._duration},
                }
            }
        }
        return await observed_call(
            self._session,
            FEDERATED_CREDENTIAL,
            "POST",
            self._iam_endpoint + ASSUME_AGENCY_PATH,
            headers={"Content-Type": _JSON, AUTH_TOKEN_HEADER: token.reveal()},
            body=json.dumps(payload).encode(),
            read=temporary_key_reader(
                FEDERATED_CREDENTIAL, fetched_at=self._clock(), after_401=after_401
            ),
            budget=self._timeout,
            max_body=_MAX_BODY,
            ssl_option=self._ssl,
            observe=self._observe,
        )

    async def _unscoped_token(self) -> Secret:
        """The id token (read afresh) exchanged for an unscoped IAM token."""
        id_token = await read_token_file(FEDERATED_TOKEN, self._id_token_file)
        payload = {"auth": {"id_token": {"id": id_token.reveal()}}}
        return await observed_call(
            self._session,
            FEDERATED_TOKEN,
            "POST",
            self._iam_endpoint + FEDERATED_TOKEN_PATH,
            headers={"Content-Type": _JSON, IDP_ID_HEADER: self._idp_id},
            body=json.dumps(payload).encode(),
            read=_subject_token,
            budget=self._timeout,
            max_body=_MAX_BODY,
            ssl_option=self._ssl,
            observe=self._observe,
        )

    def _fields(self, exc: DliApiError | None = None, **more: object) -> dict[str, object]:
        fields: dict[str, object] = {
            "iam_endpoint": self._iam_endpoint,
            "idp_id": self._idp_id,
            **more,
        }
        if exc is not None:
            fields["error"] = exc.describe()
        return {"fields": fields}


def _subject_token(response: HttpResponse) -> Secret:
    """The unscoped token a 2xx answer carries in ``X-Subject-Token``."""
    require_success(FEDERATED_TOKEN, response)
    if not response.subject_token:
        raise DliApiError(
            FEDERATED_TOKEN,
            "error",
            f"unusable response: no {SUBJECT_TOKEN_HEADER} header",
            status=response.status,
            request_id=response.request_id,
        )
    return Secret(response.subject_token)
