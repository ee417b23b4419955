"""`DliClient`: the two DLI calls the exporter makes, signed, timed and turned into model types."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeVar

import aiohttp

from exporter.auth import Credentials, RequestObserver
from exporter.config import Filters
from exporter.errors import DliApiError, error_from_body
from exporter.http import SslSetting, send
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
from exporter.values import ValueIssues, loads_json

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The list API's largest page.
PAGE_SIZE: Final = 100
#: Pages are fetched this far apart, so neighbours overlap by one job (see `_Listing`).
PAGE_STEP: Final = PAGE_SIZE - 1
#: Re-fetches one listing may make to close gaps before it gives up (see `DliClient._repair`).
MAX_REPAIRS: Final = 200
LIST_JOBS: Final = "list_jobs"
EXECUTE_GRAPH: Final = "execute_graph"
#: Bodies larger than this are refused rather than buffered (a 100-job page is ~100 KB and an
#: execution plan a few KB); label values are cut short too, so a page cannot balloon later.
MAX_BODY_BYTES: Final = MappingProxyType(
    {LIST_JOBS: 8 * 1024 * 1024, EXECUTE_GRAPH: 4 * 1024 * 1024}
)
#: Guard against a server whose paging never ends when it reports no total_count.
MAX_PAGES: Final = 10_000

#: A retry is not started with less time than this (or the timeout) left before the deadline.
MIN_USEFUL_ATTEMPT: Final = 1.0

#: Parses a decoded body, noting dropped or repaired values in the `ValueIssues`.
Parser = Callable[[object, ValueIssues], _T]
#: Told about the values a response's parse dropped or repaired: (operation, issues).
ValuesObserver = Callable[[str, ValueIssues], None]


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
        on_values: ValuesObserver | None = None,
        ssl_option: SslSetting = True,
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
        self._on_values = on_values
        self._ssl = ssl_option
        #: total_count disagreed with the pages last time (logged once, until it agrees).
        self._total_disagreed = False
        #: (operation, field, problem) already logged; a fixed vocabulary, so bounded.
        self._values_logged: set[tuple[str, str, str]] = set()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    async def list_jobs(self, *, deadline: float | None = None) -> list[FlinkJob]:
        """Every job of the project, all pages, filtered as configured; de-duplicated by id.

        Pages are listed oldest first and overlap by one job (offsets 0, 99, 198, ...), so a
        shift between two fetches (a job deleted meanwhile) shows as two pages sharing no job;
        such a gap is fetched again until every pair of neighbours shares one. A job that
        exists for the whole listing is therefore never missed (see `_Listing`). Paging ends
        at the first page that is not full; ``total_count`` only decides how many pages are
        fetched concurrently up front. ``deadline`` (``time.monotonic()`` seconds) bounds
        every request and retry.
        """
        listing = _Listing(await self.list_page(0, deadline=deadline))
        if not listing.complete:
            await self._fetch_run(listing, listing.pages[0], deadline, hint=listing.total_hint)
            await self._repair(listing, deadline)
        self._check_total(listing)
        jobs: dict[int, FlinkJob] = {}
        for page in listing.pages:
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
            "order": "asc",  # oldest first: new jobs join at the end and shift no page
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

    async def _fetch_run(
        self,
        listing: _Listing,
        after: _Page,
        deadline: float | None,
        *,
        hint: int | None = None,
    ) -> None:
        """Fetch the pages after ``after`` until one is not full, ``page_concurrency`` at a time.

        With ``hint`` (a plausible total), pages up to the one expected to be last are fetched
        concurrently; past it (the total was too small, or there is none) at most
        ``page_concurrency`` pages are in flight, so a wrong total wastes at most that many.
        """
        last_expected = _last_offset(hint) if hint is not None else None
        if last_expected is not None and after.offset >= last_expected:
            last_expected = None  # the total was too small: page on until a page is not full
        next_offset = after.offset + PAGE_STEP
        end: int | None = None  # offset of the first page found not full
        found: dict[int, _Page] = {}
        tasks: dict[asyncio.Task[JobListPage], int] = {}

        def wanted(offset: int) -> bool:
            if end is not None and offset >= end:
                return False
            if last_expected is not None and offset > last_expected:
                return False  # the total is right until the last expected page is full
            return offset < PAGE_STEP * MAX_PAGES

        try:
            while True:
                while len(tasks) < self._page_concurrency and wanted(next_offset):
                    task = asyncio.create_task(self.list_page(next_offset, deadline=deadline))
                    tasks[task] = next_offset
                    next_offset += PAGE_STEP
                if not tasks:
                    break
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    offset = tasks.pop(task)
                    page = _Page(offset, task.result())
                    found[offset] = page
                    if not page.full and (end is None or offset < end):
                        end = offset
                    elif page.full and last_expected is not None and offset >= last_expected:
                        last_expected = None  # the total was too small: page on until short
                for task, offset in list(tasks.items()):
                    if end is not None and offset > end:
                        task.cancel()
                        del tasks[task]
        finally:  # one page failed (or the poll was cancelled): stop fetching the others
            for task in tasks:
                task.cancel()
        listing.extend(
            page for offset, page in sorted(found.items()) if end is None or offset <= end
        )

    async def _repair(self, listing: _Listing, deadline: float | None) -> None:
        """Re-fetch where two neighbouring pages share no job, until every pair does.

        A pair (A, B) with no job in common means the list shifted between their fetches (jobs
        deleted before B's offset): jobs may have slid from B's window into the gap. A fresh
        page at A's offset (or, for two pages at one offset, the window before it) bridges the
        gap under any churn of fewer than 99 jobs between two fetches; more churn than that
        for `MAX_REPAIRS` rounds fails the listing rather than publishing a partial one.
        """
        repairs = 0
        while (gap := listing.first_gap()) is not None:
            if repairs >= MAX_REPAIRS:
                raise DliApiError(
                    LIST_JOBS,
                    "inconsistent",
                    f"the job list kept changing while it was paged through ({repairs} pages "
                    "fetched again); the previous listing is kept",
                )
            repairs += 1
            before, after = listing.pages[gap], listing.pages[gap + 1]
            offset = before.offset if before.offset < after.offset else before.offset - PAGE_STEP
            bridge = _Page(max(0, offset), await self.list_page(max(0, offset), deadline=deadline))
            listing.insert(gap + 1, bridge)
        listing.repairs = repairs

    def _check_total(self, listing: _Listing) -> None:
        """Log once when ``total_count`` disagrees with where the pages ended."""
        total, counted = listing.pages[0].page.total_count, listing.end_count
        if listing.repairs or total is None or total == counted:
            self._total_disagreed = False
            return
        if not self._total_disagreed:
            log.warning(
                "the job list's total_count disagrees with its pages; paging by the pages",
                extra={"fields": {"total_count": total, "listed": counted}},
            )
        self._total_disagreed = True

    async def _call(
        self,
        operation: str,
        path: str,
        query: Mapping[str, QueryValue],
        parser: Parser[_T],
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
        parser: Parser[_T],
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
            response = await send(
                self._session,
                operation,
                "GET",
                url,
                headers=headers,
                budget=budget,
                max_body=MAX_BODY_BYTES[operation],
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


def _last_offset(total: int) -> int:
    """The offset of the page expected to be the last (the first one not full) for ``total``."""
    if total < PAGE_SIZE:
        return 0
    return ((total - PAGE_SIZE) // PAGE_STEP + 1) * PAGE_STEP


@dataclass(frozen=True, slots=True)
class _Page:
    """One fetched page and where it was fetched from."""

    offset: int
    page: JobListPage

    @property
    def jobs(self) -> tuple[FlinkJob, ...]:
        return self.page.jobs

    @property
    def size(self) -> int:
        """Entries on the page, with those dropped for having no usable job id."""
        return len(self.page.jobs) + self.page.skipped

    @property
    def full(self) -> bool:
        """A full page means there may be more after it."""
        return self.size >= PAGE_SIZE

    def overlaps(self, other: _Page) -> bool:
        """True when the two pages share a job (or cannot be compared: id-less entries)."""
        if self.page.skipped or other.page.skipped:
            return True
        ids = {job.job_id for job in self.page.jobs}
        return any(job.job_id in ids for job in other.page.jobs)


class _Listing:
    """The pages of one listing, in list order; complete once the last one is not full.

    Every page is a contiguous window of the (oldest-first) list as it was when fetched. Two
    neighbouring windows that share a job cover, between them, every job that existed at both
    fetches from the first one's start to the second one's end; so a chain of pairwise
    overlapping pages from offset 0 to a page that is not full misses no job that existed for
    the whole listing, however the list changed meanwhile.
    """

    def __init__(self, first: JobListPage) -> None:
        self.pages: list[_Page] = [_Page(0, first)]
        self.repairs = 0

    @property
    def total_hint(self) -> int | None:
        """The first page's ``total_count`` when it is usable as a plan for the paging."""
        total = self.pages[0].page.total_count
        return total if total is not None and total >= 0 else None

    @property
    def complete(self) -> bool:
        return not self.pages[-1].full

    @property
    def end_count(self) -> int:
        """How many jobs the list held when its last page was fetched."""
        return self.pages[-1].offset + self.pages[-1].size

    def extend(self, pages: Iterable[_Page]) -> None:
        for page in pages:
            self.insert(len(self.pages), page)

    def insert(self, index: int, page: _Page) -> None:
        """Put ``page`` at ``index``; a page that is not full ends the list there."""
        self.pages.insert(index, page)
        if not page.full:
            del self.pages[index + 1 :]

    def first_gap(self) -> int | None:
        """The index of the first page that shares no job with the next one, if any."""
        for index in range(len(self.pages) - 1):
            if not self.pages[index].overlaps(self.pages[index + 1]):
                return index
        return None
