"""Bench only: run the exporter's CLI with the instrumentation `bench/cycle.py` reads.

``python bench/_cycle_exporter.py <exporter flags>`` behaves like ``python -m exporter``, plus:

- ``CYCLE_STATUS_FILE``: the wrapper keeps this file replaced by one JSON object (see
  `Probe.status`): every finished poll (end, duration, jobs, execute graphs fetched, cumulative
  ``dli_api_requests_total`` by operation and code and their summed duration, the process CPU
  the poll used), every exposition render (start, end, process CPU), the garbage collector's
  pauses (`gc.callbacks`), the RSS per second (sampled at every write), and the event loop's
  lateness: a task on the exporter's loop sleeps `TICK` seconds over and over, and how much
  later than asked it wakes up is a stall of the loop. The worst lateness per wall-clock
  second and every stall over `STALL_EVENT_MS` are kept. The file is rewritten every
  `WRITE_INTERVAL` seconds and right after each poll.
- ``CYCLE_NAIVE=1``: ``/metrics`` renders on every scrape instead of serving the bytes rendered
  once per poll: prometheus_client's ``generate_latest`` over `exporter.collector`'s
  `SnapshotCollector` and the exporter's own registry, then ``gzip.compress`` at its default
  level (what prometheus_client's exposition does), in a worker thread. For comparison only.
- ``CYCLE_SWITCH_INTERVAL=SECONDS``: the GIL switch interval (how long a thread may hold the
  GIL while another waits; Python's default is 0.005, the exporter's 0.001), passed to the CLI
  as ``ProcessTuning(switch_interval=...)`` so that `exporter.runtime.tune_process` applies it
  instead of its own, to test how the render thread's GIL holding affects the loop.
- ``CYCLE_PROFILE=PATH``: cProfile the event loop's thread for the whole run and dump the stats
  to ``PATH`` on exit (``python -m pstats PATH``).

The instrumentation goes in through the product's explicit hooks (`ExporterHooks`, passed to
``exporter.cli.main``): ``cache`` builds the probed (or naive) exposition cache, wrapping the
product's `ExpositionCache` rather than subclassing it, and ``instrument_app`` adds the probe to
the app's ``cleanup_ctx``. Nothing is patched; nothing here ships.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import cProfile
import gc
import gzip
import json
import os
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics_exposition

from exporter import cli
from exporter.catalogue import build_catalogue
from exporter.collector import SnapshotCollector
from exporter.exposition import (
    COALESCE_SECONDS,
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    ExpositionCache,
    Rendered,
)
from exporter.runtime import Exporter, ExporterHooks, ExpositionSource, ProcessTuning

STATUS_FILE_ENV: Final = "CYCLE_STATUS_FILE"
NAIVE_ENV: Final = "CYCLE_NAIVE"
PROFILE_ENV: Final = "CYCLE_PROFILE"
SWITCH_INTERVAL_ENV: Final = "CYCLE_SWITCH_INTERVAL"
#: The loop monitor's sleep, in seconds.
TICK: Final = 0.010
#: Stalls longer than this are kept one by one (with their time), not only per second.
STALL_EVENT_MS: Final = 20.0
MAX_STALL_EVENTS: Final = 2000
WRITE_INTERVAL: Final = 0.2
#: Ten minutes of monitor ticks, longer than any poll.
CPU_MARKS: Final = 60_000
_REQUESTS_FAMILY: Final = "dli_api_requests"
_DURATION_FAMILY: Final = "dli_api_request_duration_seconds"

_openmetrics_latest: Final[Callable[[CollectorRegistry], bytes]] = (
    openmetrics_exposition.generate_latest
)


class Probe:
    """What the wrapper has seen of one exporter; `status` is what goes into the file."""

    def __init__(self, exporter: Exporter, *, naive: bool) -> None:
        self._exporter = exporter
        self._naive = naive
        self._polls: list[dict[str, Any]] = []
        self._renders: list[dict[str, Any]] = []
        self._late_by_second: dict[int, float] = {}
        self._rss_by_second: dict[int, float] = {}
        self._stalls: list[tuple[float, float]] = []
        #: (wall time, process CPU) at every monitor tick of the last minutes, to find the CPU
        #: a poll used from its start (only known once it ended) to its end.
        self._cpu_marks: deque[tuple[float, float]] = deque(maxlen=CPU_MARKS)
        #: The latest snapshot recorded per target (compared by identity).
        self._seen: dict[str, object] = {}
        #: Garbage collections by generation: how many, their seconds, and long pauses.
        self._gc_counts = [0, 0, 0]
        self._gc_seconds = [0.0, 0.0, 0.0]
        self._gc_pauses: list[tuple[float, float, int]] = []
        self._gc_started = 0.0
        self.changed = asyncio.Event()

    def note_gc(self, phase: str, info: dict[str, int]) -> None:
        """A `gc.callbacks` entry: time every collection (in whichever thread runs it)."""
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        pause = time.perf_counter() - self._gc_started
        generation = info["generation"]
        self._gc_counts[generation] += 1
        self._gc_seconds[generation] += pause
        if pause * 1000 > STALL_EVENT_MS and len(self._gc_pauses) < MAX_STALL_EVENTS:
            self._gc_pauses.append((time.time(), pause * 1000, generation))

    def note_data_changed(self) -> None:
        """Called on the loop when the cache is invalidated: record the polls that just ended."""
        now, cpu = time.time(), time.process_time()
        requests = self._requests()
        for snapshot in self._exporter.store.snapshots():
            if not snapshot.polled or self._seen.get(snapshot.target) is snapshot:
                continue
            self._seen[snapshot.target] = snapshot
            running = [state for state in snapshot.jobs if state.job.is_running]
            end = snapshot.last_success_time if snapshot.up else None
            duration = snapshot.poll_duration_seconds or 0.0
            self._polls.append(
                {
                    "target": snapshot.target,
                    "end": end or now,
                    "duration": duration,
                    "up": snapshot.up,
                    "jobs": len(snapshot.jobs),
                    "running": len(running),
                    "graphs": sum(1 for state in running if state.graph is not None),
                    "requests": requests.get(snapshot.target, {}),
                    "cpu": cpu - self._cpu_at((end or now) - duration, cpu),
                    "gc_seconds": sum(self._gc_seconds),
                }
            )
        self.changed.set()

    def _cpu_at(self, when: float, default: float) -> float:
        """The process CPU time at the first monitor tick at or after the wall time ``when``."""
        index = bisect.bisect_left(self._cpu_marks, (when, -1.0))
        return self._cpu_marks[index][1] if index < len(self._cpu_marks) else default

    def note_render(self, generation: int, started: float, cpu_started: float) -> None:
        """A refresh of the exposition (every wanted format) finished."""
        self._renders.append(
            {
                "generation": generation,
                "start": started,
                "end": time.time(),
                "cpu": time.process_time() - cpu_started,
            }
        )
        self.changed.set()

    def note_lateness(self, late: float) -> None:
        """The loop monitor woke ``late`` seconds later than it asked."""
        now = time.time()
        self._cpu_marks.append((now, time.process_time()))
        second = int(now)
        late_ms = late * 1000
        if late_ms > self._late_by_second.get(second, 0.0):
            self._late_by_second[second] = late_ms
        if late_ms > STALL_EVENT_MS and len(self._stalls) < MAX_STALL_EVENTS:
            self._stalls.append((now, late_ms))

    def note_rss(self, megabytes: float) -> None:
        """The resident set size now (sampled with every status write)."""
        second = int(time.time())
        self._rss_by_second[second] = max(megabytes, self._rss_by_second.get(second, 0.0))

    def status(self) -> dict[str, Any]:
        """The file's content: copies, as it is serialised in another thread."""
        return {
            "time": time.time(),
            "pid": os.getpid(),
            "naive": self._naive,
            "polls": list(self._polls),
            "renders": list(self._renders),
            "late_ms_by_second": dict(self._late_by_second),
            "rss_mb_by_second": dict(self._rss_by_second),
            "stalls": list(self._stalls),
            "cpu": time.process_time(),
            "gc": {
                "counts": list(self._gc_counts),
                "seconds": list(self._gc_seconds),
                "pauses": list(self._gc_pauses),
            },
        }

    def _requests(self) -> dict[str, dict[str, dict[str, float]]]:
        """Cumulative API calls by target, operation and code (``dli_api_requests_total``),
        plus the seconds they took by target and operation under the code ``"seconds"``
        (``dli_api_request_duration_seconds_sum``)."""
        totals: dict[str, dict[str, dict[str, float]]] = {}
        for family in self._exporter.registry.collect():
            for sample in family.samples:
                labels = sample.labels
                if family.name == _REQUESTS_FAMILY and sample.name.endswith("_total"):
                    code = labels["code"]
                elif family.name == _DURATION_FAMILY and sample.name.endswith("_sum"):
                    code = "seconds"
                else:
                    continue
                by_code = totals.setdefault(labels["target"], {}).setdefault(
                    labels["operation"], {}
                )
                by_code[code] = sample.value
        return totals


