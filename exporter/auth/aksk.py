"""Permanent or temporary AK/SK given in the configuration, signing each request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from exporter.auth.base import utc_now
from exporter.secret import Secret
from exporter.signing import sign_request


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
