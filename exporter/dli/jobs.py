"""The job resource: list a project's Flink jobs, and read each running job's execution graph.

`JobsApi` makes the two calls over a target's `Transport`. `JobsSource` is one target's poll of
the resource: the job list (which decides ``dli_up``), then the execute-graph calls of the
running jobs, bounded by the target's concurrency and the poll's deadline. The model types are
in `exporter.dli.jobmodel`, the metric rows in `exporter.dli.jobrows`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Final

from exporter.config import Filters
from exporter.dli.api import EXECUTE_GRAPH, LIST_JOBS, execute_graph_path, list_jobs_path
from exporter.dli.jobmodel import (
    ExecuteGraph,
    FlinkJob,
    JobListPage,
    JobState,
    parse_execute_graph,
    parse_job_list_page,
)
from exporter.dli.paging import PAGE_SIZE, Page, Pager
from exporter.dli.projects import ProjectLookup
from exporter.dli.transport import Transport
from exporter.errors import DliApiError
from exporter.signing import QueryValue

__all__ = ["MAX_BODY_BYTES", "JobsApi", "JobsSource"]

log = logging.getLogger(__name__)

#: Bodies larger than this are refused rather than buffered (a 100-job page is ~100 KB and an
#: execution plan a few KB); label values are cut short too, so a page cannot balloon later.
MAX_BODY_BYTES: Final = MappingProxyType(
    {LIST_JOBS: 8 * 1024 * 1024, EXECUTE_GRAPH: 4 * 1024 * 1024}
)


class JobsApi:
    """DLI's job calls for one project: the paged, filtered job list and execute-graph.

    ``project_id`` is the id, or a `ProjectLookup` asked for it before each call (it asks IAM
    only until it has found it).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        project_id: str | ProjectLookup,
        filters: Filters | None = None,
        page_concurrency: int = 4,
    ) -> None:
        self._transport = transport
        self._project = (
            project_id
            if isinstance(project_id, ProjectLookup)
            else ProjectLookup(target="", region="", known=project_id)
        )
        self._filters = filters or Filters()
        self._pager: Pager[FlinkJob] = Pager(
            LIST_JOBS, key=lambda job: job.job_id, concurrency=page_concurrency
        )

    async def list_jobs(self, *, deadline: float | None = None) -> list[FlinkJob]:
        """Every job of the project, all pages, filtered as configured; each job id once.

        Paged as `exporter.dli.paging` describes, so a job that exists for the whole listing
        is never missed however the list changes meanwhile. ``deadline``
        (``time.monotonic()`` seconds) bounds every request and retry.
        """

        await self._project.resolve(deadline=deadline)  # once, before pages run concurrently

        async def fetch(offset: int) -> Page[FlinkJob]:
            page = await self.list_page(offset, deadline=deadline)
            ids = frozenset(job.job_id for job in page.jobs)
            return Page(offset, page.jobs, ids, page.skipped, page.total_count)

        return [job for job in await self._pager.list_all(fetch) if self._wanted(job)]

    async def list_page(self, offset: int, *, deadline: float | None = None) -> JobListPage:
        """One page of the job list starting at ``offset``."""
        return await self._transport.get(
            LIST_JOBS,
            list_jobs_path(await self._project.resolve(deadline=deadline)),
            self._list_query(offset),
            parse_job_list_page,
            max_body=MAX_BODY_BYTES[LIST_JOBS],
            deadline=deadline,
        )

    async def execute_graph(self, job_id: int, *, deadline: float | None = None) -> ExecuteGraph:
        """The execution plan of a running job (Flink state, duration, stoppability)."""
        return await self._transport.get(
            EXECUTE_GRAPH,
            execute_graph_path(await self._project.resolve(deadline=deadline), job_id),
            {},
            parse_execute_graph,
            max_body=MAX_BODY_BYTES[EXECUTE_GRAPH],
            deadline=deadline,
        )

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


class JobsSource:
    """One target's poll of its jobs: the listing, then the running jobs' execution graphs.

    A failed listing raises (the poll fails and ``dli_up`` goes to 0). A failed or late
    execute-graph call only leaves its job without Flink state; when such failures start and
    stop is logged once each, not per job.
    """

    def __init__(
        self,
        api: JobsApi,
        *,
        target: str,
        concurrency: int,
        on_internal_error: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._target = target
        self._concurrency = concurrency
        self._on_internal_error = on_internal_error
        self._monotonic = monotonic
        self._graph_failures = 0

    async def poll(self, deadline: float) -> tuple[JobState, ...]:
        """The listed jobs with the graphs fetched by ``deadline`` (``time.monotonic()``)."""
        return await self.with_graphs(await self.list(deadline), deadline)

    async def list(self, deadline: float) -> tuple[FlinkJob, ...]:
        """The job list (every page, filtered); raises `DliApiError` when it cannot be read."""
        return tuple(await self._api.list_jobs(deadline=deadline))

    async def with_graphs(
        self, jobs: tuple[FlinkJob, ...], deadline: float
    ) -> tuple[JobState, ...]:
        """``jobs`` with the execution graphs of the running ones fetched by ``deadline``."""
        limit = asyncio.Semaphore(self._concurrency)

        async def graph_of(job: FlinkJob) -> ExecuteGraph | None:
            async with limit:
                try:
                    return await self._api.execute_graph(job.job_id, deadline=deadline)
                except DliApiError as exc:
                    log.debug("execute-graph failed", extra=self._fields(error=exc.describe()))
                    return None
                except Exception:  # one job's bug must not fail the poll: count, log, go on
                    log.exception("unexpected error in execute-graph", extra=self._fields())
                    if self._on_internal_error is not None:
                        self._on_internal_error()
                    return None

        tasks = {job.job_id: asyncio.create_task(graph_of(job)) for job in jobs if job.is_running}
        try:
            if tasks:
                await asyncio.wait(tasks.values(), timeout=max(0.0, deadline - self._monotonic()))
        finally:
            # Past the deadline, or this poll itself cancelled (shutdown, reload): no call may
            # outlive the poll that started it.
            late = [task for task in tasks.values() if not task.done()]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        graphs = {job_id: task.result() for job_id, task in tasks.items() if not task.cancelled()}
        self._note_graph_failures(
            sum(1 for graph in graphs.values() if graph is None) + len(tasks) - len(graphs)
        )
        return tuple(JobState(job, graphs.get(job.job_id)) for job in jobs)

    def _note_graph_failures(self, failures: int) -> None:
        if failures and not self._graph_failures:
            log.warning("execute-graph calls failing", extra=self._fields(failed_jobs=failures))
        elif self._graph_failures and not failures:
            log.info("execute-graph calls recovered", extra=self._fields())
        self._graph_failures = failures

    def _fields(self, **fields: object) -> dict[str, object]:
        return {"fields": {"target": self._target, **fields}}