class ProbedCache:
    """The product's cache, wrapped: tells the probe when data changed and when a render ended."""

    def __init__(self, cache: ExpositionCache, probe: Probe) -> None:
        self._cache = cache
        self._probe = probe

    @property
    def generation(self) -> int:
        """The product cache's generation."""
        return self._cache.generation

    def serves_generation(self, generation: int) -> bool:
        """As the product cache answers."""
        return self._cache.serves_generation(generation)

    def invalidate(self) -> None:
        """Mark the bytes out of date and record the polls that just ended."""
        self._cache.invalidate()
        self._probe.note_data_changed()

    async def refresh(self) -> None:
        """Render as the product does, timed."""
        generation, started, cpu = self.generation, time.time(), time.process_time()
        await self._cache.refresh()
        self._probe.note_render(generation, started, cpu)

    async def get(self, *, openmetrics: bool = False) -> Rendered:
        """The product cache's bytes."""
        return await self._cache.get(openmetrics=openmetrics)


class NaiveCache:
    """Renders through prometheus_client on every scrape (in a thread) and never caches."""

    def __init__(self, exporter: Exporter, probe: Probe) -> None:
        self._exporter = exporter
        self._probe = probe
        self._generation = 0

    @property
    def generation(self) -> int:
        """Bumped by every `invalidate`, as the product's."""
        return self._generation

    def serves_generation(self, generation: int) -> bool:
        """Every generation counts as served: the bytes are made per scrape."""
        return True

    def invalidate(self) -> None:
        """Record the polls that just ended (nothing is cached to mark out of date)."""
        self._generation += 1
        self._probe.note_data_changed()

    async def refresh(self) -> None:
        """Nothing is rendered ahead of a scrape."""

    async def get(self, *, openmetrics: bool = False) -> Rendered:
        """A fresh render and compression for this one scrape."""
        return await asyncio.to_thread(self._render_naively, openmetrics)

    def _render_naively(self, openmetrics: bool) -> Rendered:
        exporter = self._exporter
        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            SnapshotCollector(exporter.store.snapshots, build_catalogue(exporter.config.metrics))
        )
        registry.register(exporter.registry)
        if openmetrics:
            body = _openmetrics_latest(registry)
            content_type = OPENMETRICS_CONTENT_TYPE
        else:
            body, content_type = generate_latest(registry), TEXT_CONTENT_TYPE
        # prometheus_client compresses at gzip's default level.
        return Rendered(gzip.compress(body), content_type)


