"""The metric catalogue, its exposition (golden files, promtool, parsers) and self-metrics."""

from __future__ import annotations

import difflib
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.catalogue import CATALOGUE
from exporter.collector import SnapshotCollector, render
from exporter.dli.cloudeye import CLOUD_EYE, METRICS, CloudEyeData
from exporter.dli.jobmodel import (
    FLINK_STATES,
    JOB_STATUSES,
    ExecuteGraph,
    FlinkJob,
    JobConfig,
    JobState,
)
from exporter.dli.pools import ELASTIC_RESOURCE_POOLS, ElasticResourcePool
from exporter.dli.queues import QUEUES, Queue
from exporter.metricspec import JOB_LABELS, TARGET_LABELS, MetricSpec
from exporter.snapshot import Snapshot, SourceResult
from exporter.telemetry import ApiMetrics, register_build_info

GOLDEN_DIR = Path(__file__).parent / "golden"
TRICKY_NAME = 'a"b\\c\nd ✓ 作业'

#: The design's metric table: exposed name -> type. The contract; keep in step with design.md.
DESIGN_METRICS = {
    "dli_job_info": "gauge",
    "dli_job_status": "gauge",
    "dli_job_flink_state": "gauge",
    "dli_job_duration_seconds": "gauge",
    "dli_job_restarts_total": "counter",
    "dli_job_create_time_seconds": "gauge",
    "dli_job_start_time_seconds": "gauge",
    "dli_job_has_savepoint": "gauge",
    "dli_job_stoppable": "gauge",
    "dli_job_compute_units": "gauge",
    "dli_job_manager_compute_units": "gauge",
    "dli_job_actual_compute_units": "gauge",
    "dli_job_parallelism": "gauge",
    "dli_job_taskmanager_compute_units": "gauge",
    "dli_job_taskmanager_slots": "gauge",
    "dli_job_executors": "gauge",
    "dli_job_executor_compute_units": "gauge",
    "dli_up": "gauge",
    "dli_last_poll_success_timestamp_seconds": "gauge",
    "dli_poll_duration_seconds": "gauge",
    "dli_api_requests_total": "counter",
    "dli_api_request_duration_seconds": "histogram",
    "dli_exporter_build_info": "gauge",
}

#: Job metrics whose every sample comes from an optional field.
OPTIONAL_JOB_METRICS = [
    spec.name for spec in CATALOGUE if spec.labels[:3] == JOB_LABELS and spec.name != "dli_job_info"
]


# --- fixtures -------------------------------------------------------------------------------


def running_job() -> JobState:
    """A running job with every field known and an execution graph."""
    return JobState(
        job=FlinkJob(
            job_id=101,
            name=TRICKY_NAME,
            job_type="flink_opensource_sql_job",
            status="job_running",
            queue_name="stream_q",
            user_name="ops",
            run_mode="exclusive_cluster",
            create_time_ms=1_699_000_000_123,
            start_time_ms=1_699_000_100_000,
            duration_ms=5_000,
            restart_times=3,
            has_savepoint=True,
            config=JobConfig(
                cu_number=8,
                manager_cu_number=1,
                real_cu_number=6,
                parallel_number=4,
                tm_cus=1,
                tm_slot_num=2,
                executor_number=3,
                executor_cu_number=2,
                flink_version="1.15",
                checkpoint_enabled=True,
                checkpoint_interval=30,
                restart_when_exception=True,
                resume_max_num=-1,
            ),
        ),
        graph=ExecuteGraph(
            state="RUNNING",
            duration_ms=900_500,
            start_time_ms=1_699_000_100_000,
            is_stoppable=False,
        ),
    )


