"""`Supervisor`: one poller task per configured target, and config changes applied by diff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from exporter.auth import Credentials, RequestObserver
from exporter.config import Config, TargetConfig
from exporter.dli.jobs import JobsApi, JobsSource
from exporter.dli.projects import ProjectLookup
from exporter.dli.registry import RESOURCES
from exporter.dli.resource import Resource, SourceContext
from exporter.dli.transport import Transport
from exporter.exposition import SnapshotStore
from exporter.http import ssl_setting
from exporter.pollcalls import CallRecorder
from exporter.poller import OpenedSource, Poller
from exporter.ratelimit import RateLimiter
from exporter.restarts import RestartHistory
from exporter.snapshot import Snapshot
from exporter.telemetry import ApiMetrics, ProblemMetrics
from exporter.values import ValueIssues

log = logging.getLogger(__name__)

CredentialsFactory = Callable[
    [TargetConfig, aiohttp.ClientSession, RequestObserver | None], Credentials
]


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """Which targets a new config added, changed, removed or left alone."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


@dataclass(slots=True)
class _Running:
    target: TargetConfig
    poller: Poller
    task: asyncio.Task[None]
    project: ProjectLookup


class Supervisor:
    """Starts, replaces and stops pollers so they always match the current config.

    A target whose settings did not change keeps its poller, state and series across a reload;
    a changed one gets a new poller that carries on from the old one's last snapshot; a removed
    one is stopped and its series (job and request metrics) vanish. ``on_publish`` (optional)
    observes every snapshot right after it is published (benchmarks, tests).
    """

    def __init__(
        self,
        *,
        store: SnapshotStore,
        api_metrics: ApiMetrics,
        credentials: CredentialsFactory,
        on_change: Callable[[], None],
        problem_metrics: ProblemMetrics | None = None,
        on_publish: Callable[[Snapshot], None] | None = None,
        resources: Sequence[Resource[object]] = RESOURCES,
    ) -> None:
        self._store = store
        self._resources = tuple(resources)
        self._on_publish = on_publish
        self._api_metrics = api_metrics
        self._problem_metrics = problem_metrics
        self._credentials = credentials
        self._on_change = on_change
        self._running: dict[str, _Running] = {}
        self._session: aiohttp.ClientSession | None = None

    def start(self, session: aiohttp.ClientSession, config: Config) -> None:
        """Start polling every target of ``config`` with ``session``."""
        self._session = session
        self.apply(config)

    def apply(self, config: Config) -> ConfigChange:
        """Make the running pollers match ``config``; returns what changed."""
        wanted = {target.name: target for target in config.targets}
        removed = tuple(name for name in self._running if name not in wanted)
        for name in removed:
            self._running.pop(name).task.cancel()
            self._api_metrics.forget_target(name)
            if self._problem_metrics is not None:
                self._problem_metrics.forget_target(name)
        added: list[str] = []
        changed: list[str] = []
        unchanged: list[str] = []
        for name, target in wanted.items():
            running = self._running.get(name)
            if running is not None and running.target == target:
                unchanged.append(name)
                continue
            (changed if running else added).append(name)
            if running is not None:
                running.task.cancel()
            self._start(target, running)
        self._store.retain(wanted)
        self._on_change()
        return ConfigChange(tuple(added), tuple(changed), removed, tuple(unchanged))

    async def stop(self) -> None:
        """Cancel every poller and wait for them to finish."""
        tasks = [running.task for running in self._running.values()]
        self._running.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, target: TargetConfig, running: _Running | None) -> None:
        """Start ``target``'s poller, carrying on from the one it replaces (``running``)."""
        assert self._session is not None, "start() first"
        previous = running.poller.snapshot if running else None
        api_metrics, problems = self._api_metrics, self._problem_metrics
        calls = CallRecorder()  # this poller's latest poll, for the status page

        def observe(operation: str, code: str, seconds: float) -> None:
            api_metrics.observe(target.name, operation, code, seconds)
            calls.observe(operation, code, seconds)

        def values_rejected(operation: str, issues: ValueIssues) -> None:
            if problems is not None:
                problems.values_rejected(target.name, operation, issues)

        def poll_error() -> None:
            if problems is not None:
                problems.poll_error(target.name)

        if target.tls.insecure_skip_verify:
            log.warning(
                "TLS certificate verification is off for this target (insecure_skip_verify)",
                extra={"fields": {"target": target.name, "endpoint": target.endpoint}},
            )

        credentials = self._credentials(target, self._session, observe)
        limiter = RateLimiter(target.rate_limit)

        def transport_to(endpoint: str) -> Transport:
            assert self._session is not None
            return Transport(
                self._session,
                endpoint=endpoint,
                credentials=credentials,
                timeout=target.timeout,
                limiter=limiter,
                observe=observe,
                on_values=values_rejected,
                ssl_option=ssl_setting(target.tls),
                on_retry=calls.retried,
            )

        transport = transport_to(target.endpoint)
        project = ProjectLookup(
            target=target.name,
            region=target.region,
            known=target.project_id or _found_before(target, running),
            transport=None
            if target.project_id
            else transport_to(
                target.iam_endpoint or f"https://iam.{target.region}.myhuaweicloud.com"
            ),
        )
        api = JobsApi(
            transport,
            project_id=project,
            filters=target.filters,
            page_concurrency=target.concurrency,
        )
        context = SourceContext(target, transport, project, transport_to)
        poller = Poller(
            target,
            JobsSource(
                api,
                target=target.name,
                concurrency=target.concurrency,
                on_internal_error=poll_error,
            ),
            lambda s: self._publish(poller, s),
            sources=[
                OpenedSource(r, r.open(context)) for r in self._resources if r.enabled(target)
            ],
            initial=previous,
            on_internal_error=poll_error,
            calls=calls,
            restarts=running.poller.restarts if running else RestartHistory(),
        )
        task = asyncio.create_task(poller.run(), name=f"poll {target.name}")
        task.add_done_callback(_report_end)
        self._running[target.name] = _Running(target, poller, task, project)

    def _publish(self, poller: Poller, snapshot: Snapshot) -> None:
        """Publish a poller's snapshot unless the poller was replaced or removed meanwhile."""
        running = self._running.get(snapshot.target)
        if running is None or running.poller is not poller:
            return  # a replaced or removed poller finishing its last poll
        self._store.publish(snapshot)
        if self._on_publish is not None:
            self._on_publish(snapshot)
        self._on_change()


def _found_before(target: TargetConfig, running: _Running | None) -> str | None:
    """The project id the replaced poller looked up, if the lookup would ask the same."""
    if running is None or running.target.project_id is not None:
        return None
    old = running.target
    same = (old.region, old.auth, old.iam_endpoint, old.endpoint, old.tls) == (
        target.region,
        target.auth,
        target.iam_endpoint,
        target.endpoint,
        target.tls,
    )
    return running.project.project_id if same else None


def _report_end(task: asyncio.Task[None]) -> None:
    """A poll loop only ends by cancellation; anything else is a bug, logged loudly."""
    if task.cancelled():
        return
    error = task.exception()
    log.critical(
        "a poll loop ended; its target is no longer polled",
        exc_info=error,
        extra={"fields": {"task": task.get_name()}},
    )
