"""What every credential provider shares: the `Credentials` protocol and renewal of issued ones.

`Renewing` is the base of providers whose credential is issued for a while (an IAM token,
temporary AK/SK): fetched on first use by one request that concurrent callers share (with its
failure), renewed before it expires, fetched again once after a 401, and backed off after a
failure so that a broken credential source is not asked at the poll rate. Each target has its
own instance, so one target's failing source never delays another's.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Final, Generic, Protocol, TypeVar

from exporter.errors import DliApiError

log = logging.getLogger(__name__)

#: Renew when less than this share of the credential's lifetime remains, or ``REFRESH_MARGIN_MAX``
#: seconds, whichever is smaller.
REFRESH_FRACTION: Final = 0.1
REFRESH_MARGIN_MAX: Final = 3600.0
#: ``refresh()`` asks the source at most once per this many seconds; also the pause after a
#: failed early renewal while the current credential is still valid.
MIN_REFETCH_INTERVAL: Final = 60.0
#: After the source rejects the request (400/401/403): no new attempt for this long, doubled
#: after each further rejection up to ``REJECTED_BACKOFF_MAX``. IAM locks users out after a few
#: failed logins, so a wrong password must not be retried at the poll rate.
REJECTED_BACKOFF: Final = 300.0
REJECTED_BACKOFF_MAX: Final = 3600.0
_REJECTED_STATUSES: Final = frozenset({400, 401, 403})

#: Called once per HTTP attempt with (operation, code, seconds), as for DLI calls.
RequestObserver = Callable[[str, str, float], None]

_T = TypeVar("_T")


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


@dataclass(frozen=True, slots=True)
class Issued(Generic[_T]):
    """An issued credential; times are on the provider's clock (unix seconds)."""

    value: _T
    fetched_at: float
    refresh_at: float
    expires_at: float
    #: Obtained by `Renewing.refresh` because the API answered 401.
    after_401: bool

    def usable(self, now: float) -> bool:
        return now < self.expires_at


def issued_for(
    value: _T,
    *,
    fetched_at: float,
    lifetime: float,
    after_401: bool,
    margin_max: float = REFRESH_MARGIN_MAX,
    min_age: float = 0.0,
) -> Issued[_T]:
    """``value`` valid ``lifetime`` seconds from ``fetched_at``, renewed before its end.

    The renewal is due when less than 10% of the lifetime (at most ``margin_max``) remains, and
    not before ``min_age`` seconds (bounded by the expiry), so a credential handed out shortly
    before its end is not fetched again on every request.
    """
    margin = min(REFRESH_FRACTION * lifetime, margin_max)
    expires_at = fetched_at + lifetime
    earliest = min(fetched_at + min_age, expires_at)
    return Issued(value, fetched_at, max(expires_at - margin, earliest), expires_at, after_401)


def parse_timestamp(value: object) -> float | None:
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


def copy_error(error: DliApiError) -> DliApiError:
    """A fresh exception equal to ``error`` (re-raising one instance grows its traceback)."""
    return DliApiError(
        error.operation,
        error.code,
        error.error_msg,
        status=error.status,
        error_code=error.error_code,
        request_id=error.request_id,
    )


class Renewing(ABC, Generic[_T]):
    """Single-flight fetching, early renewal and back-off of an issued credential.

    Subclasses implement `_fetch` (one attempt, raising `DliApiError` named after the step
    that failed) and `_fields` (what their log lines say; never a secret). ``kind`` names the
    credential in log messages.
    """

    kind: ClassVar[str] = "credential"

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: Issued[_T] | None = None
        #: Completed attempts; tells a waiter that the attempt it waited for has finished.
        self._attempts = 0
        self._failure: DliApiError | None = None
        self._rejections = 0
        #: No new attempt before this time (clock) after a failure.
        self._retry_at = 0.0

    @abstractmethod
    async def _fetch(self, *, after_401: bool) -> Issued[_T]:
        """One attempt at a new credential; `DliApiError` when it fails."""

    @abstractmethod
    def _fields(self, exc: DliApiError | None = None, **more: object) -> dict[str, object]:
        """The ``extra`` of a log line about this credential."""

    async def refresh(self) -> bool:
        """After a 401: drop the credential and fetch a new one; True when one was obtained.

        The source is asked at most once per ``MIN_REFETCH_INTERVAL``: a 401 for a credential
        that young is not about the credential (so asking again would only hammer the source).
        Within that window this returns True, without asking, when the young credential was
        itself obtained after a 401 (requests that were in flight with the revoked one may retry
        with the new one), and False otherwise. Also False while the source is backed off after
        a rejection, and when the new fetch fails (logged; the next ``authorize`` tries again).
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
                log.warning(f"{self.kind} renewal after a 401 failed", extra=self._fields(exc))
                return False
            return True

    async def _current(self) -> _T:
        """The credential to use now, fetching or renewing it first when due."""
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
                # The attempt we waited for failed, or the source is resting after a failure.
                if token is not None and token.usable(now):
                    return token.value
                raise copy_error(failure)
            try:
                return (await self._renew(after_401=False)).value
            except DliApiError as exc:
                if token is None or not token.usable(now):
                    raise
                log.warning(
                    f"{self.kind} renewal failed; using the current one until it expires",
                    extra=self._fields(exc),
                )
                return token.value

    async def _renew(self, *, after_401: bool) -> Issued[_T]:
        """One attempt (lock held); its outcome is remembered for waiters and back-off."""
        try:
            token = await self._fetch(after_401=after_401)
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
            f"{self.kind} obtained",
            extra=self._fields(expires_in=round(token.expires_at - token.fetched_at)),
        )
        return token
