"""The Prometheus rules, alerts, example configs and runbooks: valid, tested and consistent.

promtool and amtool do the checking (``make tools`` installs them); the rest holds the files to
the ops contract: alert and recording rule names, labels, annotations and runbook anchors.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import promtool_path

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
RULES = PROMETHEUS / "rules.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/dli-exporter/dli-exporter/blob/main/docs/runbooks.md"

#: The ops contract: alert name -> (severity, for).
SPEC_ALERTS: Mapping[str, tuple[str, str]] = {
    "DliJobFailed": ("critical", "2m"),
    "DliJobRestartLoop": ("warning", "0m"),
    "DliJobNotRunningInFlink": ("critical", "5m"),
    "DliJobStuckSubmitting": ("warning", "15m"),
    "DliTargetDown": ("critical", "5m"),
    "DliStaleData": ("warning", "5m"),
    "DliApiErrorRatioHigh": ("warning", "15m"),
    "DliExporterAbsent": ("critical", "5m"),
    # group dli.runtime: Cloud Eye job metrics, queues, elastic resource pools, their sources
    "DliJobStalled": ("warning", "15m"),
    "DliJobBackpressureHigh": ("warning", "10m"),
    "DliJobOperatorLatencyHigh": ("warning", "10m"),
    "DliQueueSaturated": ("warning", "10m"),
    "DliElasticResourcePoolAtMax": ("warning", "15m"),
    "DliJobRestartBudgetNearlyUsed": ("warning", "0m"),
    "DliSourceDown": ("warning", "15m"),
}
#: The alert groups of alerts.yml, in order.
ALERT_GROUPS = ("dli.alerts", "dli.runtime")
JOB_ALERTS = (
    "DliJobFailed",
    "DliJobRestartLoop",
    "DliJobNotRunningInFlink",
    "DliJobStuckSubmitting",
    "DliJobStalled",
    "DliJobBackpressureHigh",
    "DliJobOperatorLatencyHigh",
    "DliJobRestartBudgetNearlyUsed",
)
#: Alerts a down target makes meaningless for that target (inhibited with equal target): its
#: job list, and with it the data of its further sources, is the last good one.
TARGET_INHIBITED = (
    *JOB_ALERTS,
    "DliStaleData",
    "DliApiErrorRatioHigh",
    "DliQueueSaturated",
    "DliElasticResourcePoolAtMax",
    "DliSourceDown",
)
#: The labels each non-job alert names in its description (besides target).
RESOURCE_LABELS: Mapping[str, str] = {
    "DliQueueSaturated": "queue_name",
    "DliElasticResourcePoolAtMax": "elastic_resource_pool",
    "DliSourceDown": "source",
}
SPEC_RECORDS = (
    "target_status:dli_jobs:count",
    "target_queue:dli_job_compute_units:sum",
    "target_queue:dli_job_actual_compute_units:sum",
    "target:dli_jobs_running:count",
    "target:dli_jobs_not_running:count",
    "target_operation:dli_api_requests:rate5m",
    "target_operation:dli_api_request_errors:ratio_rate5m",
)

_DURATION = re.compile(r"(\d+)(ms|[smhdwy])")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules(path: Path, group: str) -> list[dict[str, Any]]:
    groups = {g["name"]: g["rules"] for g in _load(path)["groups"]}
    assert group in groups, f"{path.name} has no group {group!r}"
    rules: list[dict[str, Any]] = groups[group]
    return rules


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in ALERT_GROUPS for rule in _rules(ALERTS, group)}


def test_alerts_file_has_exactly_the_alert_groups() -> None:
    assert [group["name"] for group in _load(ALERTS)["groups"]] == list(ALERT_GROUPS)
    names = [rule["alert"] for group in ALERT_GROUPS for rule in _rules(ALERTS, group)]
    assert len(names) == len(set(names)), "duplicate alert names"


def _seconds(duration: str) -> float:
    """A Prometheus duration (``1h30m``, ``90s``) in seconds."""
    parts = _DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(int(number) * _SECONDS[unit] for number, unit in parts)


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _runbook_anchors() -> set[str]:
    text = RUNBOOKS.read_text(encoding="utf-8")
    return {_github_anchor(m) for m in re.findall(r"^#{2,3} (.+)$", text, flags=re.MULTILINE)}


def _test_files() -> list[Path]:
    return sorted(PROMETHEUS.glob("*_test.yml"))


def _alert_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """(test name, alert_rule_test entry) for every alert case in the promtool test files."""
    for path in _test_files():
        for test in _load(path)["tests"]:
            for case in test.get("alert_rule_test") or []:
                yield test.get("name", path.name), case


def _run(tool: str, *args: str) -> str:
    result = subprocess.run(
        [tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{Path(tool).name} {' '.join(args)} failed:\n{output}"
    return output


@pytest.fixture
def promtool() -> str:
    return promtool_path()


@pytest.fixture
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.skip("amtool not found: install Debian's 'prometheus-alertmanager' (make tools)")
    return path


# --- promtool and amtool ---------------------------------------------------------------------


def test_promtool_check_rules(promtool: str) -> None:
    output = _run(promtool, "check", "rules", RULES.name, ALERTS.name)
    assert f"SUCCESS: {len(SPEC_RECORDS)} rules found" in output
    assert f"SUCCESS: {len(SPEC_ALERTS)} rules found" in output


def test_promtool_unit_tests_pass(promtool: str) -> None:
    files = [path.name for path in _test_files()]
    assert "alerts_test.yml" in files
    _run(promtool, "test", "rules", *files)


def test_promtool_check_config(promtool: str) -> None:
    output = _run(promtool, "check", "config", "prometheus.yml")
    assert "SUCCESS: 2 rule files found" in output


def test_amtool_check_config(amtool: str) -> None:
    _run(amtool, "check-config", "alertmanager.yml")


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "pager"), ("warning", "ticket"), ("info", "ticket")]
)
def test_alertmanager_routes_by_severity(amtool: str, severity: str, receiver: str) -> None:
    _run(
        amtool,
        "config",
        "routes",
        "test",
        "--config.file=alertmanager.yml",
        f"--verify.receivers={receiver}",
        f"severity={severity}",
        "alertname=DliJobFailed",
        "target=prod",
    )


# --- the contract ----------------------------------------------------------------------------


def test_alert_names_severities_and_for_match_the_spec() -> None:
    alerts = _alerts()
    assert set(alerts) == set(SPEC_ALERTS)
    for name, (severity, for_) in SPEC_ALERTS.items():
        assert alerts[name]["labels"]["severity"] == severity, name
        assert _seconds(alerts[name].get("for", "0s")) == _seconds(for_), name


def test_recording_rule_names_match_the_spec() -> None:
    assert [rule["record"] for rule in _rules(RULES, "dli.rules")] == list(SPEC_RECORDS)


@pytest.mark.parametrize("name", SPEC_ALERTS)
def test_alert_has_severity_summary_description_and_runbook(name: str) -> None:
    rule = _alerts()[name]
    assert rule["labels"].get("severity") in {"critical", "warning"}
    annotations = rule["annotations"]
    for key in ("summary", "description", "runbook_url"):
        assert annotations.get(key, "").strip(), f"{name} lacks {key}"
    if name != "DliExporterAbsent":  # absent() has no target to name
        assert "$labels.target" in annotations["description"], name


@pytest.mark.parametrize("name", JOB_ALERTS)
def test_job_alert_names_the_job_and_queue(name: str) -> None:
    rule = _alerts()[name]
    assert "group_left (queue_name, job_type) dli_job_info" in rule["expr"]
    for label in ("job_name", "job_id", "queue_name"):
        assert f"$labels.{label}" in rule["annotations"]["description"], (name, label)


@pytest.mark.parametrize("name", RESOURCE_LABELS)
def test_resource_alert_names_its_resource(name: str) -> None:
    annotations = _alerts()[name]["annotations"]
    label = RESOURCE_LABELS[name]
    for key in ("summary", "description"):
        assert f"$labels.{label}" in annotations[key], (name, key)


def test_source_down_names_the_permission_to_grant() -> None:
    description = _alerts()["DliSourceDown"]["annotations"]["description"]
    assert "ces:metricData:list" in description
    assert "DLI ReadOnlyAccess" in description


def test_promtool_test_evaluates_every_alert_group() -> None:
    order = _load(PROMETHEUS / "alerts_test.yml")["group_eval_order"]
    assert set(ALERT_GROUPS) <= set(order)


@pytest.mark.parametrize("name", SPEC_ALERTS)
def test_runbook_url_points_at_the_alerts_runbook_section(name: str) -> None:
    url = _alerts()[name]["annotations"]["runbook_url"]
    assert url == f"{RUNBOOK_BASE}#{name.lower()}"
    assert name.lower() in _runbook_anchors(), f"docs/runbooks.md has no '## {name}' section"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    annotated: set[str] = set()
    for _, case in _alert_cases():
        expected = case.get("exp_alerts") or []
        (firing if expected else quiet).add(case["alertname"])
        if any(alert.get("exp_annotations") for alert in expected):
            annotated.add(case["alertname"])
    assert set(SPEC_ALERTS) - firing == set(), "alerts never tested firing"
    assert set(SPEC_ALERTS) - quiet == set(), "alerts never tested not firing"
    assert set(SPEC_ALERTS) - annotated == set(), "alerts whose annotations are never checked"


def test_every_alert_is_tested_at_its_for_boundary() -> None:
    """Some test has the alert quiet one evaluation before it fires (pending -> firing)."""
    interval = _seconds(_load(PROMETHEUS / "alerts_test.yml").get("evaluation_interval", "1m"))
    quiet: dict[tuple[str, str], set[float]] = {}
    fired: dict[tuple[str, str], set[float]] = {}
    for test, case in _alert_cases():
        times = fired if case.get("exp_alerts") else quiet
        times.setdefault((test, case["alertname"]), set()).add(_seconds(case["eval_time"]))
    boundaries = {
        alert
        for (test, alert), times in fired.items()
        if any(t - interval in quiet.get((test, alert), set()) for t in times)
    }
    assert set(SPEC_ALERTS) - boundaries == set()


def test_runbooks_have_one_section_per_alert() -> None:
    text = RUNBOOKS.read_text(encoding="utf-8")
    sections = re.findall(r"^## (\S+)$", text, flags=re.MULTILINE)
    assert sections == list(SPEC_ALERTS)


# --- example configs -------------------------------------------------------------------------


def test_prometheus_config_scrapes_the_exporter_and_loads_the_rules() -> None:
    config = _load(PROMETHEUS / "prometheus.yml")
    assert sorted(config["rule_files"]) == ["alerts.yml", "rules.yml"]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "dli"]
    assert job["static_configs"] == [{"targets": ["dli-exporter:9469"]}]
    assert (job["scrape_interval"], job["scrape_timeout"]) == ("60s", "30s")
    (alerting,) = config["alerting"]["alertmanagers"]
    assert alerting["static_configs"] == [{"targets": ["alertmanager:9093"]}]


def _matcher(text: str) -> tuple[str, str, str]:
    match = re.fullmatch(r'\s*(\w+)\s*(=~|!=|!~|=)\s*"(.*)"\s*', text)
    assert match, f"unparsed matcher {text!r}"
    return match[1], match[2], match[3]


def _inhibited_by(source: str) -> dict[str, list[str]]:
    """Alert name -> the `equal` labels of the inhibit rules with alertname=source."""
    inhibited: dict[str, list[str]] = {}
    for rule in _load(PROMETHEUS / "alertmanager.yml")["inhibit_rules"]:
        if [_matcher(m) for m in rule["source_matchers"]] != [("alertname", "=", source)]:
            continue
        (matcher,) = [_matcher(m) for m in rule["target_matchers"]]
        assert matcher[:2] == ("alertname", "=~")
        for name in SPEC_ALERTS:
            if re.fullmatch(matcher[2], name):
                inhibited[name] = rule.get("equal", [])
    return inhibited


def test_target_down_inhibits_that_targets_alerts() -> None:
    inhibited = _inhibited_by("DliTargetDown")
    for name in TARGET_INHIBITED:
        assert inhibited.get(name) == ["target"], name
    assert "DliTargetDown" not in inhibited
    assert "DliExporterAbsent" not in inhibited


def test_exporter_absent_inhibits_everything_else() -> None:
    inhibited = _inhibited_by("DliExporterAbsent")
    assert set(inhibited) == set(SPEC_ALERTS) - {"DliExporterAbsent"}
    assert all(equal == [] for equal in inhibited.values())