def golden_sources() -> dict[str, SourceResult[object]]:
    """Every further resource's data for the golden target: read, converted, some missing."""
    now = 1_700_000_000.0
    point = [(float(i + 1) * 1.5, now - 90) for i in range(len(METRICS))]
    point[3] = (math.nan, math.nan)  # no datapoint for this metric
    stale = [(7.0, now - 301)] * len(METRICS)  # older than the 5-minute bound: not published
    cloud_eye = CloudEyeData({101: tuple(point), 104: tuple(stale)}, now, now - 90, 300.0)
    queues = (
        Queue(
            "stream_q",
            queue_type="general",
            resource_mode="dedicated",
            charging_mode="pay_per_use",
            elastic_resource_pool="pool_a",
            cu_count=16,
            used_cu=14.5,
            cu_scale_out_limit=32,
            cu_scale_in_limit=16,
            is_restarting=False,
        ),
        Queue("bare_q"),  # every field but the name unknown
    )
    pools = (
        ElasticResourcePool(1, "pool_a", "SCALING", 64, 16, 48, 48, 16, failed=False),
        ElasticResourcePool(2, "pool_new_status", "FROZEN", failed=True),
    )
    return {
        CLOUD_EYE.name: SourceResult(cloud_eye, ok=True, last_success_time=now),
        QUEUES.name: SourceResult(queues, ok=True, last_success_time=now),
        ELASTIC_RESOURCE_POOLS.name: SourceResult(
            pools, ok=False, last_success_time=now - 60, error="list_elastic_resource_pools: 503"
        ),
    }


def golden_snapshots() -> list[Snapshot]:
    """One of each case the exposition must get right."""
    prod = Snapshot(
        target="prod",
        jobs=(
            running_job(),
            JobState(FlinkJob(job_id=102)),  # every field unknown
            JobState(
                FlinkJob(
                    job_id=103,
                    name="brand-new-status",
                    status="job_quantum_state",
                    start_time_ms=0,  # never started
                    has_savepoint=False,
                )
            ),
            JobState(
                FlinkJob(
                    job_id=104,
                    name="odd-flink-state",
                    status="job_running",
                    duration_ms=42_000,
                    config=JobConfig(cu_number=2, real_cu_number=0),
                ),
                ExecuteGraph(state="RESCALING", is_stoppable=True),
            ),
            JobState(
                FlinkJob(
                    job_id=105,
                    name="failed-with-reason",
                    status="job_running_exception",
                    restart_times=9,
                    config=JobConfig(
                        checkpoint_enabled=False, restart_when_exception=True, resume_max_num=10
                    ),
                    status_desc="java.lang.RuntimeException: sink failed "
                    "Caused by: org.apache.kafka.common.errors.TimeoutException: expired",
                )
            ),
            JobState(FlinkJob(job_id=106, name="failed-quietly", status="job_submit_fail")),
        ),
        up=True,
        polled=True,
        last_success_time=1_700_000_000.5,
        poll_duration_seconds=1.25,
        sources=golden_sources(),
    )
    failing = Snapshot(
        target="staging",
        jobs=(JobState(FlinkJob(job_id=201, name="kept-from-last-poll", status="job_running")),),
        up=False,
        polled=True,
        last_success_time=1_699_999_000.0,
        poll_duration_seconds=10.0,
        last_error="listing jobs: timeout",
    )
    never_up = Snapshot(target="broken", up=False, polled=True, poll_duration_seconds=0.3)
    not_polled = Snapshot(target="fresh")
    return [prod, failing, never_up, not_polled]


def samples(exposition: bytes) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a text-format exposition as (name, labels, value)."""
    return [
        (sample.name, sample.labels, sample.value)
        for family in parse_text(exposition.decode())
        for sample in family.samples
    ]


def samples_of(exposition: bytes, name: str, **labels: str) -> list[float]:
    """Values of the samples named ``name`` whose labels include ``labels``."""
    return [
        value
        for sample_name, sample_labels, value in samples(exposition)
        if sample_name == name and labels.items() <= sample_labels.items()
    ]


def exposed_types(exposition: bytes) -> dict[str, str]:
    """``# TYPE`` lines of a text-format exposition: name -> type."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition.decode(), flags=re.M))


# --- golden files -----------------------------------------------------------------------------


