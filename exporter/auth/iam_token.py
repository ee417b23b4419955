"""An IAM user's password exchanged for a project-scoped token (``type: password``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Final

import aiohttp

from exporter.auth.base import (
    REFRESH_MARGIN_MAX,
    Issued,
    Renewing,
    RequestObserver,
    issued_for,
    parse_timestamp,
)
from exporter.auth.calls import observed_call, require_success
from exporter.dli.api import (
    AUTH_TOKEN_HEADER,
    IAM_TOKEN,
    IAM_TOKEN_PATH,
    IAM_TOKEN_QUERY,
    SUBJECT_TOKEN_HEADER,
)
from exporter.errors import DliApiError
from exporter.http import HttpResponse, SslSetting
from exporter.secret import Secret
from exporter.values import loads_json

# ``nocatalog`` leaves the (large) service catalogue out of the response.
_TOKEN_PATH: Final = f"{IAM_TOKEN_PATH}?{IAM_TOKEN_QUERY}"
_MAX_TOKEN_BODY: Final = 4 * 1024 * 1024


class IamTokenCredentials(Renewing[Secret]):
    """An IAM user's password exchanged for a project-scoped token, sent as ``X-Auth-Token``.

    The token is fetched on first use; concurrent callers share one IAM request (and its
    failure). It is renewed when less than 10% of its lifetime or 1 h, whichever is smaller,
    remains; if that renewal fails, the current token is used until it expires. The lifetime is
    ``expires_at - issued_at`` from IAM's answer, counted from when the request was sent, so a
    skewed local clock does not matter (without ``issued_at``, ``expires_at`` is compared with
    ``clock``, unix seconds). Every IAM request is observed as operation ``iam_token``; failures
    raise `DliApiError`. Neither the password nor the token appears in reprs, logs or errors.
    """

    kind = "IAM token"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        iam_endpoint: str,
        username: str,
        password: Secret,
        domain_name: str,
        project_id: str,
        timeout: float,
        observe: RequestObserver | None = None,
        clock: Callable[[], float] = time.time,
        ssl_option: SslSetting = True,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self._iam_endpoint = iam_endpoint.rstrip("/")
        self._username = username
        self._password = password
        self._domain_name = domain_name
        self._project_id = project_id
        self._timeout = timeout
        self._ssl = ssl_option
        self._observe = observe

    def __repr__(self) -> str:
        return (
            f"IamTokenCredentials(username={self._username!r}, "
            f"domain_name={self._domain_name!r}, project_id={self._project_id!r}, "
            f"iam_endpoint={self._iam_endpoint!r})"
        )

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """Add ``X-Auth-Token``, fetching or renewing the token first when needed."""
        token = await self._current()
        return {**headers, AUTH_TOKEN_HEADER: token.reveal()}

    async def _fetch(self, *, after_401: bool) -> Issued[Secret]:
        """``POST /v3/auth/tokens``, observed once as ``iam_token``."""
        fetched_at = self._clock()

        def read(response: HttpResponse) -> Issued[Secret]:
            require_success(IAM_TOKEN, response)
            return _parse_token(
                response.status,
                response.body,
                response.subject_token,
                response.request_id,
                fetched_at=fetched_at,
                after_401=after_401,
            )

        return await observed_call(
            self._session,
            IAM_TOKEN,
            "POST",
            self._iam_endpoint + _TOKEN_PATH,
            headers={"Content-Type": "application/json;charset=utf8"},
            body=self._request_body(),
            read=read,
            budget=self._timeout,
            max_body=_MAX_TOKEN_BODY,
            ssl_option=self._ssl,
            observe=self._observe,
        )

    def _request_body(self) -> bytes:
        user = {
            "name": self._username,
            "password": self._password.reveal(),
            "domain": {"name": self._domain_name},
        }
        auth = {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": {"id": self._project_id}},
        }
        return json.dumps({"auth": auth}).encode()

    def _fields(self, exc: DliApiError | None = None, **more: object) -> dict[str, object]:
        fields: dict[str, object] = {
            "iam_endpoint": self._iam_endpoint,
            "username": self._username,
            "project_id": self._project_id,
            **more,
        }
        if exc is not None:
            fields["error"] = exc.describe()
        return {"fields": fields}


def _parse_token(
    status: int,
    body: bytes,
    subject: str | None,
    request_id: str | None,
    *,
    fetched_at: float,
    after_401: bool,
) -> Issued[Secret]:
    """The token of a successful answer; `DliApiError` (code "error") when it is unusable."""

    def unusable(detail: str) -> DliApiError:
        message = f"unusable response: {detail}"
        return DliApiError(IAM_TOKEN, "error", message, status=status, request_id=request_id)

    if not subject:
        raise unusable(f"no {SUBJECT_TOKEN_HEADER} header")
    try:
        payload = loads_json(body)
    except ValueError:
        raise unusable("body is not JSON") from None
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, dict):
        raise unusable("no token object")
    expires = parse_timestamp(token.get("expires_at"))
    if expires is None:
        raise unusable("token.expires_at is missing or not an ISO 8601 time")
    issued = parse_timestamp(token.get("issued_at"))
    lifetime = expires - (fetched_at if issued is None else issued)
    if lifetime <= 0:
        raise unusable("the token is already expired")
    return issued_for(
        Secret(subject),
        fetched_at=fetched_at,
        lifetime=lifetime,
        after_401=after_401,
        margin_max=REFRESH_MARGIN_MAX,
    )
