"""`Transport`: one target's requests to a Huawei Cloud API, signed, rate-limited, retried, timed.

Every resource module (jobs, and the sources after it) calls the API through one `Transport` per
target, so each inherits the same guarantees: authorization from the target's credentials (one
refresh after a 401 whose error code says the token or signature is not good), the target's
rate limit, bounded retries with backoff and ``Retry-After``,
a per-attempt timeout bounded by the poll's deadline, the shared request path of
`exporter.http.send` (no redirects, bounded bodies, per-target TLS), one observation per attempt
for the request metrics, and untrusted values read through `exporter.values`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

import aiohttp

from exporter.auth import Credentials, RequestObserver
from exporter.errors import DliApiError, error_from_body
from exporter.http import SslSetting, send
from exporter.ratelimit import RateLimiter
from exporter.signing import QueryValue, canonical_query_string
from exporter.values import ValueIssues, loads_json

__all__ = [
    "MIN_USEFUL_ATTEMPT",
    "RENEWABLE_401_CODES",
    "Parser",
    "ResponseParseError",
    "RetryObserver",
    "RetryPolicy",
    "Transport",
    "ValuesObserver",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: A retry is not started with less time than this (or the timeout) left before the deadline.
MIN_USEFUL_ATTEMPT: Final = 1.0
#: 401 error codes that mean "this token or signature is not (or no longer) good": renewing
#: the credentials may help. ``APIG.0301`` is the API gateway's "Incorrect IAM authentication
#: information" (expired or undecryptable token, AK/SK signature that does not verify);
#: ``APIG.1002`` "Incorrect token or token resolution failed" (API Gateway error code tables).
RENEWABLE_401_CODES: Final = frozenset({"APIG.0301", "APIG.1002"})

#: Parses a decoded body, noting dropped or repaired values in the `ValueIssues`.
Parser = Callable[[object, ValueIssues], _T]
#: Told about the values a response's parse dropped or repaired: (operation, issues).
ValuesObserver = Callable[[str, ValueIssues], None]
#: Told, right after ``observe``, that the attempt observed was not its call's first:
#: (operation, code).
RetryObserver = Callable[[str, str], None]


class ResponseParseError(ValueError):
    """A response body does not have the documented shape."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failed calls are retried: exponential backoff with full jitter, bounded attempts.

    429, 5xx, timeouts and transport failures are retried; other 4xx and unusable bodies are
    not. A ``Retry-After`` header sets the least wait. No retry starts past the call's deadline.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number ``attempt`` (1 = the first retry)."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class Transport:
    """Makes one target's API calls. One instance per target; the HTTP session is shared."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        credentials: Credentials,
        timeout: float,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        observe: RequestObserver | None = None,
        on_values: ValuesObserver | None = None,
        ssl_option: SslSetting = True,
        rng: random.Random | None = None,
        on_retry: RetryObserver | None = None,
    ) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._credentials = credentials
        self._timeout = timeout
        self._limiter = limiter
        self._retry = retry or RetryPolicy()
        self._observe = observe
        self._on_values = on_values
        self._on_retry = on_retry
        self._ssl = ssl_option
        #: (operation, field, problem) already logged; a fixed vocabulary, so bounded.
        self._values_logged: set[tuple[str, str, str]] = set()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    async def get(
        self,
        operation: str,
        path: str,
        query: Mapping[str, QueryValue],
        parser: Parser[_T],
        *,
        max_body: int,
        deadline: float | None = None,
    ) -> _T:
        """``GET path?query`` with its retries, parsed by ``parser``; raises `DliApiError`.

        Each attempt is rate-limited and bounded by the timeout and by ``deadline``
        (``time.monotonic()`` seconds); a body over ``max_body`` bytes is refused.
        """
        return await self.request(
            "GET", operation, path, query, parser, max_body=max_body, deadline=deadline
        )

    async def post(
        self,
        operation: str,
        path: str,
        payload: object,
        parser: Parser[_T],
        *,
        max_body: int,
        deadline: float | None = None,
    ) -> _T:
        """``POST path`` with ``payload`` as its JSON body (signed with it), as `get` does."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return await self.request(
            "POST", operation, path, {}, parser, body=body, max_body=max_body, deadline=deadline
        )

    async def request(
        self,
        method: str,
        operation: str,
        path: str,
        query: Mapping[str, QueryValue],
        parser: Parser[_T],
        *,
        max_body: int,
        body: bytes = b"",
        deadline: float | None = None,
    ) -> _T:
        """One call (``method``, JSON ``body``) with its retries, as `get` describes."""
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            if self._limiter is not None:
                await self._limiter.acquire()
            budget = self._attempt_budget(operation, deadline)
            try:
                return await self._attempt(
                    method,
                    operation,
                    path,
                    query,
                    parser,
                    body=body,
                    budget=budget,
                    max_body=max_body,
                    attempt=attempt,
                )
            except DliApiError as exc:
                if exc.operation != operation:
                    raise  # the credentials' own call (IAM) failed; it has its own back-off
                if (
                    exc.status == 401
                    and exc.error_code in RENEWABLE_401_CODES
                    and not refreshed
                    and await self._credentials.refresh()
                ):
                    refreshed = True
                    continue
                delay = self._retry_delay(exc, attempt, deadline)
                if delay is None:
                    raise
                log.debug(
                    "retrying",
                    extra={"fields": {"error": exc.describe(), "attempt": attempt, "wait": delay}},
                )
                await asyncio.sleep(delay)

    def _attempt_budget(self, operation: str, deadline: float | None) -> float:
        if deadline is None:
            return self._timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DliApiError(operation, "timeout", "poll deadline reached before the request")
        return min(self._timeout, remaining)

    def _retry_delay(self, exc: DliApiError, attempt: int, deadline: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None when the call must give up."""
        if attempt >= self._retry.max_attempts or not _is_retryable(exc):
            return None
        delay = max(exc.retry_after or 0.0, self._retry.backoff(attempt, self._rng))
        # A retry must have a useful time left after its wait, or it would only turn the real
        # error (a 503, say) into a timeout.
        useful = min(self._timeout, MIN_USEFUL_ATTEMPT)
        if deadline is not None and time.monotonic() + delay + useful >= deadline:
            return None
        return delay

    async def _attempt(
        self,
        method: str,
        operation: str,
        path: str,
        query: Mapping[str, QueryValue],
        parser: Parser[_T],
        *,
        body: bytes,
        budget: float,
        max_body: int,
        attempt: int = 1,
    ) -> _T:
        """One signed request, observed once with its outcome: the status, "timeout" or "error".

        Authorization comes first and is not part of the observed request: credentials that
        call IAM observe (and back off) on their own, and their errors pass through unretried.
        """
        query_string = canonical_query_string(query)
        url = f"{self._endpoint}{path}" + (f"?{query_string}" if query_string else "")
        headers = await self._credentials.authorize(
            method, url, {"Content-Type": "application/json"}, body
        )
        started = time.monotonic()
        code = "error"
        try:
            response = await send(
                self._session,
                operation,
                method,
                url,
                headers=headers,
                budget=budget,
                max_body=max_body,
                body=body or None,
                ssl_option=self._ssl,
            )
            code = str(response.status)
            if response.status >= 400:
                error = error_from_body(
                    operation, response.status, response.body, response.request_id
                )
                error.retry_after = response.retry_after
                raise error
            issues = ValueIssues()
            try:
                result = parser(loads_json(response.body, issues), issues)
            except ValueError as exc:  # JSONDecodeError, ResponseParseError
                detail = str(exc) if isinstance(exc, ResponseParseError) else "body is not JSON"
                raise DliApiError(
                    operation,
                    "error",
                    f"unusable response: {detail}",
                    status=response.status,
                    request_id=response.request_id,
                ) from exc
            if issues:
                self._report_values(operation, issues)
            return result
        except DliApiError as exc:
            code = exc.code
            raise
        except asyncio.CancelledError:
            code = "timeout"  # abandoned at the poll's deadline (or on shutdown)
            raise
        finally:
            if self._observe is not None:
                self._observe(operation, code, time.monotonic() - started)
            if attempt > 1 and self._on_retry is not None:
                self._on_retry(operation, code)

    def _report_values(self, operation: str, issues: ValueIssues) -> None:
        """Count what a response's parse dropped or repaired; log each kind the first time."""
        new = [key for key in issues.counts if (operation, *key) not in self._values_logged]
        if new:
            self._values_logged.update((operation, *key) for key in new)
            log.warning(
                "values in an API response were dropped or repaired (logged once per kind)",
                extra={
                    "fields": {
                        "operation": operation,
                        "values": ",".join(f"{field}:{problem}" for field, problem in new),
                    }
                },
            )
        if self._on_values is not None:
            self._on_values(operation, issues)


def _is_retryable(exc: DliApiError) -> bool:
    """Throttling, server errors, timeouts and transport failures may pass on a retry."""
    if exc.status is None:
        return exc.code in ("timeout", "error")
    return exc.status == 429 or (exc.status >= 500 and exc.code != "error")
