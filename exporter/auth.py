"""Credential providers: turn an unsigned request into one DLI will accept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from exporter.secret import Secret
from exporter.signing import sign_request


class Credentials(Protocol):
    """Adds authentication headers to a request about to be sent."""

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """Return the headers to send, authentication included."""
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
