"""Bench only: a `bench/cycle.py` run: the simulator, the API floor, each mode's exporter.

`run` starts the simulator, measures the floor (a poll's calls made by a bare `JobsApi` and
the bare sources, `_cycle_floor`) and then each mode with `ModeRun`, which starts the exporter
through ``bench/_cycle_exporter.py``, drives its quiet and scraped cycles and reads the
wrapper's status file. `cardinality` counts the series of each cardinality option, from the
writer in this process.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Final

import aiohttp
from _cycle_floor import measure_floor
from _cycle_harness import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    cpu_seconds,
    drain_logs,
    peak_rss_mb,
    scrape,
    scrape_until,
    start_simulator,
    stop_process,
    write_config,
)
from _cycle_records import (
    RUNNING_FRACTION,
    SCRAPERS,
    Api,
    Cycle,
    Floor,
    ModeResult,
    Scrape,
    Settings,
    Status,
    count_series,
    read_status,
)
from _process import start_wrapped_exporter

from exporter.catalogue import build_catalogue
from exporter.config import MetricOptions
from exporter.dli.jobmodel import JobState, parse_execute_graph, parse_job
from exporter.simulator import Simulator
from exporter.snapshot import Snapshot
from exporter.writer import ExpositionWriter

BENCH_DIR: Final = Path(__file__).resolve().parent
WRAPPER: Final = BENCH_DIR / "_cycle_exporter.py"
#: Scrapers start this long after the poll's predicted start (polls start on a fixed grid).
SCRAPE_START_DELAY: Final = 0.05
STATUS_POLL: Final = 0.02


async def run(
    settings: Settings, modes: Sequence[str]
) -> tuple[dict[bool, list[Floor]], dict[str, ModeResult]]:
    """Start the simulator, measure the floor and then each mode against it."""
    access_key = "CYCLE" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    project_id = secrets.token_hex(16)
    simulator, url = await start_simulator(settings, access_key, secret_key, project_id)
    api = Api(simulator.pid, url, access_key, secret_key, project_id)
    results = {}
    try:
        print("measuring the API floor ...", file=sys.stderr, flush=True)
        floors = {
            trust_env: await measure_floor(settings, api, trust_env=trust_env)
            for trust_env in (False, True)
        }
        for mode in modes:
            print(f"measuring {mode} ...", file=sys.stderr, flush=True)
            results[mode] = await ModeRun(mode, settings, api).run()
    finally:
        await stop_process(simulator)
    return floors, results


# --- one mode -------------------------------------------------------------------------------------


class ModeRun:
    """The exporter in one mode, from start to SIGTERM."""

    def __init__(self, mode: str, settings: Settings, api: Api) -> None:
        self.mode = mode
        self.settings = settings
        self.api = api
        self.result = ModeResult(mode)
        self._status_file = Path()
        self._process: asyncio.subprocess.Process | None = None
        #: (start, end) wall times of the phases in which scrapers ran.
        self._scraped: list[tuple[float, float]] = []
        #: When the quiet cycles (and the render after the last one) were over.
        self._quiet_until = 0.0

    @property
    def naive(self) -> bool:
        """True in the naive mode."""
        return self.mode == "naive"

    async def run(self) -> ModeResult:
        """Start the exporter, measure, stop it."""
        with tempfile.TemporaryDirectory(prefix="dli-cycle-") as tmp:
            config = Path(tmp) / "config.yaml"
            write_config(config, self.settings, self.api)
            self._status_file = Path(tmp) / "status.json"
            process = self._process = await self._start_exporter(config)
            listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            assert process.stderr is not None
            drain = asyncio.create_task(
                drain_logs(process.stderr, self.result.log_levels, listening)
            )
            try:
                address = await asyncio.wait_for(listening, START_TIMEOUT)
                measured_from = await self._measure(f"{address}/metrics")
                self.result.peak_rss_mb = peak_rss_mb(process.pid)
            finally:
                self.result.exit_code = await stop_process(process)
                await asyncio.wait_for(drain, STOP_TIMEOUT)
            status = await asyncio.to_thread(read_status, self._status_file)
        if status is not None:
            self._note_stalls(status, measured_from)
        return self.result

    async def _start_exporter(self, config: Path) -> asyncio.subprocess.Process:
        env = (
            os.environ
            | self.settings.exporter_env
            | {
                "CYCLE_SECRET_KEY": self.api.secret_key,
                "CYCLE_STATUS_FILE": str(self._status_file),
                "CYCLE_NAIVE": "1" if self.naive else "0",
            }
        )
        if self.settings.profile_dir is not None:
            env["CYCLE_PROFILE"] = str(self.settings.profile_dir / f"cycle-{self.mode}.pstats")
        return await start_wrapped_exporter(WRAPPER, config, env)

    async def _measure(self, url: str) -> float:
        """Warm up, then the quiet and the scraped cycles; returns when measuring began."""
        connector = aiohttp.TCPConnector(limit=SCRAPERS + 1)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            status = await self._wait(
                lambda s: bool(s.polls) and (self.naive or bool(s.renders)), START_TIMEOUT
            )
            if not status.polls[-1].up:
                raise RuntimeError("the first poll failed; see the exporter's log")
            # The first Prometheus scrape: from now on the OpenMetrics bytes are kept fresh.
            await scrape(session, url)
            await self._quiet_cycles(status)
            measured_from = self.result.quiet[0].poll.start
            # Sized after a quiet poll: a naive scraped poll may lack execute graphs.
            await self._exposition(session, url)
            await self._scraped_cycles(session, url)
        return measured_from

    async def _wait(self, ready: Callable[[Status], bool], patience: float) -> Status:
        """The first status for which ``ready`` holds; fails if the exporter exits first."""
        async with asyncio.timeout(patience):
            while True:
                status = await asyncio.to_thread(read_status, self._status_file)
                if status is not None and ready(status):
                    return status
                if self._process is not None and self._process.returncode is not None:
                    raise RuntimeError(f"the exporter exited ({self._process.returncode})")
                await asyncio.sleep(STATUS_POLL)

    @staticmethod
    def _polls_beyond(seen: int) -> Callable[[Status], bool]:
        return lambda status: len(status.polls) > seen

    def _poll_timeout(self) -> float:
        return 3 * self.settings.poll_interval + 30.0

    async def _quiet_cycles(self, status: Status) -> None:
        previous, seen = status.polls[-1], len(status.polls)
        simulator_cpu = cpu_seconds(self.api.pid)
        for _ in range(self.settings.cycles):
            status = await self._wait(self._polls_beyond(seen), self._poll_timeout())
            poll = status.polls[seen]
            now_cpu = cpu_seconds(self.api.pid)
            self.result.quiet.append(
                Cycle(
                    poll,
                    poll.calls_since(previous),
                    poll.call_seconds_since(previous),
                    now_cpu - simulator_cpu,
                )
            )
            previous, seen, simulator_cpu = poll, seen + 1, now_cpu
        # The render after the last quiet poll, so the scraped phase starts from a quiet process.
        await self._wait(lambda s: self.naive or s.render_after(previous) is not None, 60.0)
        self._quiet_until = time.time()
        final = await asyncio.to_thread(read_status, self._status_file)
        assert final is not None
        polls = [status.polls[-1]] + [cycle.poll for cycle in self.result.quiet]
        self.result.gc_per_cycle = [b.gc_seconds - a.gc_seconds for a, b in pairwise(polls)]
        for cycle in self.result.quiet:
            render = final.render_after(cycle.poll)
            if render is not None:
                self.result.renders.append(render)

    async def _scraped_cycles(self, session: aiohttp.ClientSession, url: str) -> None:
        for _ in range(self.settings.cycles):
            await self._scraped_cycle(session, url)

    async def _scraped_cycle(self, session: aiohttp.ClientSession, url: str) -> None:
        """Scrape from the next poll's start until it ended and its exposition was rendered."""
        status = await asyncio.to_thread(read_status, self._status_file)
        assert status is not None
        last = status.polls[-1]
        interval = self.settings.poll_interval
        # Polls start on a fixed grid; the next start still ahead (one may be running now).
        ahead = max(1, math.ceil((time.time() + 0.2 - last.start) / interval))
        predicted = last.start + ahead * interval
        await asyncio.sleep(max(0.0, predicted + SCRAPE_START_DELAY - time.time()))
        stop, records = asyncio.Event(), list[Scrape]()
        scrapers = [
            asyncio.create_task(scrape_until(session, url, stop, records)) for _ in range(SCRAPERS)
        ]
        started = time.time()
        try:
            status = await self._wait(
                lambda s: s.poll_started_after(predicted - interval / 2) is not None,
                self._poll_timeout(),
            )
            poll = status.poll_started_after(predicted - interval / 2)
            assert poll is not None
            seen = status.polls.index(poll)
            rendered = poll.end
            if not self.naive:
                status = await self._wait(lambda s: s.render_after(poll) is not None, 60.0)
                render = status.render_after(poll)
                assert render is not None
                rendered = render.end
        finally:
            stop.set()
            await asyncio.gather(*scrapers)
        self._scraped.append((started, time.time()))
        before = status.polls[seen - 1]
        self.result.loaded.append(
            Cycle(poll, poll.calls_since(before), poll.call_seconds_since(before))
        )
        self.result.polling += [r for r in records if poll.start <= r.issued <= poll.end]
        self.result.rendering += [r for r in records if poll.end < r.issued <= rendered]

    async def _exposition(self, session: aiohttp.ClientSession, url: str) -> None:
        record, body = await scrape(session, url)
        if record.problem is not None:
            raise RuntimeError(f"scrape failed: {record.problem}")
        plain = await asyncio.to_thread(gzip.decompress, body)
        self.result.idle_scrape_ms = record.seconds * 1000
        self.result.gzip_bytes, self.result.plain_bytes = len(body), len(plain)
        self.result.series = await asyncio.to_thread(count_series, plain)

    def _note_stalls(self, status: Status, since: float) -> None:
        """The longest loop stalls and GC pauses from the first measured poll on."""
        result = self.result
        late = {sec: ms for sec, ms in status.late_ms_by_second.items() if sec >= int(since)}
        result.stall_ms = max(late.values(), default=0.0)
        quiet = (ms for sec, ms in late.items() if sec <= self._quiet_until)
        result.quiet_stall_ms = max(quiet, default=0.0)
        result.quiet_rss_mb = max(
            (
                mb
                for sec, mb in status.rss_mb_by_second.items()
                if since <= sec <= self._quiet_until
            ),
            default=0.0,
        )
        pauses = [(ms, at, gen) for at, ms, gen in status.gc_pauses if at >= since]
        result.gc_pause_ms = max((ms for ms, _at, _gen in pauses), default=0.0)
        events = [(ms, at) for at, ms in status.stalls if at >= since]
        if not events:
            return
        ms, at = max(events)
        result.stall_where = f"{ms:.0f} ms {self._phase(status, at)}"
        # The monitor notices a stall when it ends: a collection ending within it caused it.
        overlapping = [p for p in pauses if at - ms / 1000 - 0.01 <= p[1] <= at + 0.01]
        if overlapping:
            gc_ms, _at, generation = max(overlapping)
            result.stall_where += f", with a {gc_ms:.0f} ms generation-{generation} GC in it"

    def _phase(self, status: Status, at: float) -> str:
        phases = [
            name
            for name, spans in (
                ("poll", [(p.start, p.end) for p in status.polls]),
                ("render", [(r.start, r.end) for r in status.renders]),
                ("scrapers", self._scraped),
            )
            if any(start <= at <= end for start, end in spans)
        ]
        return "during " + " + ".join(phases) if phases else "between polls"


