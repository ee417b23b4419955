"""`Snapshot`: everything one target's latest poll learned, replaced whole, never mutated.

The job list is the one resource every target has: it decides ``dli_up`` and is what the other
resources' data joins to, so its result is the snapshot's own fields. Every other resource
(see `exporter.dli.resource`) has its own `SourceResult` in ``sources``, with its own success,
error and time, so that one failing never marks the target down or blanks the job series.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from exporter.dli.jobmodel import JobState
from exporter.pollcalls import CallSummary

__all__ = ["Snapshot", "SourceResult"]

_T = TypeVar("_T")
_NO_SOURCES: Mapping[str, SourceResult[object]] = MappingProxyType({})
_NO_RESTARTS: Mapping[int, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SourceResult(Generic[_T]):
    """One resource's latest result for one target."""

    #: What the latest successful poll of the resource returned (kept a while after failures).
    data: _T | None = None
    #: True when the latest poll of the resource succeeded.
    ok: bool = False
    #: Unix time of the latest success (the age of ``data``).
    last_success_time: float | None = None
    #: A one-line description of why the latest poll failed; never carries secrets.
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one target's latest poll learned; replaced whole, never mutated."""

    target: str
    jobs: tuple[JobState, ...] = ()
    #: True when the latest poll listed the jobs successfully.
    up: bool = False
    #: True once the first poll has finished, successfully or not.
    polled: bool = False
    #: Unix time of the latest successful listing (the age of ``jobs``).
    last_success_time: float | None = None
    #: Wall time the latest poll took, in seconds.
    poll_duration_seconds: float | None = None
    #: A one-line description of why the latest poll failed; never carries secrets.
    last_error: str | None = None
    #: The other resources' results, by resource name.
    sources: Mapping[str, SourceResult[object]] = field(default_factory=lambda: _NO_SOURCES)
    #: The latest poll's API calls by operation and code (the status page's debug table).
    calls: tuple[CallSummary, ...] = ()
    #: Restarts within the last 15 minutes by job id, for the jobs that restarted in them
    #: (`exporter.restarts.RestartHistory`).
    recent_restarts: Mapping[int, int] = field(default_factory=lambda: _NO_RESTARTS)
