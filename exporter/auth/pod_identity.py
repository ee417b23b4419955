"""Temporary AK/SK from CCE pod identity (``type: pod_identity``).

As the SDK's ``PodIdentityAccessor`` (``auth/internal.py``): ``POST`` ``{}`` to
``HC_CONTAINER_CREDENTIALS_FULL_URI`` with the content of
``HC_CONTAINER_AUTHORIZATION_TOKEN_FILE`` as ``Authorization``. The token file is re-read on
every fetch (bounded, off the event loop), since the kubelet rotates it.
"""

from __future__ import annotations

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
from exporter.dli.api import POD_IDENTITY
from exporter.errors import DliApiError
from exporter.http import SslSetting

_MAX_BODY: Final = 64 * 1024


class PodIdentityCredentials(TemporaryAkSk):
    """Temporary AK/SK of the pod's identity, from the agent at ``uri``.

    Requests are observed as operation ``pod_identity``; failures raise `DliApiError` with that
    operation (code ``credentials`` when the token file cannot be read). The token and keys
    appear in no repr, log or error.
    """

    kind = "pod identity credentials"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        uri: str,
        token_file: str,
        timeout: float,
        observe: RequestObserver | None = None,
        clock: Callable[[], float] = time.time,
        ssl_option: SslSetting = True,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self._uri = uri
        self._token_file = token_file
        self._timeout = timeout
        self._observe = observe
        self._ssl = ssl_option

    def __repr__(self) -> str:
        return f"PodIdentityCredentials(uri={self._uri!r}, token_file={self._token_file!r})"

    async def _fetch(self, *, after_401: bool) -> Issued[TemporaryKey]:
        token = await read_token_file(POD_IDENTITY, self._token_file)
        return await observed_call(
            self._session,
            POD_IDENTITY,
            "POST",
            self._uri,
            headers={"Authorization": token.reveal(), "Content-Type": "application/json"},
            body=b"{}",
            read=temporary_key_reader(POD_IDENTITY, fetched_at=self._clock(), after_401=after_401),
            budget=self._timeout,
            max_body=_MAX_BODY,
            ssl_option=self._ssl,
            observe=self._observe,
        )

    def _fields(self, exc: DliApiError | None = None, **more: object) -> dict[str, object]:
        fields: dict[str, object] = {"uri": self._uri, **more}
        if exc is not None:
            fields["error"] = exc.describe()
        return {"fields": fields}
