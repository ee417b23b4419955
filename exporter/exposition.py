"""The latest snapshots and their exposition, rendered once per change and served as bytes."""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from exporter.snapshot import Snapshot

log = logging.getLogger(__name__)

TEXT_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: Renders of one format are spaced so that they take at most this share of the time: polls
#: finishing meanwhile share one render. With hundreds of targets a poll finishes every few
#: hundred milliseconds; rendering for each would render everything once per target per round.
RENDER_SHARE: Final = 0.1
#: The longest wait for that spacing, in seconds: how much older than its data a render can be.
COALESCE_SECONDS: Final = 1.0


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
    """One exposition in one format, kept gzip-compressed only.

    Prometheus always accepts gzip; the plain body (~30 MB for 10,000 jobs, against ~2 MB
    compressed) is only decompressed for the rare client that does not.
    """

    gzipped: bytes
    content_type: str

    def plain(self) -> bytes:
        """The uncompressed body (blocking CPU work: call it from a worker thread)."""
        return gzip.decompress(self.gzipped)


class ExpositionCache:
    """Renders the exposition off the event loop when the data changed, and keeps the bytes.

    ``render(openmetrics)`` returns the gzip-compressed exposition (blocking; it runs in a
    worker thread). Call :meth:`invalidate` after the data changed (a poll finished) and
    :meth:`refresh` to render the formats scrapers have asked for; :meth:`get` serves the
    latest bytes. Once a format has been rendered, scrapes never wait for a render: they get
    the latest bytes at once while a newer exposition renders (it is at most one render old);
    only a format's very first scrape waits. A render of a format that follows another starts
    when the one before has taken at most `RENDER_SHARE` of the time since it started, but at
    most ``coalesce`` seconds after that start: the changes meanwhile share one render.
    """

    def __init__(self, render: Callable[[bool], bytes], *, coalesce: float = 0.0) -> None:
        self._render = render
        self._coalesce = coalesce
        self._last_duration = {False: 0.0, True: 0.0}
        self._generation = 0
        self._cache: dict[bool, tuple[int, Rendered]] = {}
        self._locks = {False: asyncio.Lock(), True: asyncio.Lock()}
        self._last_start = {False: -float("inf"), True: -float("inf")}
        #: Formats scrapers have asked for; refresh() renders only these ahead of the next
        #: scrape (Prometheus asks for OpenMetrics, so the text format is rarely rendered).
        self._wanted: set[bool] = set()
        self._background: set[asyncio.Task[Rendered]] = set()

    @property
    def generation(self) -> int:
        """Bumped by every :meth:`invalidate`."""
        return self._generation

    def serves_generation(self, generation: int) -> bool:
        """True when every format scrapers use is rendered from ``generation`` or later.

        A format nobody has asked for yet counts as current: its first scrape renders it.
        """
        return all(
            openmetrics in self._cache and self._cache[openmetrics][0] >= generation
            for openmetrics in self._wanted
        )

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
        if cached is None:
            return await self._rendered(openmetrics)
        if cached[0] != self._generation and not self._locks[openmetrics].locked():
            self._render_in_background(openmetrics)  # e.g. after a failed refresh
        return cached[1]

    def _render_in_background(self, openmetrics: bool) -> None:
        task = asyncio.create_task(self._rendered(openmetrics), name="render exposition")
        self._background.add(task)
        task.add_done_callback(self._rendered_in_background)

    def _rendered_in_background(self, task: asyncio.Task[Rendered]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("rendering the exposition failed", exc_info=task.exception())

    async def _rendered(self, openmetrics: bool) -> Rendered:
        async with self._locks[openmetrics]:
            cached = self._cache.get(openmetrics)
            if cached is not None and cached[0] == self._generation:
                return cached[1]
            loop = asyncio.get_running_loop()
            if cached is not None:  # scrapes are served meanwhile; let more changes come in
                spacing = min(self._coalesce, self._last_duration[openmetrics] / RENDER_SHARE)
                await asyncio.sleep(self._last_start[openmetrics] + spacing - loop.time())
            started = self._last_start[openmetrics] = loop.time()
            generation = self._generation
            gzipped = await asyncio.to_thread(self._render, openmetrics)
            self._last_duration[openmetrics] = loop.time() - started
            content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
            rendered = Rendered(gzipped, content_type)
            self._cache[openmetrics] = (generation, rendered)
            return rendered


def wants_openmetrics(accept: str) -> bool:
    """True when the client's ``Accept`` header prefers OpenMetrics (Prometheus does).

    Media types and parameter names are case-insensitive (RFC 9110). OpenMetrics is chosen
    when an ``application/openmetrics-text`` entry (any ``version``) has a q above 0 and at
    least the best q of ``text/plain``, ``text/*`` or ``*/*``; wildcards alone never select it.
    An entry with an invalid q counts as q=0.
    """
    openmetrics = text = 0.0
    for value, params in parse_header_list(accept):
        q = _qvalue(params)
        media_type = value.replace(" ", "")
        if media_type == "application/openmetrics-text":
            openmetrics = max(openmetrics, q)
        elif media_type in ("text/plain", "text/*", "*/*"):
            text = max(text, q)
    return openmetrics > 0 and openmetrics >= text


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the client's ``Accept-Encoding`` allows gzip and prefers it to ``identity``.

    Codings and parameter names are case-insensitive (RFC 9110): ``GZIP;Q=0`` refuses gzip.
    ``x-gzip`` counts as gzip; without a gzip entry ``*`` decides. Any entry refusing gzip
    (q=0) wins over others that allow it; an entry with an invalid q counts as q=0. gzip is
    chosen on a tie with an explicit ``identity`` entry; an empty header allows no coding.
    """
    gzip_q: float | None = None
    wildcard_q: float | None = None
    identity_q: float | None = None
    for value, params in parse_header_list(accept_encoding):
        q = _qvalue(params)
        if value in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else min(gzip_q, q)
        elif value == "*":
            wildcard_q = q if wildcard_q is None else min(wildcard_q, q)
        elif value == "identity":
            identity_q = q if identity_q is None else min(identity_q, q)
    chosen = gzip_q if gzip_q is not None else wildcard_q
    if not chosen:  # None (not listed) or 0 (refused)
        return False
    return identity_q is None or chosen >= identity_q


_QVALUE_RE: Final = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")
_TOKEN_END: Final = frozenset(',;="')


def _qvalue(params: dict[str, str]) -> float:
    """The entry's ``q`` (1 when absent); 0 when it is not a valid RFC 9110 qvalue."""
    text = params.get("q")
    if text is None:
        return 1.0
    return float(text) if _QVALUE_RE.fullmatch(text) else 0.0


def parse_header_list(header: str) -> list[tuple[str, dict[str, str]]]:
    """Split a comma-separated header (``Accept``-style) into lower-cased values and parameters.

    ``value;name=param, ...``: values and parameter names are lower-cased, parameter values
    keep their case, quoted strings (with backslash escapes) may contain commas and
    semicolons. Empty elements are skipped; a parameter without ``=`` is ignored.
    """
    entries: list[tuple[str, dict[str, str]]] = []
    position, length = 0, len(header)
    while position < length:
        value, position = _read_token(header, position)
        params: dict[str, str] = {}
        while position < length and header[position] == ";":
            name, position = _read_token(header, position + 1)
            if position < length and header[position] == "=":
                param, position = _read_param_value(header, position + 1)
                if name:
                    params.setdefault(name.lower(), param)
        if position < length and header[position] == '"':  # a stray quote: skip to the comma
            _, position = _read_param_value(header, position)
            value = ""
        if position < length and header[position] == "=":  # "a=b" where a value belongs
            _, position = _read_param_value(header, position + 1)
            value = ""
        if value:
            entries.append((value.lower(), params))
        while position < length and header[position] != ",":
            position += 1  # junk after the entry
        position += 1
    return entries


def _read_token(header: str, position: int) -> tuple[str, int]:
    start = position
    while position < len(header) and header[position] not in _TOKEN_END:
        position += 1
    return header[start:position].strip(" \t"), position


def _read_param_value(header: str, position: int) -> tuple[str, int]:
    while position < len(header) and header[position] in " \t":
        position += 1
    if position < len(header) and header[position] == '"':
        chars: list[str] = []
        position += 1
        while position < len(header) and header[position] != '"':
            if header[position] == "\\" and position + 1 < len(header):
                position += 1
            chars.append(header[position])
            position += 1
        position += 1  # the closing quote
        while position < len(header) and header[position] not in ",;":
            position += 1
        return "".join(chars), position
    return _read_token(header, position)
