"""`DliClient`: the two DLI calls the exporter makes, signed, timed and turned into model types."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

import aiohttp
from yarl import URL

from exporter.auth import Credentials, RequestObserver
from exporter.config import Filters
from exporter.errors import DliApiError, describe_client_error, error_from_body
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

_T = TypeVar("_T")

#: The list API's largest page.
PAGE_SIZE: Final = 100
#: Bodies larger than this are refused rather than buffered (a 100-job page is ~100 KB).
MAX_BODY_BYTES: Final = 32 * 1024 * 1024
#: Guard against a server whose paging never ends when it reports no total_count.
MAX_PAGES: Final = 10_000

LIST_JOBS: Final = "list_jobs"
EXECUTE_GRAPH: Final = "execute_graph"


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    request_id: str | None


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
        observe: RequestObserver | None = None,
    ) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._project_id = project_id
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._filters = filters or Filters()
        self._page_concurrency = max(1, page_concurrency)
        self._limiter = limiter
        self._observe = observe

    async def list_jobs(self) -> list[FlinkJob]:
        """Every job of the project, all pages, filtered as configured; de-duplicated by id.

        The first page tells the total; the remaining pages are then fetched concurrently.
        Paging stops at ``total_count``, on an empty page, or after ``MAX_PAGES``.
        """
        first = await self.list_page(0)
        pages = [first]
        if first.total_count is None:
            pages.extend(await self._pages_until_short(first))
        else:
            offsets = range(PAGE_SIZE, min(first.total_count, PAGE_SIZE * MAX_PAGES), PAGE_SIZE)
            if first.jobs and offsets:
                pages.extend(await self._pages_concurrently(offsets))
        jobs: dict[int, FlinkJob] = {}
        for page in pages:
            for job in page.jobs:
                jobs.setdefault(job.job_id, job)
        return [job for job in jobs.values() if self._wanted(job)]

    async def list_page(self, offset: int) -> JobListPage:
        """One page of the job list starting at ``offset``."""
        path = f"/v1.0/{self._project_id}/streaming/jobs"
        return await self._call(LIST_JOBS, path, self._list_query(offset), parse_job_list_page)

    async def execute_graph(self, job_id: int) -> ExecuteGraph:
        """The execution plan of a running job (Flink state, duration, stoppability)."""
        path = f"/v1.0/{self._project_id}/streaming/jobs/{job_id}/execute-graph"
        return await self._call(EXECUTE_GRAPH, path, {}, parse_execute_graph)

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

    async def _pages_concurrently(self, offsets: range) -> list[JobListPage]:
        limit = asyncio.Semaphore(self._page_concurrency)

        async def fetch(offset: int) -> JobListPage:
            async with limit:
                return await self.list_page(offset)

        return list(await asyncio.gather(*(fetch(offset) for offset in offsets)))

    async def _pages_until_short(self, first: JobListPage) -> list[JobListPage]:
        pages: list[JobListPage] = []
        page, offset = first, 0
        while len(page.jobs) + page.skipped >= PAGE_SIZE and len(pages) < MAX_PAGES:
            offset += PAGE_SIZE
            page = await self.list_page(offset)
            pages.append(page)
        return pages

    async def _call(
        self,
        operation: str,
        path: str,
        query: Mapping[str, QueryValue],
        parser: Callable[[object], _T],
    ) -> _T:
        """One signed GET, observed once with its outcome: the status, "timeout" or "error"."""
        if self._limiter is not None:
            await self._limiter.acquire()
        started = time.monotonic()
        code = "error"
        try:
            response = await self._get(operation, path, query)
            code = str(response.status)
            if response.status >= 400:
                raise error_from_body(
                    operation, response.status, response.body, response.request_id
                )
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
        finally:
            if self._observe is not None:
                self._observe(operation, code, time.monotonic() - started)

    async def _get(self, operation: str, path: str, query: Mapping[str, QueryValue]) -> _Response:
        query_string = canonical_query_string(query)
        url = f"{self._endpoint}{path}" + (f"?{query_string}" if query_string else "")
        headers = await self._credentials.authorize(
            "GET", url, {"Content-Type": "application/json"}, b""
        )
        try:
            async with self._session.get(
                URL(url, encoded=True), headers=headers, timeout=self._timeout
            ) as resp:
                body = await _read_body(resp)
                return _Response(resp.status, body, resp.headers.get("X-Request-Id"))
        except TimeoutError as exc:
            raise DliApiError(operation, "timeout", "request timed out") from exc
        except aiohttp.ClientError as exc:
            raise DliApiError(operation, "error", describe_client_error(exc)) from exc


async def _read_body(resp: aiohttp.ClientResponse) -> bytes:
    if resp.content_length is not None and resp.content_length > MAX_BODY_BYTES:
        raise aiohttp.ClientPayloadError(f"body of {resp.content_length} bytes is too large")
    body = await resp.content.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise aiohttp.ClientPayloadError(f"body larger than {MAX_BODY_BYTES} bytes")
    return body
