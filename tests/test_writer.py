"""The fast exposition writer against prometheus_client's rendering, and the exposition cache."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.catalogue import CATALOGUE, build_catalogue
from exporter.collector import render
from exporter.config import MetricOptions
from exporter.dli.jobmodel import (
    FLINK_STATES,
    JOB_STATUSES,
    ExecuteGraph,
    FlinkJob,
    JobConfig,
    JobState,
)
from exporter.exposition import ExpositionCache
from exporter.snapshot import Snapshot
from exporter.writer import ExpositionWriter
from tests.test_collector import golden_snapshots, promtool_check

EOF_LINE = b"# EOF\n"
OPTIONS = [
    MetricOptions(),
    MetricOptions(job_info_labels=False),
    MetricOptions(state_sets="current"),
    MetricOptions(job_info_labels=False, state_sets="current"),
]


def reference(snapshots: list[Snapshot], options: MetricOptions, openmetrics: bool) -> bytes:
    """What prometheus_client renders, without the OpenMetrics terminator."""
    body = render(snapshots, openmetrics=openmetrics, catalogue=build_catalogue(options))
    return body.removesuffix(EOF_LINE)


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_writer_matches_prometheus_client_byte_for_byte(
    options: MetricOptions, openmetrics: bool
) -> None:
    snapshots = golden_snapshots()
    writer = ExpositionWriter(build_catalogue(options))

    assert writer.render(snapshots, openmetrics=openmetrics) == reference(
        snapshots, options, openmetrics
    )


texts = st.text(max_size=12)
optional_ints = st.none() | st.integers(min_value=-(2**40), max_value=2**40)
jobs = st.builds(
    FlinkJob,
    job_id=st.integers(min_value=0, max_value=2**53),
    name=st.none() | texts,
    job_type=st.none() | texts,
    status=st.none() | st.sampled_from(JOB_STATUSES) | texts,
    queue_name=st.none() | texts,
    user_name=st.none() | texts,
    create_time_ms=optional_ints,
    start_time_ms=optional_ints,
    duration_ms=optional_ints,
    restart_times=optional_ints,
    has_savepoint=st.none() | st.booleans(),
    config=st.builds(JobConfig, cu_number=optional_ints, real_cu_number=optional_ints),
)
graphs = st.none() | st.builds(
    ExecuteGraph,
    state=st.none() | st.sampled_from(FLINK_STATES) | texts,
    duration_ms=optional_ints,
    is_stoppable=st.none() | st.booleans(),
)
snapshots = st.builds(
    Snapshot,
    target=texts,
    jobs=st.lists(st.builds(JobState, jobs, graphs), max_size=4).map(tuple),
    up=st.booleans(),
    polled=st.booleans(),
    last_success_time=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    poll_duration_seconds=st.none() | st.floats(min_value=0, max_value=1e6),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(snapshots, max_size=3, unique_by=lambda s: s.target),
    st.sampled_from(OPTIONS),
    st.booleans(),
)
def test_writer_matches_prometheus_client_for_any_snapshots(
    generated: list[Snapshot], options: MetricOptions, openmetrics: bool
) -> None:
    writer = ExpositionWriter(build_catalogue(options))

    assert writer.render(generated, openmetrics=openmetrics) == reference(
        generated, options, openmetrics
    )


def test_a_replaced_snapshot_is_rewritten_and_a_removed_target_dropped() -> None:
    prod, staging, *_ = golden_snapshots()
    writer = ExpositionWriter()
    first = writer.render([prod, staging])
    changed = dataclasses.replace(prod, jobs=prod.jobs[:1])

    second = writer.render([changed, staging])
    third = writer.render([changed])

    assert second == reference([changed, staging], MetricOptions(), False)
    assert second != first
    assert third == reference([changed], MetricOptions(), False)
    assert b'target="staging"' not in third


def test_current_state_only_publishes_one_status_series_per_job() -> None:
    body = ExpositionWriter(build_catalogue(MetricOptions(state_sets="current"))).render(
        golden_snapshots()
    )

    status_lines = [line for line in body.splitlines() if line.startswith(b"dli_job_status{")]
    assert all(line.endswith(b" 1.0") for line in status_lines)
    assert len(status_lines) == 6  # the six jobs with a status in the golden set


def test_without_info_labels_job_info_keeps_only_the_identity() -> None:
    body = ExpositionWriter(build_catalogue(MetricOptions(job_info_labels=False))).render(
        golden_snapshots()
    )

    info = [line for line in body.splitlines() if line.startswith(b"dli_job_info{")]
    assert info and all(b"queue_name" not in line and b"job_type" not in line for line in info)


@pytest.mark.parametrize("options", OPTIONS[1:], ids=repr)
def test_reduced_catalogues_pass_promtool(options: MetricOptions) -> None:
    promtool_check(ExpositionWriter(build_catalogue(options)).render(golden_snapshots()))


def test_the_default_catalogue_is_unchanged_by_default_options() -> None:
    assert build_catalogue(MetricOptions()) == CATALOGUE


class GatedRender:
    """A render function that blocks until released, to observe the cache mid-render."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()

    def __call__(self, openmetrics: bool) -> bytes:
        self.calls += 1
        assert self.gate.wait(10)
        return gzip.compress(f"render {self.calls} openmetrics={openmetrics}\n".encode())