async def _watch_loop(probe: Probe) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(TICK)
        probe.note_lateness(max(0.0, loop.time() - before - TICK))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _write_status(path: Path, status: dict[str, Any]) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(status))
    partial.replace(path)


async def _write_statuses(probe: Probe, path: Path, executor: ThreadPoolExecutor) -> None:
    while True:
        await _write_status_soon(probe, path, executor)


async def _write_status_soon(probe: Probe, path: Path, executor: ThreadPoolExecutor) -> None:
    """Write the status after the next change (or `WRITE_INTERVAL`), on the probe's own thread:
    in naive mode the default executor is full of renders, and the bench must not wait on them.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(probe.changed.wait(), WRITE_INTERVAL)
    probe.changed.clear()
    loop = asyncio.get_running_loop()
    probe.note_rss(await loop.run_in_executor(executor, _rss_mb))
    await loop.run_in_executor(executor, _write_status, path, probe.status())


class Instrumentation:
    """The hooks' shared state: the probe is made with the cache and runs with the app."""

    def __init__(self, status_file: Path, *, naive: bool) -> None:
        self._status_file = status_file
        self._naive = naive
        self._probe: Probe | None = None

    def hooks(self) -> ExporterHooks:
        """The hooks to pass to ``exporter.cli.main``."""
        return ExporterHooks(cache=self._cache, instrument_app=self._instrument)

    def _cache(self, exporter: Exporter) -> ExpositionSource:
        probe = self._probe = Probe(exporter, naive=self._naive)
        gc.callbacks.append(probe.note_gc)
        if self._naive:
            return NaiveCache(exporter, probe)
        return ProbedCache(ExpositionCache(exporter.render, coalesce=COALESCE_SECONDS), probe)

    def _instrument(self, app: web.Application) -> None:
        probe, status_file = self._probe, self._status_file
        assert probe is not None, "the cache hook runs first"

        async def run_probe(_app: web.Application) -> AsyncIterator[None]:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cycle-status")
            tasks = [
                asyncio.create_task(_watch_loop(probe), name="cycle-loop-watch"),
                asyncio.create_task(
                    _write_statuses(probe, status_file, executor), name="cycle-status"
                ),
            ]
            yield
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(executor, _write_status, status_file, probe.status())
            executor.shutdown()

        app.cleanup_ctx.append(run_probe)


def main() -> int:
    """Run the exporter's command line, instrumented when asked to."""
    status_file = os.environ.get(STATUS_FILE_ENV)
    naive = os.environ.get(NAIVE_ENV) == "1"
    hooks = Instrumentation(Path(status_file), naive=naive).hooks() if status_file else None
    switch_interval = os.environ.get(SWITCH_INTERVAL_ENV)
    tuning = ProcessTuning(switch_interval=float(switch_interval) if switch_interval else None)
    profile_path = os.environ.get(PROFILE_ENV)
    if not profile_path:
        return cli.main(sys.argv[1:], hooks=hooks, tuning=tuning)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return cli.main(sys.argv[1:], hooks=hooks, tuning=tuning)
    finally:
        profiler.disable()
        profiler.dump_stats(profile_path)


if __name__ == "__main__":
    sys.exit(main())
