"""The latest snapshots and their exposition, rendered once per change and served as bytes."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from exporter.model import Snapshot

TEXT_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: Fast enough to run per poll for tens of thousands of series, and still ~10x smaller.
GZIP_LEVEL: Final = 6


class SnapshotStore:
    """The latest `Snapshot` of every target. Each publish replaces one target's entry whole."""

    def __init__(self, targets: Iterable[str]) -> None:
        self._snapshots = {name: Snapshot(target=name) for name in targets}

    def publish(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` its target's latest."""
        self._snapshots = {**self._snapshots, snapshot.target: snapshot}

    def retain(self, targets: Iterable[str]) -> None:
        """Keep exactly ``targets``, in that order; new ones start unpolled."""
        self._snapshots = {
            name: self._snapshots.get(name) or Snapshot(target=name) for name in targets
        }

    def snapshots(self) -> tuple[Snapshot, ...]:
        """Every target's latest snapshot, in configuration order."""
        return tuple(self._snapshots.values())

    def ready(self) -> bool:
        """True once every target has finished its first poll, successfully or not."""
        return all(snapshot.polled for snapshot in self._snapshots.values())


@dataclass(frozen=True, slots=True)
class Rendered:
    """One exposition in one format, plain and gzip-compressed."""

    body: bytes
    gzipped: bytes
    content_type: str


class ExpositionCache:
    """Renders the exposition off the event loop when the data changed, and keeps the bytes.

    Call :meth:`invalidate` after the data changed (a poll finished) and :meth:`refresh` to
    render the formats scrapers have asked for; :meth:`get` serves the latest bytes. While a
    newer exposition is being rendered, scrapes get the previous one at once instead of
    waiting (it is at most one render old); only the very first scrape waits.
    """

    def __init__(self, render: Callable[[bool], bytes]) -> None:
        self._render = render
        self._generation = 0
        self._cache: dict[bool, tuple[int, Rendered]] = {}
        self._locks = {False: asyncio.Lock(), True: asyncio.Lock()}
        #: Formats scrapers have asked for; refresh() renders these ahead of the next scrape.
        self._wanted = {False}

    @property
    def generation(self) -> int:
        """Bumped by every :meth:`invalidate`."""
        return self._generation

    def rendered_generation(self, *, openmetrics: bool = False) -> int:
        """The generation of the newest rendered exposition in that format (-1: none yet)."""
        cached = self._cache.get(openmetrics)
        return -1 if cached is None else cached[0]

    def invalidate(self) -> None:
        """Mark the cached bytes as out of date."""
        self._generation += 1

    async def refresh(self) -> None:
        """Render every format scrapers use, so the next scrape finds fresh bytes."""
        for openmetrics in sorted(self._wanted):
            await self._rendered(openmetrics)

    async def get(self, *, openmetrics: bool = False) -> Rendered:
        """The latest exposition in the asked format (see the class docstring)."""
        self._wanted.add(openmetrics)
        cached = self._cache.get(openmetrics)
        if cached is not None and (
            cached[0] == self._generation or self._locks[openmetrics].locked()
        ):
            return cached[1]
        return await self._rendered(openmetrics)

    async def _rendered(self, openmetrics: bool) -> Rendered:
        async with self._locks[openmetrics]:
            cached = self._cache.get(openmetrics)
            if cached is not None and cached[0] == self._generation:
                return cached[1]
            generation = self._generation
            rendered = await asyncio.to_thread(self._render_compressed, openmetrics)
            self._cache[openmetrics] = (generation, rendered)
            return rendered

    def _render_compressed(self, openmetrics: bool) -> Rendered:
        body = self._render(openmetrics)
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        return Rendered(body, gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0), content_type)


def wants_openmetrics(accept: str) -> bool:
    """True when the client's ``Accept`` header asks for OpenMetrics (Prometheus does)."""
    return any(
        part.split(";", 1)[0].strip() == "application/openmetrics-text"
        for part in accept.split(",")
    )


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the client's ``Accept-Encoding`` lists gzip (without ``q=0``)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