async def test_scrapes_get_the_previous_exposition_while_a_new_one_renders() -> None:
    render_fn = GatedRender()
    cache = ExpositionCache(render_fn)
    render_fn.gate.set()
    first = await cache.get()
    render_fn.gate.clear()

    cache.invalidate()
    refreshing = asyncio.create_task(cache.refresh())
    while render_fn.calls < 2:  # the refresh is now blocked inside the render
        await asyncio.sleep(0.01)
    during = await cache.get()
    render_fn.gate.set()
    await refreshing
    after = await cache.get()

    assert first.plain() == during.plain() == b"render 1 openmetrics=False\n"
    assert after.plain() == b"render 2 openmetrics=False\n"
    assert cache.serves_generation(cache.generation)


async def test_refresh_renders_the_formats_scrapers_asked_for() -> None:
    render_fn = GatedRender()
    render_fn.gate.set()
    cache = ExpositionCache(render_fn)
    await cache.get(openmetrics=True)
    calls = render_fn.calls

    cache.invalidate()
    await cache.refresh()

    assert render_fn.calls == calls + 1  # OpenMetrics (asked for) only, not the text format
    assert cache.serves_generation(cache.generation)


async def test_the_exposition_is_kept_compressed_and_served_plain_on_request() -> None:
    cache = ExpositionCache(lambda openmetrics: gzip.compress(b"# HELP x y\nx 1.0\n" * 1000))
    assert cache.serves_generation(cache.generation)  # nothing asked for yet: nothing stale

    rendered = await cache.get()

    assert rendered.plain() == b"# HELP x y\nx 1.0\n" * 1000
    assert rendered.content_type.startswith("text/plain")


async def test_a_scrape_after_a_change_never_waits_for_the_render() -> None:
    """Between a change and its refresh starting, a scrape once rendered it itself (5.6 s at
    30,000 jobs); it gets the previous bytes, and the render starts in the background."""
    render_fn = GatedRender()
    cache = ExpositionCache(render_fn)
    render_fn.gate.set()
    first = await cache.get()
    render_fn.gate.clear()

    cache.invalidate()  # no refresh asked for: only the scrape can notice
    during = await asyncio.wait_for(cache.get(), 5)  # a hang guard, not a timing
    while render_fn.calls < 2:  # it started the render it did not wait for
        await asyncio.sleep(0.01)
    render_fn.gate.set()
    while not cache.serves_generation(cache.generation):
        await asyncio.sleep(0.01)

    assert during is first
    assert (await cache.get()).plain() == b"render 2 openmetrics=False\n"


class SlowRender(GatedRender):
    """A render that takes a while, so the next one waits for its share of the time."""

    def __call__(self, openmetrics: bool) -> bytes:
        time.sleep(0.05)
        return super().__call__(openmetrics)


async def test_changes_within_the_coalescing_window_share_one_render() -> None:
    render_fn = SlowRender()
    render_fn.gate.set()
    cache = ExpositionCache(render_fn, coalesce=1.0)
    await cache.get(openmetrics=True)

    cache.invalidate()
    first = asyncio.create_task(cache.refresh())
    await asyncio.sleep(0.1)  # uncoalesced, the first refresh would be rendering by now
    cache.invalidate()
    second = asyncio.create_task(cache.refresh())
    await asyncio.gather(first, second)

    assert render_fn.calls == 2  # the first render, then one for both changes
    assert cache.serves_generation(cache.generation)


def test_a_job_listed_twice_is_written_once_like_the_reference() -> None:
    prod, *_ = golden_snapshots()
    twice = dataclasses.replace(prod, jobs=prod.jobs + prod.jobs[:1])
    writer = ExpositionWriter()

    body = writer.render([twice])

    assert body == reference([twice], MetricOptions(), False)
    assert writer.render([twice]) == body  # served from the cached lines the second time


def test_a_value_that_cannot_be_written_leaves_the_other_targets_served() -> None:
    """A snapshot made without the parser (which repairs such text) still cannot blank others."""
    bad = Snapshot(
        target="bad",
        jobs=(JobState(FlinkJob(job_id=1, name="lone \ud800", status="job_running")),),
        up=True,
        polled=True,
    )
    good = Snapshot(
        target="good",
        jobs=(JobState(FlinkJob(job_id=2, name="fine", status="job_running")),),
        up=True,
        polled=True,
    )
    failed: list[str] = []
    writer = ExpositionWriter(on_error=failed.append)

    text = writer.render([bad, good]).decode()

    assert "dli_job_info{" in text and 'job_name="fine"' in text
    assert 'dli_up{target="bad"} 1.0' in text  # the bad target's other families are served
    assert "lone" not in text
    assert failed and set(failed) == {"bad"}
