"""Credential providers: turn an unsigned request into one DLI will accept."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

import aiohttp

from exporter.config import AkSkAuth, PasswordAuth, TargetConfig
from exporter.dli.api import (
    AUTH_TOKEN_HEADER,
    IAM_TOKEN,
    IAM_TOKEN_PATH,
    IAM_TOKEN_QUERY,
    SUBJECT_TOKEN_HEADER,
)
from exporter.errors import DliApiError, error_from_body
from exporter.http import SslSetting, send, ssl_setting
from exporter.secret import Secret
from exporter.signing import sign_request
from exporter.values import loads_json

log = logging.getLogger(__name__)

#: The ``operation`` IAM token requests are observed and reported as.
#: The header DLI reads the IAM token from.
#: Renew when less than this share of the token's lifetime remains, or ``REFRESH_MARGIN_MAX``
#: seconds, whichever is smaller.
REFRESH_FRACTION: Final = 0.1
REFRESH_MARGIN_MAX: Final = 3600.0
#: ``refresh()`` asks IAM at most once per this many seconds; also the pause after a failed
#: early renewal while the current token is still valid.
MIN_REFETCH_INTERVAL: Final = 60.0
#: After IAM rejects the password (400/401/403): no new attempt for this long, doubled after
#: each further rejection up to ``REJECTED_BACKOFF_MAX``. IAM locks users out after a few
#: failed logins, so a wrong password must not be retried at the poll rate.
REJECTED_BACKOFF: Final = 300.0
REJECTED_BACKOFF_MAX: Final = 3600.0

# ``nocatalog`` leaves the (large) service catalogue out of the response.
_TOKEN_PATH: Final = f"{IAM_TOKEN_PATH}?{IAM_TOKEN_QUERY}"
_REJECTED_STATUSES: Final = frozenset({400, 401, 403})
_MAX_TOKEN_BODY: Final = 4 * 1024 * 1024

#: Called once per HTTP attempt with (operation, code, seconds), as for DLI calls.
RequestObserver = Callable[[str, str, float], None]


class Credentials(Protocol):
    """Adds authentication headers to a request about to be sent."""

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """Return the headers to send, authentication included."""
        ...

    async def refresh(self) -> bool:
        """Renew what can be renewed after a 401; True when a retry may now succeed."""
        ...


def utc_now() -> datetime:
    """The current time in UTC (the default clock of the signers)."""
    return datetime.now(UTC)


class AkSkCredentials:
    """Permanent or temporary AK/SK, signing each request with ``SDK-HMAC-SHA256``."""

    def __init__(
        self,
        access_key: str,
        secret_key: Secret,
        security_token: Secret | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._security_token = security_token
        self._clock = clock

    def __repr__(self) -> str:
        temporary = self._security_token is not None
        return f"AkSkCredentials(access_key={self._access_key!r}, temporary={temporary})"

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """Sign the request; the signature covers method, path, query, headers and body."""
        token = self._security_token.reveal() if self._security_token else None
        return sign_request(
            method,
            url,
            headers,
            body,
            access_key=self._access_key,
            secret_key=self._secret_key.reveal(),
            now=self._clock(),
            security_token=token,
        )

    async def refresh(self) -> bool:
        """A static key pair cannot be renewed: a 401 is final."""
        return False


@dataclass(frozen=True, slots=True)
class _Token:
    """An issued token; times are on the credentials' clock."""

    value: Secret
    fetched_at: float
    refresh_at: float
    expires_at: float
    #: Obtained by `IamTokenCredentials.refresh` because DLI answered 401.
    after_401: bool

    def usable(self, now: float) -> bool:
        return now < self.expires_at


