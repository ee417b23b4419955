"""`Poller`: one target's interval loop, turning its resources' data into immutable snapshots."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exporter.config import TargetConfig
from exporter.dli.jobmodel import FlinkJob, JobState
from exporter.dli.jobs import JobsSource
from exporter.dli.resource import Resource, Source
from exporter.errors import DliApiError
from exporter.pollcalls import CallRecorder
from exporter.restarts import RestartHistory
from exporter.snapshot import Snapshot, SourceResult

__all__ = ["DEADLINE_SHARE", "STALE_AFTER_INTERVALS", "OpenedSource", "Poller"]

log = logging.getLogger(__name__)

#: A failed target's (or resource's) last good data is kept this many intervals, then dropped.
STALE_AFTER_INTERVALS = 3
#: A poll must end within this share of the interval, so the next one starts on time.
DEADLINE_SHARE = 0.9


@dataclass(frozen=True, slots=True)
class OpenedSource:
    """A further resource and its source for this poller's target."""

    resource: Resource[object]
    source: Source[object]


class Poller:
    """Polls one target on its interval and publishes a new `Snapshot` after every poll.

    A poll lists the jobs (which decides ``dli_up``) and polls every further resource
    (`exporter.dli.resource`) concurrently with it or with its execute-graph calls; a failing
    resource keeps its own error and stale
    data and changes nothing else. The loop is single-flight by construction: the next poll
    starts only after the previous one has finished, and ticks missed while a poll overran are
    skipped, not queued. Every poll has a deadline (``DEADLINE_SHARE`` of the interval) that
    bounds its requests and retries.
    """

    def __init__(
        self,
        target: TargetConfig,
        jobs: JobsSource,
        publish: Callable[[Snapshot], None],
        *,
        sources: Sequence[OpenedSource] = (),
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        initial: Snapshot | None = None,
        on_internal_error: Callable[[], None] | None = None,
        calls: CallRecorder | None = None,
        restarts: RestartHistory | None = None,
    ) -> None:
        self._target = target
        self._jobs = jobs
        self._sources = tuple(sources)
        self._publish = publish
        self._clock = clock
        self._monotonic = monotonic
        self._snapshot = initial or Snapshot(target=target.name)
        self._on_internal_error = on_internal_error
        #: Fed by the target's request observer; reset when a poll starts.
        self._calls = calls or CallRecorder()
        #: Each job's recent restarts (kept across a reload that replaces this poller).
        self.restarts = restarts or RestartHistory()
        #: What the current failure is (operation, code, error_code), to log each kind once;
        #: the job list's under "", each further resource's under its name.
        self._failure_kinds: dict[str, str] = {}

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
                    self._internal_error("unexpected error in a poll", exc)
                    self._replace(self._failed(started, f"internal error: {type(exc).__name__}"))
                except Exception:
                    log.exception("could not publish a failed poll", extra=self._fields())
            next_tick += interval
            now = self._monotonic()
            if next_tick < now:
                next_tick += math.ceil((now - next_tick) / interval) * interval
            await asyncio.sleep(next_tick - now)

    async def poll_once(self) -> Snapshot:
        """Run one poll and publish its snapshot; never raises except on cancellation.

        The resources that do not need the job list start with it; the ones that do start
        when it is in, alongside the running jobs' execute-graph calls.
        """
        started = self._monotonic()
        deadline = started + DEADLINE_SHARE * self._target.poll_interval
        self._calls.reset()
        async with asyncio.TaskGroup() as group:
            tasks = {
                opened.resource.name: group.create_task(self._poll_source(opened, None, deadline))
                for opened in self._sources
                if not opened.resource.needs_jobs
            }
            listed, error = await self._list(deadline)
            for opened in self._sources:
                if opened.resource.needs_jobs:
                    poll = self._poll_source(opened, listed, deadline)
                    tasks[opened.resource.name] = group.create_task(poll)
            jobs = None if listed is None else await self._with_graphs(listed, deadline)
        sources = {
            opened.resource.name: tasks[opened.resource.name].result() for opened in self._sources
        }
        if jobs is None:
            return self._replace(self._failed(started, error or "no jobs", sources))
        if not self._snapshot.up:
            log.info("target is up", extra=self._fields(jobs=len(jobs)))
        self._failure_kinds.pop("", None)
        return self._replace(
            Snapshot(
                target=self._target.name,
                jobs=jobs,
                up=True,
                polled=True,
                last_success_time=self._clock(),
                poll_duration_seconds=self._monotonic() - started,
                sources=sources,
                calls=self._calls.summary(),
                recent_restarts=self.restarts.record((s.job for s in jobs), self._monotonic()),
            )
        )

    async def _list(self, deadline: float) -> tuple[tuple[FlinkJob, ...] | None, str | None]:
        """The job list, or ``None`` and why not (logged once per kind of failure)."""
        try:
            return await self._jobs.list(deadline), None
        except DliApiError as exc:
            error = exc.describe()
            self._note_failure("", f"{exc.operation} {exc.code} {exc.error_code or ''}", error)
        except Exception as exc:  # the poll loop is the boundary: count, log, carry on
            self._internal_error("unexpected error while listing jobs", exc)
            error = f"internal error: {type(exc).__name__}"
            self._note_failure("", error, error)
        return None, error

    async def _with_graphs(
        self, listed: tuple[FlinkJob, ...], deadline: float
    ) -> tuple[JobState, ...]:
        """The listed jobs with their execution graphs; a bug there leaves them without."""
        try:
            return await self._jobs.with_graphs(listed, deadline)
        except Exception as exc:  # the listing worked: a bug in the graphs must not undo it
            self._internal_error("unexpected error while reading execution graphs", exc)
            return tuple(JobState(job) for job in listed)

    async def _poll_source(
        self, opened: OpenedSource, jobs: tuple[FlinkJob, ...] | None, deadline: float
    ) -> SourceResult[object]:
        """One resource's result this poll; a failure keeps its recent data and is logged once."""
        resource = opened.resource
        name = resource.name
        previous = self._snapshot.sources.get(name)
        if jobs is None and resource.needs_jobs:
            error = "not polled: the job listing failed"
            return self._failed_source(previous, error)
        try:
            data = await opened.source.poll(jobs, deadline)
        except DliApiError as exc:
            error = exc.describe()
            grant = resource.permission if exc.status == 403 else ""
            kind = f"{exc.operation} {exc.code} {exc.error_code or ''}"
            self._note_failure(name, kind, error, grant=grant)
            return self._failed_source(previous, error)
        except Exception as exc:  # a resource's bug must not fail the poll: count, log, go on
            self._internal_error("unexpected error in a resource's poll", exc, resource=name)
            error = f"internal error: {type(exc).__name__}"
            self._note_failure(name, error, error)
            return self._failed_source(previous, error)
        if self._failure_kinds.pop(name, None) is not None:
            log.info("resource recovered", extra=self._fields(resource=name))
        return SourceResult(data, ok=True, last_success_time=self._clock())

    def _failed_source(
        self, previous: SourceResult[object] | None, error: str
    ) -> SourceResult[object]:
        last_success = previous.last_success_time if previous else None
        data = previous.data if previous and self._fresh(last_success) else None
        return SourceResult(data, ok=False, last_success_time=last_success, error=error)

    def _note_failure(self, resource: str, kind: str, error: str, *, grant: str = "") -> None:
        """Log a failure when it is news: the first one, or one of another kind.

        ``resource`` is "" for the job list (the target is down), else a resource's name;
        ``grant`` the permission a 403 asks for.
        """
        if self._failure_kinds.get(resource) == kind:
            return
        self._failure_kinds[resource] = kind
        if resource:
            fields = {"resource": resource, "error": error} | ({"grant": grant} if grant else {})
            log.warning("resource is failing", extra=self._fields(**fields))
        else:
            log.warning("target is down", extra=self._fields(error=error))

    def _internal_error(self, what: str, exc: Exception, **fields: object) -> None:
        """A bug, not an API failure: logged with its traceback and counted."""
        log.error(what, exc_info=exc, extra=self._fields(**fields))
        if self._on_internal_error is not None:
            self._on_internal_error()

    def _fresh(self, last_success_time: float | None) -> bool:
        return last_success_time is not None and (
            self._clock() - last_success_time < STALE_AFTER_INTERVALS * self._target.poll_interval
        )

    def _failed(
        self,
        started: float,
        error: str,
        sources: dict[str, SourceResult[object]] | None = None,
    ) -> Snapshot:
        """A failed poll's snapshot: the last good jobs while they are recent, then none."""
        previous = self._snapshot
        return Snapshot(
            target=self._target.name,
            jobs=previous.jobs if self._fresh(previous.last_success_time) else (),
            up=False,
            polled=True,
            last_success_time=previous.last_success_time,
            poll_duration_seconds=self._monotonic() - started,
            last_error=error,
            sources=previous.sources if sources is None else sources,
            calls=self._calls.summary(),
            recent_restarts=previous.recent_restarts,
        )

    def _replace(self, snapshot: Snapshot) -> Snapshot:
        self._snapshot = snapshot
        self._publish(snapshot)
        return snapshot

    def _fields(self, **fields: object) -> dict[str, object]:
        return {"fields": {"target": self._target.name, **fields}}
