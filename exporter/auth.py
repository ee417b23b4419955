"""Credential providers: turn an unsigned request into one DLI will accept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import aiohttp

from exporter.config import AkSkAuth, TargetConfig
from exporter.secret import Secret
from exporter.signing import sign_request

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


def credentials_for(
    target: TargetConfig, session: aiohttp.ClientSession, observe: RequestObserver | None = None
) -> Credentials:
    """The credentials a target's ``auth`` section describes.

    ``session`` and ``observe`` serve credentials that call an API themselves (IAM tokens).
    """
    auth = target.auth
    if isinstance(auth, AkSkAuth):
        return AkSkCredentials(auth.access_key, auth.secret_key, auth.security_token)
    raise ValueError(f"target {target.name}: auth type password is not supported yet")