# --- cardinality options --------------------------------------------------------------------


def synthetic_snapshot(jobs: int, seed: int) -> Snapshot:
    """``jobs`` simulated jobs (a third running) as one poll would see them."""
    sim = Simulator(credentials={}, seed=seed, lifecycle=False)
    now_ms = sim.now_ms()
    states = []
    for sim_job in sim.populate("bench", jobs, running_fraction=RUNNING_FRACTION):
        job = parse_job(sim_job.to_api(show_detail=True, now_ms=now_ms))
        assert job is not None
        graph = None
        if job.is_running:
            payload = {"is_success": "true", "execute_graph": sim_job.execute_graph(now_ms)}
            graph = parse_execute_graph(payload)
        states.append(JobState(job, graph))
    return Snapshot(
        "bench",
        tuple(states),
        up=True,
        polled=True,
        last_success_time=time.time(),
        poll_duration_seconds=1.0,
    )


def cardinality(jobs: int, seed: int) -> list[tuple[MetricOptions, int, int]]:
    """(options, series, plain OpenMetrics bytes) for each cardinality option combination."""
    snapshot = synthetic_snapshot(jobs, seed)
    rows = []
    for labels in (True, False):
        for state_sets in ("all", "current"):
            options = MetricOptions(job_info_labels=labels, state_sets=state_sets)
            body = ExpositionWriter(build_catalogue(options)).render([snapshot], openmetrics=True)
            rows.append((options, count_series(body), len(body)))
    return rows