class IamTokenCredentials:
    """An IAM user's password exchanged for a project-scoped token, sent as ``X-Auth-Token``.

    The token is fetched on first use; concurrent callers share one IAM request (and its
    failure). It is renewed when less than 10% of its lifetime or 1 h, whichever is smaller,
    remains; if that renewal fails, the current token is used until it expires. The lifetime is
    ``expires_at - issued_at`` from IAM's answer, counted from when the request was sent, so a
    skewed local clock does not matter (without ``issued_at``, ``expires_at`` is compared with
    ``clock``, unix seconds). Every IAM request is observed as operation ``iam_token``; failures
    raise `DliApiError`. Neither the password nor the token appears in reprs, logs or errors.
    """

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
        self._session = session
        self._iam_endpoint = iam_endpoint.rstrip("/")
        self._username = username
        self._password = password
        self._domain_name = domain_name
        self._project_id = project_id
        self._timeout = timeout
        self._ssl = ssl_option
        self._observe = observe
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: _Token | None = None
        #: Completed IAM attempts; tells a waiter that the attempt it waited for has finished.
        self._attempts = 0
        self._failure: DliApiError | None = None
        self._rejections = 0
        #: No IAM request before this time (clock) after a failure.
        self._retry_at = 0.0

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
        token = await self._current_token()
        return {**headers, AUTH_TOKEN_HEADER: token.reveal()}

    async def refresh(self) -> bool:
        """After a DLI 401: drop the token and fetch a new one; True when one was obtained.

        IAM is asked at most once per ``MIN_REFETCH_INTERVAL``: a 401 for a token that young is
        not about the token (so asking again would only hammer IAM). Within that window this
        returns True, without asking IAM, when the young token was itself obtained after a 401
        (requests that were in flight with the revoked token may retry with the new one), and
        False otherwise. Also False while IAM is backed off after rejecting the password, and
        when the new fetch fails (logged; the next ``authorize`` tries again).
        """
        async with self._lock:
            now = self._clock()
            token = self._token
            if token is not None and now - token.fetched_at < MIN_REFETCH_INTERVAL:
                return token.after_401
            if now < self._retry_at:
                return False
            self._token = None
            try:
                await self._renew(after_401=True)
            except DliApiError as exc:
                log.warning("IAM token renewal after a 401 failed", extra=self._fields(exc))
                return False
            return True

    async def _current_token(self) -> Secret:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        attempts = self._attempts
        async with self._lock:
            now = self._clock()
            token = self._token
            if token is not None and now < token.refresh_at:
                return token.value  # renewed while we waited
            failure = self._failure
            if failure is not None and (self._attempts != attempts or now < self._retry_at):
                # The attempt we waited for failed, or IAM is resting after a failure.
                if token is not None and token.usable(now):
                    return token.value
                raise _copy(failure)
            try:
                return (await self._renew(after_401=False)).value
            except DliApiError as exc:
                if token is None or not token.usable(now):
                    raise
                log.warning(
                    "IAM token renewal failed; using the current token until it expires",
                    extra=self._fields(exc),
                )
                return token.value

    async def _renew(self, *, after_401: bool) -> _Token:
        """One IAM attempt (lock held); its outcome is remembered for waiters and back-off."""
        try:
            token = await self._request_token(after_401=after_401)
        except DliApiError as exc:
            now = self._clock()
            self._attempts += 1
            self._failure = exc
            if exc.status in _REJECTED_STATUSES:
                backoff = REJECTED_BACKOFF * 2 ** min(self._rejections, 16)
                self._retry_at = now + min(backoff, REJECTED_BACKOFF_MAX)
                self._rejections += 1
            elif self._token is not None and self._token.usable(now):
                self._retry_at = now + MIN_REFETCH_INTERVAL
            else:
                self._retry_at = now  # nothing to fall back on: the next call may try again
            raise
        self._attempts += 1
        self._token, self._failure, self._rejections, self._retry_at = token, None, 0, 0.0
        log.debug(
            "IAM token obtained",
            extra=self._fields(expires_in=round(token.expires_at - token.fetched_at)),
        )
        return token

    async def _request_token(self, *, after_401: bool) -> _Token:
        """``POST /v3/auth/tokens``, observed once as ``iam_token``."""
        fetched_at = self._clock()
        started = time.monotonic()
        code = "error"
        try:
            status, body, subject, request_id = await self._post()
            code = str(status)
            if not 200 <= status < 300:
                raise error_from_body(IAM_TOKEN, status, body, request_id)
            return _parse_token(
                status, body, subject, request_id, fetched_at=fetched_at, after_401=after_401
            )
        except DliApiError as exc:
            code = exc.code
            raise
        finally:
            if self._observe is not None:
                self._observe(IAM_TOKEN, code, time.monotonic() - started)

    async def _post(self) -> tuple[int, bytes, str | None, str | None]:
        response = await send(
            self._session,
            IAM_TOKEN,
            "POST",
            self._iam_endpoint + _TOKEN_PATH,
            headers={"Content-Type": "application/json;charset=utf8"},
            body=self._request_body(),
            budget=self._timeout,
            max_body=_MAX_TOKEN_BODY,
            ssl_option=self._ssl,
        )
        return response.status, response.body, response.subject_token, response.request_id

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
) -> _Token:
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
    expires = _timestamp(token.get("expires_at"))
    if expires is None:
        raise unusable("token.expires_at is missing or not an ISO 8601 time")
    issued = _timestamp(token.get("issued_at"))
    lifetime = expires - (fetched_at if issued is None else issued)
    if lifetime <= 0:
        raise unusable("the token is already expired")
    margin = min(REFRESH_FRACTION * lifetime, REFRESH_MARGIN_MAX)
    return _Token(
        value=Secret(subject),
        fetched_at=fetched_at,
        refresh_at=fetched_at + lifetime - margin,
        expires_at=fetched_at + lifetime,
        after_401=after_401,
    )


def _timestamp(value: object) -> float | None:
    """Unix seconds of an ISO 8601 time such as ``2026-11-24T00:15:00.123000Z`` (UTC if naive)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _copy(error: DliApiError) -> DliApiError:
    """A fresh exception equal to ``error`` (re-raising one instance grows its traceback)."""
    return DliApiError(
        error.operation,
        error.code,
        error.error_msg,
        status=error.status,
        error_code=error.error_code,
        request_id=error.request_id,
    )


def credentials_for(
    target: TargetConfig,
    session: aiohttp.ClientSession,
    observe: RequestObserver | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Credentials:
    """The credentials a target's ``auth`` section describes.

    ``session`` and ``observe`` serve credentials that call an API themselves (IAM tokens).
    """
    auth = target.auth
    if isinstance(auth, AkSkAuth):
        return AkSkCredentials(auth.access_key, auth.secret_key, auth.security_token)
    if isinstance(auth, PasswordAuth):
        return IamTokenCredentials(
            session,
            iam_endpoint=auth.iam_endpoint,
            username=auth.username,
            password=auth.password,
            domain_name=auth.domain_name,
            project_id=target.project_id,
            timeout=target.timeout,
            observe=observe,
            clock=clock,
            ssl_option=ssl_setting(target.tls),
        )
    raise TypeError(f"target {target.name}: unknown auth {type(auth).__name__}")
