"""`DliClient`: the two DLI calls the exporter makes, signed, timed and turned into model types."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, TypeVar

import aiohttp
from yarl import URL

from exporter.auth import Credentials, RequestObserver
from exporter.config import Filters
from exporter.errors import DliApiError, describe_client_error, error_from_body
from exporter.http import read_body
from exporter.model import (
    ExecuteGraph,
    FlinkJob,
    JobListPage,
    ResponseParseError,
    parse_execute_graph,
    parse_job_list_page,
)
from exporter.ratelimit import RateLimiter
from exporter.signing import QueryValue, canonical_query_string

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The list API's largest page.
PAGE_SIZE: Final = 100
#: Bodies larger than this are refused rather than buffered (a 100-job page is ~100 KB).
MAX_BODY_BYTES: Final = 32 * 1024 * 1024
#: Guard against a server whose paging never ends when it reports no total_count.
MAX_PAGES: Final = 10_000

#: A retry is not started with less time than this (or the timeout) left before the deadline.
MIN_USEFUL_ATTEMPT: Final = 1.0

LIST_JOBS: Final = "list_jobs"
EXECUTE_GRAPH: Final = "execute_graph"


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


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    request_id: str | None
    retry_after: float | None


class DliClient:
    """Talks to one DLI project. One instance per target; the HTTP session is shared."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        project_id: str,
        credentials: Credentials,
        timeout: float,
        filters: Filters | None = None,
        page_concurrency: int = 4,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        observe: RequestObserver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._project_id = project_id
        self._credentials = credentials
        self._timeout = timeout
        self._filters = filters or Filters()
        self._page_concurrency = max(1, page_concurrency)
        self._limiter = limiter
        self._retry = retry or RetryPolicy()
        self._observe = observe
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    async def list_jobs(self, *, deadline: float | None = None) -> list[FlinkJob]:
        """Every job of the project, all pages, filtered as configured; de-duplicated by id.

        The first page tells the total; the remaining pages are then fetched concurrently.
        Paging stops at ``total_count``, on an empty page, or after ``MAX_PAGES``. ``deadline``
        (``time.monotonic()`` seconds) bounds every request and retry.
        """
        first = await self.list_page(0, deadline=deadline)
        pages = [first]
        if first.total_count is None:
            pages.extend(await self._pages_until_short(first, deadline))
        else:
            offsets = range(PAGE_SIZE, min(first.total_count, PAGE_SIZE * MAX_PAGES), PAGE_SIZE)
            if first.jobs and offsets:
                pages.extend(await self._pages_concurrently(offsets, deadline))
        jobs: dict[int, FlinkJob] = {}
        for page in pages:
            for job in page.jobs:
                jobs.setdefault(job.job_id, job)
        return [job for job in jobs.values() if self._wanted(job)]

    async def list_page(self, offset: int, *, deadline: float | None = None) -> JobListPage:
        """One page of the job list starting at ``offset``."""
        path = f"/v1.0/{self._project_id}/streaming/jobs"
        query = self._list_query(offset)
        return await self._call(LIST_JOBS, path, query, parse_job_list_page, deadline)

    async def execute_graph(self, job_id: int, *, deadline: float | None = None) -> ExecuteGraph:
        """The execution plan of a running job (Flink state, duration, stoppability)."""
        path = f"/v1.0/{self._project_id}/streaming/jobs/{job_id}/execute-graph"
        return await self._call(EXECUTE_GRAPH, path, {}, parse_execute_graph, deadline)

    def _list_query(self, offset: int) -> dict[str, QueryValue]:
        query: dict[str, QueryValue] = {
            "limit": PAGE_SIZE,
            "offset": offset,
            "show_detail": True,
        }
        # The API filters by one job type and one queue; several are filtered here instead.
        if len(self._filters.job_types) == 1:
            query["job_type"] = self._filters.job_types[0]
        if len(self._filters.queue_names) == 1:
            query["queue_name"] = self._filters.queue_names[0]
        if self._filters.tags:
            query["tags"] = list(self._filters.tags)
        return query

    def _wanted(self, job: FlinkJob) -> bool:
        types, queues = self._filters.job_types, self._filters.queue_names
        return (not types or job.job_type in types) and (not queues or job.queue_name in queues)

    async def _pages_concurrently(
        self, offsets: range, deadline: float | None
    ) -> list[JobListPage]:
        limit = asyncio.Semaphore(self._page_concurrency)

        async def fetch(offset: int) -> JobListPage:
            async with limit:
                return await self.list_page(offset, deadline=deadline)

        tasks = [asyncio.create_task(fetch(offset)) for offset in offsets]
        try:
            return list(await asyncio.gather(*tasks))
        finally:  # one page failed: the listing has failed, stop fetching the others
            for task in tasks:
                task.cancel()

    async def _pages_until_short(
        self, first: JobListPage, deadline: float | None
    ) -> list[JobListPage]:
        pages: list[JobListPage] = []
        page, offset = first, 0
        while len(page.jobs) + page.skipped >= PAGE_SIZE and len(pages) < MAX_PAGES:
            offset += PAGE_SIZE
            page = await self.list_page(offset, deadline=deadline)
            pages.append(page)
        return pages

    async def _call(
        self,
        operation: str,
        path: str,
        query: Mapping[str, QueryValue],
        parser: Callable[[object], _T],
        deadline: float | None,
    ) -> _T:
        """A call with its retries: rate-limited, each attempt bounded by timeout and deadline."""
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            if self._limiter is not None:
                await self._limiter.acquire()
            budget = self._attempt_budget(operation, deadline)
            try:
                return await self._attempt(operation, path, query, parser, budget)
            except DliApiError as exc:
                if exc.operation != operation:
                    raise  # the credentials' own call (IAM) failed; it has its own back-off
                if exc.status == 401 and not refreshed and await self._credentials.refresh():
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
        operation: str,
        path: str,
        query: Mapping[str, QueryValue],
        parser: Callable[[object], _T],
        budget: float,
    ) -> _T:
        """One signed GET, observed once with its outcome: the status, "timeout" or "error".

        Authorization comes first and is not part of the observed DLI request: credentials that
        call IAM observe (and back off) on their own, and their errors pass through unretried.
        """
        query_string = canonical_query_string(query)
        url = f"{self._endpoint}{path}" + (f"?{query_string}" if query_string else "")
        headers = await self._credentials.authorize(
            "GET", url, {"Content-Type": "application/json"}, b""
        )
        started = time.monotonic()
        code = "error"
        try:
            response = await self._get(operation, url, headers, budget)
            code = str(response.status)
            if response.status >= 400:
                error = error_from_body(
                    operation, response.status, response.body, response.request_id
                )
                error.retry_after = response.retry_after
                raise error
            try:
                return parser(json.loads(response.body))
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, ResponseParseError
                detail = str(exc) if isinstance(exc, ResponseParseError) else "body is not JSON"
                raise DliApiError(
                    operation,
                    "error",
                    f"unusable response: {detail}",
                    status=response.status,
                    request_id=response.request_id,
                ) from exc
        except DliApiError as exc:
            code = exc.code
            raise
        except asyncio.CancelledError:
            code = "timeout"  # abandoned at the poll's deadline (or on shutdown)
            raise
        finally:
            if self._observe is not None:
                self._observe(operation, code, time.monotonic() - started)

    async def _get(
        self, operation: str, url: str, headers: Mapping[str, str], budget: float
    ) -> _Response:
        try:
            async with self._session.get(
                URL(url, encoded=True),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=budget),
            ) as resp:
                body = await read_body(resp, MAX_BODY_BYTES)
                return _Response(
                    resp.status,
                    body,
                    resp.headers.get("X-Request-Id"),
                    parse_retry_after(resp.headers.get("Retry-After")),
                )
        except TimeoutError as exc:
            raise DliApiError(operation, "timeout", f"no response within {budget:g}s") from exc
        except aiohttp.ClientError as exc:
            raise DliApiError(operation, "error", describe_client_error(exc)) from exc


def _is_retryable(exc: DliApiError) -> bool:
    """Throttling, server errors, timeouts and transport failures may pass on a retry."""
    if exc.status is None:
        return exc.code in ("timeout", "error")
    return exc.status == 429 or (exc.status >= 500 and exc.code != "error")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
