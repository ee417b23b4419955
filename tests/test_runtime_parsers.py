"""The runtime sources' parsers and rules, without a server: units, odd values, reasons, config."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import ConfigError, Sources, load_config
from exporter.dli.cloudeye import METRIC_INDEX, METRICS, UNITS, parse_metric_data
from exporter.dli.failure import MAX_REASON_CHARS, failure_reason, failure_text
from exporter.dli.pools import parse_pool_page
from exporter.dli.queues import parse_queues
from exporter.dli.transport import ResponseParseError
from exporter.values import ValueIssues


def answer(metric: str, unit: object, points: list[object], job: object = "42") -> object:
    return {
        "metrics": [
            {
                "namespace": "SYS.DLI",
                "metric_name": metric,
                "dimensions": [{"name": "flink_job_id", "value": job}],
                "unit": unit,
                "datapoints": points,
            }
        ]
    }


@pytest.mark.parametrize(
    ("metric", "unit", "raw", "expected"),
    [
        ("flink_cpu_usage", "%", 37.5, 0.375),
        ("flink_cpu_usage", "", 50, 0.5),  # no unit: percent assumed
        ("flink_mem_usage", "Percent", 20, 0.2),
        ("flink_max_op_latency", "ms", 1500, 1.5),
        ("flink_max_op_latency", "s", 2, 2.0),
        ("flink_max_op_latency", "", 250, 0.25),  # no unit: milliseconds assumed
        ("flink_read_bytes_per_second", "KB/s", 2, 2048.0),
        ("flink_read_bytes_per_second", "bit/s", 80, 10.0),
        ("flink_write_bytes_total", "Byte", 7, 7.0),
        ("flink_read_records_per_second", "count/s", 12.5, 12.5),
        ("flink_read_records_total", "Count", "300", 300.0),  # a number sent as a string
        ("flink_max_op_backpressure_level", "", 50, 50.0),
    ],
)
def test_values_are_converted_to_base_units_by_the_reported_unit(
    metric: str, unit: str, raw: object, expected: float
) -> None:
    issues = ValueIssues()
    (series,) = parse_metric_data(
        answer(metric, unit, [{"average": raw, "timestamp": 1000}]), issues
    )
    assert (series.job_id, series.index, series.value, series.timestamp) == (
        42,
        METRIC_INDEX[metric],
        pytest.approx(expected),
        1.0,
    )
    assert not issues


def test_an_unknown_unit_gives_no_value_and_is_counted() -> None:
    issues = ValueIssues()
    payload = answer("flink_cpu_usage", "furlongs", [{"average": 1, "timestamp": 1}])
    assert parse_metric_data(payload, issues) == ()
    assert issues.counts == {("unit", "invalid"): 1}


def test_the_newest_usable_datapoint_wins_whatever_the_order() -> None:
    points: list[object] = [
        {"average": 3, "timestamp": 3000},
        {"average": 9, "timestamp": 9000},
        {"average": "NaN", "timestamp": 12000},  # unusable: skipped, counted
        {"average": -1, "timestamp": 11000},  # impossible: skipped, counted
        {"timestamp": 10000},  # no value
        "garbage",
        {"average": 5, "timestamp": 5000},
    ]
    issues = ValueIssues()
    (series,) = parse_metric_data(answer("flink_read_records_per_second", "", points), issues)
    assert (series.value, series.timestamp) == (9.0, 9.0)
    assert issues.counts == {("average", "out_of_range"): 2}


@pytest.mark.parametrize(
    "entry",
    [
        answer("flink_not_a_metric", "", [{"average": 1, "timestamp": 1}]),
        answer("flink_cpu_usage", "%", [], job="42"),
        answer("flink_cpu_usage", "%", [{"average": 1, "timestamp": 1}], job="not-an-id"),
        {"metrics": [{"metric_name": "flink_cpu_usage", "datapoints": None}]},
        {"metrics": ["x", None, 3]},
    ],
    ids=["unknown metric", "no datapoints", "bad job id", "no dimensions", "not objects"],
)
def test_entries_that_cannot_be_read_are_left_out(entry: object) -> None:
    assert parse_metric_data(entry, ValueIssues()) == ()


@pytest.mark.parametrize("payload", [None, [], {"metrics": {}}, {"nothing": 1}])
def test_a_wrong_shape_raises(payload: object) -> None:
    with pytest.raises(ResponseParseError):
        parse_metric_data(payload, ValueIssues())


def test_every_metric_dimension_has_a_unit_table() -> None:
    assert {metric.dimension for metric in METRICS} <= set(UNITS)
    assert all("" in table for table in UNITS.values())


# --- failure reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("org.apache.flink.runtime.JobException: Recovery is suppressed", "JobException"),
        (
            "java.lang.RuntimeException: x\n\tat a.B(B.java:1)\nCaused by: java.io.IOException: y\n"
            "Caused by: org.apache.kafka.common.errors.TimeoutException: z",
            "TimeoutException",
        ),
        ("java.lang.OutOfMemoryError: Java heap space", "OutOfMemoryError"),
        ("DLI.0005: There is no queue named q1", "DLI.0005"),
        ("submit failed (APIG.0308): throttled", "APIG.0308"),
        ("The job was stopped because the account is in arrears.", "unrecognized"),
        ("", "none"),
        (None, "none"),
        (
            "java.lang.RuntimeException: wrapped\n"
            + "\tat a.b.C(C.java:1)\n" * 300
            + "Caused by: a.b.VeryLong"
            + "A" * 100
            + "Exception: the root cause",
            "VeryLong" + "A" * 56,
        ),
    ],
)
def test_the_reason_label_is_bounded_and_names_the_failure(text: str | None, reason: str) -> None:
    found = failure_reason(failure_text(text))
    assert found == reason
    assert len(found) <= MAX_REASON_CHARS


def test_the_kept_text_is_one_clean_line_cut_short() -> None:
    text = failure_text("line one\nline two\x00" + "z" * 5000)
    assert text is not None
    assert text.startswith("line one line two ")
    assert "\n" not in text and len(text) <= 2000
    assert text.endswith("z" * 900)  # the end (a trace's root cause) is kept


# --- queues and pools --------------------------------------------------------------------------


def test_queue_fields_that_are_odd_are_left_unknown_not_invented() -> None:
    issues = ValueIssues()
    payload = {
        "is_success": True,
        "queues": [
            {"queue_name": "q1", "cu_count": "16", "used_cu": 3.5, "resource_mode": 0},
            {"queue_name": "q2", "cu_count": -1, "used_cu": "lots", "charging_mode": 7},
            {"queue_name": ""},
            {"cu_count": 4},
        ],
    }
    first, second = parse_queues(payload, issues)
    assert (first.name, first.cu_count, first.used_cu, first.resource_mode) == (
        "q1",
        16,
        3.5,
        "shared",
    )
    assert (second.cu_count, second.used_cu, second.charging_mode) == (None, None, "7")
    assert issues.counts == {("cu_count", "out_of_range"): 1, ("used_cu", "invalid"): 1}


def test_a_failed_queue_answer_raises() -> None:
    with pytest.raises(ResponseParseError):
        parse_queues({"is_success": False, "message": "no"}, ValueIssues())


def test_pools_without_id_or_name_are_skipped_and_counted_for_paging() -> None:
    payload = {
        "count": 3,
        "elastic_resource_pools": [
            {"id": 1, "elastic_resource_pool_name": "a", "status": "AVAILABLE", "fail_reason": ""},
            {"id": 2, "elastic_resource_pool_name": "b", "fail_reason": "quota exceeded"},
            {"elastic_resource_pool_name": "no-id"},
        ],
    }
    page = parse_pool_page(payload, ValueIssues())
    assert [(p.name, p.failed) for p in page.pools] == [("a", False), ("b", True)]
    assert (page.count, page.skipped) == (3, 1)


# --- config ------------------------------------------------------------------------------------

TARGET = """
  - name: {name}
    region: cn-north-4
    project_id: p
    auth: {{type: aksk, access_key: A, secret_key: B}}
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return str(path)


