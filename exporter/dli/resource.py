"""`Resource`: what a DLI resource module provides, so that adding one is writing one module.

The job list is every target's first resource (`exporter.dli.jobs`): it decides ``dli_up`` and
its jobs are what other resources join to. Every other resource is a `Resource` in
`exporter.dli.registry.RESOURCES`: the poller opens one `Source` of it per target that has it
enabled, and the catalogue publishes its rows plus ``dli_source_up`` and its last success time.
A resource that ``needs_jobs`` is polled once the listing is in, alongside the execute-graph
calls; the others from the start of the poll, alongside the listing. Its result is kept in the
snapshot's ``sources`` under its ``name``, with its own success, error and time; its failure is
logged (with the IAM ``permission`` to grant, on a 403) and leaves ``dli_up`` and the job series
as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, cast

from exporter.config import MetricOptions, TargetConfig
from exporter.dli.jobmodel import FlinkJob
from exporter.dli.projects import ProjectLookup
from exporter.dli.transport import Transport
from exporter.metricspec import MetricSpec
from exporter.snapshot import Snapshot, SourceResult

__all__ = ["Resource", "Source", "SourceContext", "always", "result_of"]

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a resource's source gets for one target."""

    target: TargetConfig
    #: The target's DLI transport.
    transport: Transport
    #: The target's project id (``await project.resolve(deadline=...)``).
    project: ProjectLookup
    #: A transport to another endpoint (Cloud Eye) sharing the target's credentials, rate
    #: limit, TLS settings and request metrics.
    transport_to: Callable[[str], Transport]


class Source(Protocol[_T_co]):
    """One target's poll of one resource; it may keep state between polls."""

    async def poll(self, jobs: tuple[FlinkJob, ...] | None, deadline: float) -> _T_co:
        """The resource's data now; raises `exporter.errors.DliApiError` when it cannot.

        ``jobs`` is this poll's job list for a resource that ``needs_jobs``, else ``None``;
        ``deadline`` is ``time.monotonic()`` seconds.
        """
        ...


def always(_target: TargetConfig) -> bool:
    """The default of `Resource.enabled`: on for every target."""
    return True


@dataclass(frozen=True, slots=True)
class Resource(Generic[_T_co]):
    """A DLI resource beyond the job list: how to poll it and which families it publishes."""

    #: Its key in `Snapshot.sources`, its ``source`` label value, and its name in logs.
    name: str
    #: Opens the resource's source for one target.
    open: Callable[[SourceContext], Source[_T_co]]
    #: Its families, in exposition order (read its data with `result_of`).
    rows: Callable[[MetricOptions], tuple[MetricSpec, ...]]
    #: Polled only after a successful job listing (its data is about the listed jobs).
    needs_jobs: bool = False
    #: Whether a target polls it (its ``sources`` setting).
    enabled: Callable[[TargetConfig], bool] = always
    #: What to grant when the API answers 403 (an IAM action or policy), for the log.
    permission: str = ""


def result_of(snapshot: Snapshot, resource: Resource[_T]) -> SourceResult[_T] | None:
    """``resource``'s latest result in ``snapshot``, typed; ``None`` before its first poll."""
    return cast("SourceResult[_T] | None", snapshot.sources.get(resource.name))