def check_golden(name: str, actual: bytes) -> None:
    """Compare ``actual`` with a golden file byte for byte; ``UPDATE_GOLDEN=1`` rewrites it."""
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
        return
    assert path.exists(), f"{path} is missing; run the tests with UPDATE_GOLDEN=1 to create it"
    expected = path.read_bytes()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.decode().splitlines(keepends=True),
            actual.decode().splitlines(keepends=True),
            fromfile=str(path),
            tofile="rendered",
        )
        pytest.fail(
            f"exposition differs from {path.name} (UPDATE_GOLDEN=1 accepts it):\n{''.join(diff)}",
            pytrace=False,
        )


def test_text_exposition_matches_golden_file() -> None:
    check_golden("metrics.prom", render(golden_snapshots()))


def test_openmetrics_exposition_matches_golden_file() -> None:
    check_golden("metrics.openmetrics", render(golden_snapshots(), openmetrics=True))


def test_openmetrics_exposition_ends_with_eof() -> None:
    assert render(golden_snapshots(), openmetrics=True).endswith(b"# EOF\n")
    assert b"# EOF" not in render(golden_snapshots())


def test_empty_exposition_still_describes_every_family() -> None:
    assert list(exposed_types(render([]))) == [
        spec.name.removesuffix("_total") + ("_total" if spec.kind == "counter" else "")
        for spec in CATALOGUE
    ]
    assert samples(render([])) == []


def test_render_uses_a_private_registry() -> None:
    text = render(golden_snapshots()).decode()
    assert "python_info" not in text
    assert "process_" not in text


# --- values -----------------------------------------------------------------------------------


def test_running_job_values() -> None:
    text = render(golden_snapshots())
    job = {"target": "prod", "job_id": "101"}
    expected = {
        "dli_job_duration_seconds": 900.5,  # execute-graph wins over the list's 5 s
        "dli_job_restarts_total": 3.0,
        "dli_job_create_time_seconds": 1_699_000_000.123,
        "dli_job_start_time_seconds": 1_699_000_100.0,
        "dli_job_has_savepoint": 1.0,
        "dli_job_stoppable": 0.0,
        "dli_job_compute_units": 8.0,
        "dli_job_manager_compute_units": 1.0,
        "dli_job_actual_compute_units": 6.0,
        "dli_job_parallelism": 4.0,
        "dli_job_taskmanager_compute_units": 1.0,
        "dli_job_taskmanager_slots": 2.0,
        "dli_job_executors": 3.0,
        "dli_job_executor_compute_units": 2.0,
    }
    for name, value in expected.items():
        assert samples_of(text, name, **job) == [value], name
    assert samples_of(
        text,
        "dli_job_info",
        job_name=TRICKY_NAME,
        job_type="flink_opensource_sql_job",
        queue_name="stream_q",
        user_name="ops",
        run_mode="exclusive_cluster",
        flink_version="1.15",
        **job,
    ) == [1.0]


def test_status_is_a_state_set_over_the_documented_statuses() -> None:
    text = render(golden_snapshots())
    by_status = {
        labels["status"]: value
        for name, labels, value in samples(text)
        if name == "dli_job_status" and labels["job_id"] == "101"
    }
    assert list(by_status) == list(JOB_STATUSES)
    assert {status for status, value in by_status.items() if value == 1.0} == {"job_running"}


def test_unknown_status_gets_one_extra_series() -> None:
    text = render(golden_snapshots())
    by_status = {
        labels["status"]: value
        for name, labels, value in samples(text)
        if name == "dli_job_status" and labels["job_id"] == "103"
    }
    assert list(by_status) == [*JOB_STATUSES, "job_quantum_state"]
    assert {status for status, value in by_status.items() if value == 1.0} == {"job_quantum_state"}


def test_flink_state_set_only_for_jobs_with_a_graph_state() -> None:
    text = render(golden_snapshots())
    jobs = {labels["job_id"] for name, labels, _ in samples(text) if name == "dli_job_flink_state"}
    assert jobs == {"101", "104"}
    odd = {
        labels["state"]: value
        for name, labels, value in samples(text)
        if name == "dli_job_flink_state" and labels["job_id"] == "104"
    }
    assert list(odd) == [*FLINK_STATES, "RESCALING"]
    assert sum(odd.values()) == 1.0
    assert odd["RESCALING"] == 1.0