def test_sources_default_on_and_a_target_overrides_the_top_level_key_by_key(
    tmp_path: Path,
) -> None:
    text = (
        "sources: {queues: false, cloud_eye: {max_age: 10m}}\ntargets:"
        + TARGET.format(name="a")
        + "    sources: {cloud_eye: false, queues: {enabled: true}}\n"
        + "    ces_endpoint: https://ces.example.com/\n"
        + TARGET.format(name="b")
        + TARGET.format(name="c").replace("project_id: p", "project_id: q")
    )
    config = load_config(write(tmp_path, text))
    a, b, _ = config.targets
    assert a.sources == Sources(cloud_eye=False, cloud_eye_max_age=600.0, queues=True)
    assert a.ces_endpoint == "https://ces.example.com"
    assert b.sources == Sources(cloud_eye=True, cloud_eye_max_age=600.0, queues=False)
    assert b.ces_endpoint is None
    assert (
        load_config(write(tmp_path, "targets:" + TARGET.format(name="d"))).targets[0].sources
        == Sources()
    )


@pytest.mark.parametrize(
    ("sources", "key", "message"),
    [
        ("{cloud_eye: 3}", "sources.cloud_eye", "must be true, false or a mapping"),
        ("{queues: {max_age: 1m}}", "sources.queues.max_age", "unknown key"),
        ("{cloud_eye: {max_age: 10s}}", "sources.cloud_eye.max_age", "at least 60s"),
        ("{cloud_eye: {max_age: 2h}}", "sources.cloud_eye.max_age", "at most 1h"),
        ("{cloud_eye: {enabled: maybe}}", "sources.cloud_eye.enabled", ""),
        ("{cloudeye: false}", "sources.cloudeye", "unknown key"),
    ],
)
def test_bad_sources_name_the_key(tmp_path: Path, sources: str, key: str, message: str) -> None:
    text = "targets:" + TARGET.format(name="a") + f"    sources: {sources}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    problems = [(p.key, p.message) for p in caught.value.problems]
    assert [k for k, _ in problems] == [f"targets[0].{key}"]
    assert message in problems[0][1]
