"""`Poller`: one target's interval loop, turning DLI calls into immutable snapshots."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from exporter.client import DliClient
from exporter.config import TargetConfig
from exporter.errors import DliApiError
from exporter.model import ExecuteGraph, FlinkJob, JobState, Snapshot

log = logging.getLogger(__name__)

#: A failed target's last good jobs are kept this many poll intervals, then dropped.
STALE_AFTER_INTERVALS = 3
#: A poll must end within this share of the interval, so the next one starts on time.
DEADLINE_SHARE = 0.9


class Poller:
    """Polls one target on its interval and publishes a new `Snapshot` after every poll.

    The loop is single-flight by construction: the next poll starts only after the previous one
    has finished, and ticks missed while a poll overran are skipped, not queued. Every poll has
    a deadline (``DEADLINE_SHARE`` of the interval) that bounds its requests and retries;
    execute-graph calls still unfinished then are abandoned and their jobs published without
    Flink state.
    """

    def __init__(
        self,
        target: TargetConfig,
        client: DliClient,
        publish: Callable[[Snapshot], None],
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        initial: Snapshot | None = None,
        on_internal_error: Callable[[], None] | None = None,
    ) -> None:
        self._target = target
        self._client = client
        self._publish = publish
        self._clock = clock
        self._monotonic = monotonic
        self._snapshot = initial or Snapshot(target=target.name)
        self._on_internal_error = on_internal_error
        self._graph_failures = 0
        #: What the current failure is (operation, code, error_code), to log each kind once.
        self._failure_kind: str | None = None

    @property
    def snapshot(self) -> Snapshot:
        """The latest published snapshot (an unpolled one before the first poll ends)."""
        return self._snapshot

    async def run(self) -> None:
        """Poll now, then on every interval tick until cancelled; no error ends the loop."""
        interval = self._target.poll_interval
        next_tick = self._monotonic()
        while True:
            started = self._monotonic()
            try:
                await self.poll_once()
            except Exception as exc:  # the loop is the last boundary: it must outlive any bug
                try:
                    self._internal_error("unexpected error in a poll", exc, started)
                except Exception:
                    log.exception("could not publish a failed poll", extra=self._fields())
            next_tick += interval
            now = self._monotonic()
            if next_tick < now:
                next_tick += math.ceil((now - next_tick) / interval) * interval
            await asyncio.sleep(next_tick - now)

    async def poll_once(self) -> Snapshot:
        """Run one poll and publish its snapshot; never raises except on cancellation."""
        started = self._monotonic()
        deadline = started + DEADLINE_SHARE * self._target.poll_interval
        try:
            jobs = await self._client.list_jobs(deadline=deadline)
        except DliApiError as exc:
            kind = f"{exc.operation} {exc.code} {exc.error_code or ''}"
            return self._finish_failed(started, exc.describe(), kind)
        except Exception as exc:  # the poll loop is the boundary: count, log, carry on
            return self._internal_error("unexpected error while listing jobs", exc, started)
        states = await self._with_execute_graphs(jobs, deadline)
        snapshot = Snapshot(
            target=self._target.name,
            jobs=states,
            up=True,
            polled=True,
            last_success_time=self._clock(),
            poll_duration_seconds=self._monotonic() - started,
        )
        if not self._snapshot.up:
            log.info("target is up", extra=self._fields(jobs=len(states)))
        return self._replace(snapshot)

    async def _with_execute_graphs(
        self, jobs: list[FlinkJob], deadline: float
    ) -> tuple[JobState, ...]:
        limit = asyncio.Semaphore(self._target.concurrency)

        async def graph_of(job: FlinkJob) -> ExecuteGraph | None:
            async with limit:
                try:
                    return await self._client.execute_graph(job.job_id, deadline=deadline)
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

    def _internal_error(self, what: str, exc: Exception, started: float) -> Snapshot:
        """A bug, not an API failure: logged with its traceback, counted, published as failed."""
        log.error(what, exc_info=exc, extra=self._fields())
        if self._on_internal_error is not None:
            self._on_internal_error()
        error = f"internal error: {type(exc).__name__}"
        return self._finish_failed(started, error, error)

    def _finish_failed(self, started: float, error: str, kind: str) -> Snapshot:
        """Publish a failed poll; ``kind`` (no request id) decides whether this is news to log."""
        previous = self._snapshot
        if previous.up or self._failure_kind != kind:
            log.warning("target is down", extra=self._fields(error=error))
        keep = previous.last_success_time is not None and (
            self._clock() - previous.last_success_time
            < STALE_AFTER_INTERVALS * self._target.poll_interval
        )
        snapshot = Snapshot(
            target=self._target.name,
            jobs=previous.jobs if keep else (),
            up=False,
            polled=True,
            last_success_time=previous.last_success_time,
            poll_duration_seconds=self._monotonic() - started,
            last_error=error,
        )
        self._failure_kind = kind
        return self._replace(snapshot)

    def _replace(self, snapshot: Snapshot) -> Snapshot:
        self._snapshot = snapshot
        self._publish(snapshot)
        return snapshot

    def _fields(self, **fields: object) -> dict[str, object]:
        return {"fields": {"target": self._target.name, **fields}}