def test_graph_without_state_gives_no_flink_state() -> None:
    state = JobState(FlinkJob(job_id=1, status="job_running"), ExecuteGraph(duration_ms=1000))
    text = render([Snapshot("t", (state,), up=True, polled=True)])
    assert samples_of(text, "dli_job_flink_state") == []
    assert samples_of(text, "dli_job_duration_seconds") == [1.0]


def test_list_duration_is_the_fallback() -> None:
    assert samples_of(render(golden_snapshots()), "dli_job_duration_seconds", job_id="104") == [
        42.0
    ]


@pytest.mark.parametrize(
    ("real", "configured", "expected"),
    [(6, 8, [6.0]), (0, 8, [8.0]), (0, None, []), (None, 8, []), (None, None, [])],
)
def test_actual_compute_units(
    real: int | None, configured: int | None, expected: list[float]
) -> None:
    job = FlinkJob(job_id=1, config=JobConfig(cu_number=configured, real_cu_number=real))
    text = render([Snapshot("t", (JobState(job),), up=True, polled=True)])
    assert samples_of(text, "dli_job_actual_compute_units") == expected


@pytest.mark.parametrize("start", [0, None])
def test_start_time_omitted_when_zero_or_unknown(start: int | None) -> None:
    job = FlinkJob(job_id=1, start_time_ms=start, create_time_ms=1000)
    text = render([Snapshot("t", (JobState(job),), up=True, polled=True)])
    assert samples_of(text, "dli_job_start_time_seconds") == []
    assert samples_of(text, "dli_job_create_time_seconds") == [1.0]


@pytest.mark.parametrize("name", OPTIONAL_JOB_METRICS)
def test_absent_fields_produce_no_sample(name: str) -> None:
    text = render(golden_snapshots())
    assert samples_of(text, name, job_id="102") == []


def test_job_with_every_field_unknown_still_has_info() -> None:
    text = render(golden_snapshots())
    assert samples_of(
        text,
        "dli_job_info",
        job_id="102",
        job_name="",
        job_type="",
        queue_name="",
        user_name="",
        run_mode="",
        flink_version="",
    ) == [1.0]


def test_false_flags_are_published_as_zero() -> None:
    text = render(golden_snapshots())
    assert samples_of(text, "dli_job_has_savepoint", job_id="103") == [0.0]
    assert samples_of(text, "dli_job_stoppable", job_id="104") == [1.0]


# --- targets --------------------------------------------------------------------------------


def test_target_series() -> None:
    text = render(golden_snapshots())
    assert samples_of(text, "dli_up", target="prod") == [1.0]
    assert samples_of(text, "dli_up", target="staging") == [0.0]
    assert samples_of(text, "dli_up", target="broken") == [0.0]
    assert samples_of(text, "dli_last_poll_success_timestamp_seconds", target="staging") == [
        1_699_999_000.0
    ]
    assert samples_of(text, "dli_last_poll_success_timestamp_seconds", target="broken") == []
    assert samples_of(text, "dli_poll_duration_seconds", target="broken") == [0.3]
    assert samples_of(text, "dli_target_jobs", target="prod") == [6.0]
    assert samples_of(text, "dli_target_jobs", target="staging") == [1.0]
    assert samples_of(text, "dli_target_jobs", target="broken") == [0.0]


def test_failed_target_keeps_its_previous_jobs() -> None:
    text = render(golden_snapshots())
    assert samples_of(text, "dli_job_status", target="staging", status="job_running") == [1.0]


def test_target_not_yet_polled_has_no_series() -> None:
    text = render(golden_snapshots())
    assert [s for s in samples(text) if s[1].get("target") == "fresh"] == []


# --- series come and go with the snapshots ---------------------------------------------------


