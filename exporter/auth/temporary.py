"""Temporary AK/SK from a credential source, renewed before they expire (`TemporaryAkSk`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from exporter.auth.base import MIN_REFETCH_INTERVAL, Issued, Renewing, issued_for, parse_timestamp
from exporter.config import MAX_SECRET_FILE_SIZE
from exporter.errors import DliApiError
from exporter.files import FileReadError, read_bounded
from exporter.secret import Secret
from exporter.signing import sign_request
from exporter.values import loads_json

#: The SDK renews temporary AK/SK 40 minutes before they expire
#: (``credentials.py``, ``_DEFAULT_EXPIRATION_THRESHOLD_SECONDS``); so do we, or at 10% of a
#: shorter lifetime.
TEMPORARY_MARGIN_MAX: Final = 40 * 60.0
#: The code of a failure before any request: a token file could not be read.
CREDENTIALS_CODE: Final = "credentials"


@dataclass(frozen=True, slots=True)
class TemporaryKey:
    """Temporary AK/SK and the security token that must accompany them."""

    access_key: str
    secret_key: Secret
    security_token: Secret


class TemporaryAkSk(Renewing[TemporaryKey]):
    """Signs with temporary AK/SK a subclass fetches (`_fetch`), renewed before expiry.

    Requests carry ``X-Security-Token``; the signature clock is ``clock`` (unix seconds), the
    one expiry is judged on.
    """

    kind = "temporary credentials"

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """Sign with the current temporary key, fetching or renewing it first when due."""
        key = await self._current()
        return sign_request(
            method,
            url,
            headers,
            body,
            access_key=key.access_key,
            secret_key=key.secret_key.reveal(),
            now=datetime.fromtimestamp(self._clock(), tz=UTC),
            security_token=key.security_token.reveal(),
        )


def parse_temporary_key(
    operation: str,
    status: int,
    body: bytes,
    request_id: str | None,
    *,
    fetched_at: float,
    after_401: bool,
) -> Issued[TemporaryKey]:
    """The key of a credential answer, read as the SDK's ``StsAccessor._process_credential``.

    Accepts ``{"credential": {...}}``, ``{"credentials": {...}}`` or the bare object, with keys
    ``access``/``accessKeyId``/``access_key_id``, ``secret``/``secretAccessKey``/
    ``secret_access_key``, ``securitytoken``/``securityToken``/``security_token`` and
    ``expires_at``/``expiration``. `DliApiError` (code ``error``) when it is unusable; the
    message never contains a value.
    """

    def unusable(detail: str) -> DliApiError:
        message = f"unusable response: {detail}"
        return DliApiError(operation, "error", message, status=status, request_id=request_id)

    try:
        payload = loads_json(body)
    except ValueError:
        raise unusable("body is not JSON") from None
    if isinstance(payload, dict):
        payload = payload.get("credential", payload.get("credentials", payload))
    if not isinstance(payload, dict):
        raise unusable("no credential object")
    access = _first(payload, "access", "accessKeyId", "access_key_id")
    secret = _first(payload, "secret", "secretAccessKey", "secret_access_key")
    token = _first(payload, "securitytoken", "securityToken", "security_token")
    if access is None or secret is None or token is None:
        raise unusable("access, secret or securitytoken is missing")
    expires = parse_timestamp(_first(payload, "expires_at", "expiration"))
    if expires is None:
        raise unusable("expires_at is missing or not an ISO 8601 time")
    lifetime = expires - fetched_at
    if lifetime <= 0:
        raise unusable("the credentials are already expired")
    return issued_for(
        TemporaryKey(access, Secret(secret), Secret(token)),
        fetched_at=fetched_at,
        lifetime=lifetime,
        after_401=after_401,
        margin_max=TEMPORARY_MARGIN_MAX,
        min_age=MIN_REFETCH_INTERVAL,
    )


def _first(payload: Mapping[str, object], *names: str) -> str | None:
    for name in names:
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value
    return None


async def read_token_file(operation: str, path: str) -> Secret:
    """A token file's content (bounded, off the event loop; re-read as it is rotated).

    `DliApiError` with code ``credentials`` when it is unreadable, not UTF-8 or empty.
    """
    try:
        content = await asyncio.to_thread(read_bounded, path, MAX_SECRET_FILE_SIZE)
        token = content.decode("utf-8").strip()
    except FileReadError as exc:
        message = f"cannot read {path!r}: {exc.reason}"
        raise DliApiError(operation, CREDENTIALS_CODE, message) from None
    except UnicodeDecodeError:
        raise DliApiError(operation, CREDENTIALS_CODE, f"{path!r} is not valid UTF-8") from None
    if not token:
        raise DliApiError(operation, CREDENTIALS_CODE, f"{path!r} is empty")
    return Secret(token)