def test_vanished_job_and_target_leave_no_series() -> None:
    current: list[Snapshot] = golden_snapshots()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: current))
    assert (
        registry.get_sample_value(
            "dli_job_restarts_total", {"target": "prod", "job_id": "101", "job_name": TRICKY_NAME}
        )
        == 3.0
    )

    prod = current[0]
    current = [Snapshot("prod", prod.jobs[1:], up=True, polled=True), current[1]]
    text = generate_latest(registry)
    assert [s for s in samples(text) if s[1].get("job_id") == "101"] == []
    assert samples_of(text, "dli_job_info", job_id="102") == [1.0]
    assert samples_of(text, "dli_up", target="staging") == [0.0]

    current = [current[0]]
    text = generate_latest(registry)
    assert [s for s in samples(text) if s[1].get("target") == "staging"] == []
    assert samples_of(text, "dli_up", target="prod") == [1.0]


def test_collector_can_share_a_registry_with_self_metrics() -> None:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(golden_snapshots))
    ApiMetrics(registry)
    register_build_info(registry, "1.2.3")
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(SnapshotCollector(golden_snapshots))


# --- escaping --------------------------------------------------------------------------------

LABEL_VALUES = [TRICKY_NAME, "", "\\", "\\n", 'end"', "tab\tand\r", '{a="b",c}', "😀 emoji"]


def job_names_after_round_trip(name: str, openmetrics: bool) -> set[str]:
    job = FlinkJob(job_id=1, name=name, status="job_running", queue_name=name, user_name=name)
    exposition = render(
        [Snapshot(name, (JobState(job),), up=True, polled=True)], openmetrics=openmetrics
    )
    parse = parse_openmetrics if openmetrics else parse_text
    values: set[str] = set()
    for family in parse(exposition.decode()):
        for sample in family.samples:
            values.update(v for k, v in sample.labels.items() if k in _ROUND_TRIP_LABELS)
    return values


_ROUND_TRIP_LABELS = {"target", "job_name", "queue_name", "user_name"}


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
@pytest.mark.parametrize("name", LABEL_VALUES)
def test_label_values_round_trip(name: str, openmetrics: bool) -> None:
    assert job_names_after_round_trip(name, openmetrics) == {name}


@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=20))
def test_any_label_value_round_trips(name: str) -> None:
    assert job_names_after_round_trip(name, openmetrics=False) == {name}
    assert job_names_after_round_trip(name, openmetrics=True) == {name}


# --- promtool --------------------------------------------------------------------------------


def promtool_check(exposition: bytes) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool not found on PATH; install it with `apt-get install prometheus` "
            "(or scripts/install-tools.sh)"
        )
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, f"promtool check metrics failed:\n{output}"
    assert output.strip() == "", f"promtool check metrics complained:\n{output}"


def test_promtool_accepts_the_exposition() -> None:
    promtool_check(render(golden_snapshots()))


def test_promtool_accepts_the_self_metrics() -> None:
    registry = CollectorRegistry()
    api = ApiMetrics(registry)
    api.observe("prod", "list_jobs", "200", 0.2)
    api.observe("prod", "execute_graph", "timeout", 10.0)
    register_build_info(registry, "1.2.3")
    promtool_check(generate_latest(registry))


# --- self-metrics ----------------------------------------------------------------------------


def test_api_metrics_count_and_time_requests() -> None:
    registry = CollectorRegistry()
    api = ApiMetrics(registry)
    api.observe("prod", "list_jobs", "200", 0.02)
    api.observe("prod", "list_jobs", "200", 0.3)
    api.observe("prod", "execute_graph", "timeout", 12.0)
    api.observe("dev", "iam_token", "error", 0.005)
    text = generate_latest(registry)

    def requests(target: str, operation: str, code: str) -> list[float]:
        return samples_of(
            text, "dli_api_requests_total", target=target, operation=operation, code=code
        )

    assert requests("prod", "list_jobs", "200") == [2.0]
    assert requests("prod", "execute_graph", "timeout") == [1.0]
    assert requests("dev", "iam_token", "error") == [1.0]
    histogram = {"target": "prod", "operation": "list_jobs"}
    assert samples_of(text, "dli_api_request_duration_seconds_count", **histogram) == [2.0]
    assert samples_of(text, "dli_api_request_duration_seconds_sum", **histogram) == [
        pytest.approx(0.32)
    ]
    assert samples_of(text, "dli_api_request_duration_seconds_bucket", le="0.025", **histogram) == [
        1.0
    ]
    assert samples_of(text, "dli_api_request_duration_seconds_bucket", le="30.0", **histogram) == [
        2.0
    ]
    timeouts = {"target": "prod", "operation": "execute_graph"}
    assert samples_of(text, "dli_api_request_duration_seconds_bucket", le="10.0", **timeouts) == [
        0.0
    ]


def test_api_metrics_buckets_span_api_latencies() -> None:
    registry = CollectorRegistry()
    ApiMetrics(registry).observe("t", "list_jobs", "200", 1.0)
    bounds = [
        labels["le"]
        for name, labels, _ in samples(generate_latest(registry))
        if name == "dli_api_request_duration_seconds_bucket"
    ]
    assert bounds[0] == "0.01"
    assert bounds[-2:] == ["30.0", "+Inf"]


def test_forget_target_removes_only_that_target() -> None:
    registry = CollectorRegistry()
    api = ApiMetrics(registry)
    for target in ("keep", "drop"):
        api.observe(target, "list_jobs", "200", 0.1)
        api.observe(target, "execute_graph", "503", 0.2)
    api.forget_target("drop")
    api.forget_target("never-seen")
    text = generate_latest(registry)
    targets = {labels["target"] for _, labels, _ in samples(text) if "target" in labels}
    assert targets == {"keep"}
    assert samples_of(text, "dli_api_requests_total", target="keep", code="503") == [1.0]

    api.observe("drop", "list_jobs", "200", 0.1)  # a re-added target starts from zero
    assert samples_of(generate_latest(registry), "dli_api_requests_total", target="drop") == [1.0]


def test_build_info() -> None:
    registry = CollectorRegistry()
    register_build_info(registry, "1.2.3")
    [(name, labels, value)] = samples(generate_latest(registry))
    assert (name, labels["version"], value) == ("dli_exporter_build_info", "1.2.3", 1.0)
    assert re.fullmatch(r"3\.\d+\.\d+.*", labels["python_version"])


# --- the contract ------------------------------------------------------------------------------


def all_exposed_types() -> dict[str, str]:
    registry = CollectorRegistry()
    ApiMetrics(registry).observe("t", "list_jobs", "200", 0.1)
    register_build_info(registry, "0")
    return exposed_types(render([])) | exposed_types(generate_latest(registry))


def test_every_design_metric_is_exposed_with_its_type() -> None:
    exposed = all_exposed_types()
    assert {name: exposed.get(name) for name in DESIGN_METRICS} == DESIGN_METRICS


def test_catalogue_names_are_unique() -> None:
    names = [spec.name for spec in CATALOGUE]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.name)
def test_catalogue_labels(spec: MetricSpec) -> None:
    assert "job" not in spec.labels
    if spec.name.startswith("dli_job_"):
        assert spec.labels[:3] == JOB_LABELS
    elif spec.name.startswith("dli_source_"):
        assert spec.labels == (*TARGET_LABELS, "source")
    elif spec.name.startswith("dli_queue_"):
        assert spec.labels[:2] == (*TARGET_LABELS, "queue_name")
    elif spec.name.startswith("dli_elastic_resource_pool_"):
        assert spec.labels[:2] == (*TARGET_LABELS, "elastic_resource_pool")
    else:
        assert spec.labels == TARGET_LABELS


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.name)
def test_help_is_one_clear_line(spec: MetricSpec) -> None:
    assert "\n" not in spec.help
    assert spec.help.endswith(".")
    assert 20 <= len(spec.help) <= 160
    if spec.name.endswith("_seconds"):
        assert "seconds" in spec.help
