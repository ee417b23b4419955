"""The Grafana dashboards and provisioning files, checked statically (no Grafana, no network).

Every query must read only metrics the exporter publishes or the recording rules of the ops
contract, through the ``${datasource}`` variable, filtered by the template variables it defines.
With promtool installed, every query is also parsed as PromQL.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.catalogue import CATALOGUE
from exporter.dli.jobmodel import FLINK_STATES, JOB_STATUSES
from grafana import build_dashboards
from tests.conftest import promtool_path
from tests.dashboard_queries import (
    Json,
    iter_panels,
    matchers,
    metric_names,
    panel_queries,
    selectors,
    substitute,
    variable_queries,
    variable_query_expr,
    variable_references,
)

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
PROVISIONING_DIR = ROOT / "grafana" / "provisioning"
#: File name -> uid; the uids are part of the links between dashboards and of bookmarks.
EXPECTED = {
    "dli-overview.json": "dli-overview",
    "dli-job-detail.json": "dli-job-detail",
    "dli-exporter-health.json": "dli-exporter-health",
}
#: Recording rules of the ops contract (prometheus/rules.yml, group dli.rules).
RECORDING_RULES = frozenset(
    {
        "target_status:dli_jobs:count",
        "target_queue:dli_job_compute_units:sum",
        "target_queue:dli_job_actual_compute_units:sum",
        "target:dli_jobs_running:count",
        "target:dli_jobs_not_running:count",
        "target_operation:dli_api_requests:rate5m",
        "target_operation:dli_api_request_errors:ratio_rate5m",
    }
)
#: The exporter's own live metrics (exporter.telemetry), plus Prometheus' ``up``.
TELEMETRY = frozenset(
    {
        "dli_api_requests_total",
        "dli_api_request_duration_seconds_bucket",
        "dli_api_request_duration_seconds_sum",
        "dli_api_request_duration_seconds_count",
        "dli_exporter_build_info",
        "dli_config_last_reload_successful",
        "dli_config_last_reload_success_timestamp_seconds",
        "up",
    }
)
#: The runtime-health families of issue 11 (job settings, failure reason, Cloud Eye, queues,
#: elastic resource pools, per-source health), fixed by its contract; listed here as well so the
#: dashboards can be checked while the catalogue gains them.
RUNTIME_JOB_METRICS = frozenset(
    {
        "dli_job_checkpoint_enabled",
        "dli_job_checkpoint_interval_seconds",
        "dli_job_restart_on_exception_enabled",
        "dli_job_max_restarts_on_exception",
        "dli_job_failure_info",
        "dli_job_read_records_per_second",
        "dli_job_write_records_per_second",
        "dli_job_read_records_total",
        "dli_job_write_records_total",
        "dli_job_read_bytes_per_second",
        "dli_job_write_bytes_per_second",
        "dli_job_read_bytes_total",
        "dli_job_write_bytes_total",
        "dli_job_cpu_usage_ratio",
        "dli_job_memory_usage_ratio",
        "dli_job_max_operator_latency_seconds",
        "dli_job_max_operator_backpressure_level",
    }
)
RUNTIME_METRICS = RUNTIME_JOB_METRICS | frozenset(
    {
        "dli_cloud_eye_lag_seconds",
        "dli_queue_info",
        "dli_queue_compute_units",
        "dli_queue_used_compute_units",
        "dli_queue_scale_out_limit_compute_units",
        "dli_queue_scale_in_limit_compute_units",
        "dli_queue_restarting",
        "dli_elastic_resource_pool_max_compute_units",
        "dli_elastic_resource_pool_min_compute_units",
        "dli_elastic_resource_pool_actual_compute_units",
        "dli_elastic_resource_pool_current_compute_units",
        "dli_elastic_resource_pool_prepaid_compute_units",
        "dli_elastic_resource_pool_status",
        "dli_elastic_resource_pool_failed",
        "dli_source_up",
        "dli_source_last_success_timestamp_seconds",
    }
)
KNOWN_METRICS = (
    frozenset(spec.name for spec in CATALOGUE) | RUNTIME_METRICS | TELEMETRY | RECORDING_RULES
)
#: Series without a ``target`` label: per exporter process, filtered by the scrape job instead.
PER_PROCESS = frozenset(
    {
        "up",
        "dli_exporter_build_info",
        "dli_config_last_reload_successful",
        "dli_config_last_reload_success_timestamp_seconds",
    }
)
PANEL_TYPES = frozenset({"timeseries", "stat", "table", "state-timeline", "bargauge"})
DATASOURCE_UID = "${datasource}"
#: Field override property ids the dashboards may use (custom options are dotted).
OVERRIDE_PROPERTIES = frozenset(
    {"color", "mappings", "decimals", "unit", "min", "max", "links", "custom.cellOptions"}
)
#: Values for every template variable, to turn dashboard queries into plain PromQL.
SAMPLE_VARIABLES = {
    "target": ".*",
    "queue": ".*",
    "job": "12345",
    "scrape_job": "dli",
    "datasource": "prometheus",
}


@pytest.fixture(scope="module")
def dashboards() -> dict[str, Json]:
    """The committed dashboards by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARD_DIR.glob("*.json"))
    }


def each(dashboards: dict[str, Json]) -> Iterator[tuple[str, Json]]:
    """(uid, dashboard) pairs."""
    for board in dashboards.values():
        yield board["uid"], board


def variables_of(board: Json) -> dict[str, Json]:
    return {variable["name"]: variable for variable in board["templating"]["list"]}


def all_links(value: Any) -> Iterator[Json]:
    """Every link object (dashboard, panel and data links) anywhere under ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "links" and isinstance(item, list):
                yield from (link for link in item if isinstance(link, dict))
            else:
                yield from all_links(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_links(item)


# --- files, uids, generator ---------------------------------------------------------------------


def test_the_three_dashboards_exist_with_stable_unique_uids(dashboards: dict[str, Json]) -> None:
    assert {name: board["uid"] for name, board in dashboards.items()} == EXPECTED
    assert len({board["uid"] for board in dashboards.values()}) == len(EXPECTED)


def test_committed_json_is_what_the_generator_builds() -> None:
    built = build_dashboards.build_all()
    assert sorted(built) == sorted(EXPECTED)
    for name, board in built.items():
        committed = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
        assert committed == build_dashboards.render(board), (
            f"{name} is out of date: run .venv/bin/python grafana/build_dashboards.py"
        )
    assert build_dashboards.main(["--check"]) == 0


def test_json_is_two_space_indented_with_final_newline() -> None:
    for name in EXPECTED:
        text = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text.splitlines()[1].startswith('  "') and not text.splitlines()[1].startswith("   ")


def test_dashboard_settings(dashboards: dict[str, Json]) -> None:
    for uid, board in each(dashboards):
        assert board["schemaVersion"] == 39, uid
        assert board["tags"] == ["dli"], uid
        assert board["title"] and board["description"], uid
        assert board["id"] is None, uid  # provisioned: Grafana assigns the id
        tag_links = [link for link in board["links"] if link["type"] == "dashboards"]
        assert tag_links == [
            {**tag_links[0], "tags": ["dli"], "includeVars": True, "keepTime": True}
        ], uid


def test_status_colours_cover_every_state_the_exporter_knows() -> None:
    assert set(build_dashboards.STATUS_COLORS) == set(JOB_STATUSES)
    assert set(build_dashboards.FLINK_STATE_COLORS) == set(FLINK_STATES)
    assert set(build_dashboards.BAD_STATUSES) == {
        "job_submit_fail",
        "job_running_exception",
        "job_cancel_fail",
        "job_arrearage_stopped",
    }


# --- datasource and template variables ----------------------------------------------------------


def test_datasource_variable(dashboards: dict[str, Json]) -> None:
    for uid, board in each(dashboards):
        variable = variables_of(board)["datasource"]
        assert variable["type"] == "datasource", uid
        assert variable["query"] == "prometheus", uid


def test_every_panel_query_and_variable_uses_the_datasource_variable(
    dashboards: dict[str, Json],
) -> None:
    for uid, board in each(dashboards):
        for panel in iter_panels(board):
            where = f"{uid}: {panel['title']}"
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID, where
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == DATASOURCE_UID, variable["name"]


def test_target_queue_and_job_variables(dashboards: dict[str, Json]) -> None:
    for uid, board in each(dashboards):
        variables = variables_of(board)
        target = variables["target"]
        assert target["definition"] == "label_values(dli_up, target)", uid
        assert target["multi"] and target["includeAll"] and target["allValue"] == ".*", uid
        if "queue" in variables:
            queue = variables["queue"]
            assert queue["definition"] == (
                'label_values(dli_job_info{target=~"$target"}, queue_name)'
            )
            # ".*" (not the joined values) so All also matches jobs with an empty queue_name.
            assert queue["multi"] and queue["includeAll"] and queue["allValue"] == ".*", uid
    assert "queue" in variables_of(dashboards["dli-overview.json"])
    job = variables_of(dashboards["dli-job-detail.json"])["job"]
    assert not job["multi"] and not job["includeAll"]
    assert variable_query_expr(job["definition"]).find("dli_job_info") >= 0
    assert "(?<value>" in job["regex"] and "(?<text>" in job["regex"]


def test_job_variable_regex_reads_id_and_name_from_a_query_result_line() -> None:
    # The line Grafana builds for query_result: labels in Prometheus' (sorted) order.
    line = (
        'dli_job_info{flink_version="1.15", instance="exporter:9469", job="dli", '
        'job_display="orders etl #4242", job_id="4242", job_name="orders etl", target="prod"} '
        "1 1700000000000"
    )
    regex = build_dashboards.job_variable()["regex"]
    python_regex = regex.strip("/").replace("(?<", "(?P<")
    match = re.match(python_regex, line)
    assert match is not None
    assert match.group("value") == "4242"
    assert match.group("text") == "orders etl #4242"


def test_every_referenced_variable_is_defined_before_use(dashboards: dict[str, Json]) -> None:
    for uid, board in each(dashboards):
        defined: set[str] = set()
        for variable in board["templating"]["list"]:
            raw = variable.get("query")
            text = raw.get("query", "") if isinstance(raw, dict) else str(raw or "")
            missing = variable_references(text) - defined
            assert not missing, f"{uid}: variable {variable['name']} uses {missing}"
            defined.add(variable["name"])
        for title, expr in panel_queries(board):
            assert variable_references(expr) <= defined, f"{uid}: {title}: {expr}"
        for link in all_links(board):
            text = link.get("url", "") + link.get("title", "")
            assert variable_references(text) <= defined, f"{uid}: link {link}"


# --- queries ------------------------------------------------------------------------------------


def test_queries_only_read_exporter_metrics_and_contract_recording_rules(
    dashboards: dict[str, Json],
) -> None:
    for uid, board in each(dashboards):
        queries = panel_queries(board) + variable_queries(board)
        assert queries, uid
        for title, expr in queries:
            names = metric_names(expr)
            assert names, f"{uid}: {title}: no metric in {expr}"
            assert names <= KNOWN_METRICS, f"{uid}: {title}: unknown {names - KNOWN_METRICS}"


def test_every_target_series_is_filtered_by_the_target_variable(
    dashboards: dict[str, Json],
) -> None:
    for uid, board in each(dashboards):
        for title, expr in panel_queries(board) + variable_queries(board):
            for name, text in selectors(expr):
                if name in PER_PROCESS or (title == "target" and name == "dli_up"):
                    continue
                assert ("target", "=~", "$target") in matchers(text), f"{uid}: {title}: {name}"


def test_per_process_series_are_filtered_by_the_scrape_job(dashboards: dict[str, Json]) -> None:
    seen = 0
    for uid, board in each(dashboards):
        for title, expr in panel_queries(board):
            for name, text in selectors(expr):
                if name in PER_PROCESS:
                    seen += 1
                    assert ("job", "=~", "$scrape_job") in matchers(text), f"{uid}: {title}"
    assert seen >= 4


def test_overview_job_queries_honour_the_queue_variable(dashboards: dict[str, Json]) -> None:
    board = dashboards["dli-overview.json"]
    for title, expr in panel_queries(board):
        for name, text in selectors(expr):
            if name == "dli_job_info" or name.startswith("target_queue:"):
                assert ("queue_name", "=~", "$queue") in matchers(text), title


def test_job_detail_reads_only_the_selected_job(dashboards: dict[str, Json]) -> None:
    for title, expr in panel_queries(dashboards["dli-job-detail.json"]):
        for name, text in selectors(expr):
            assert name.startswith("dli_job_"), title
            assert ("job_id", "=", "$job") in matchers(text), f"{title}: {name}"


def test_queries_parse_as_promql(dashboards: dict[str, Json], tmp_path: Path) -> None:
    promtool = promtool_path()
    rules = [
        {"record": f"dashboard:query_{index}:check", "expr": substitute(expr, SAMPLE_VARIABLES)}
        for index, (_, expr) in enumerate(
            itertools.chain.from_iterable(
                panel_queries(board) + variable_queries(board) for board in dashboards.values()
            )
        )
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_recording_rules_used_are_defined_in_the_rules_file(dashboards: dict[str, Json]) -> None:
    rules_file = ROOT / "prometheus" / "rules.yml"
    if not rules_file.exists():
        pytest.skip("prometheus/rules.yml not written yet")
    document = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    defined = {
        rule["record"]
        for group in document["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    used = {
        name
        for board in dashboards.values()
        for _, expr in panel_queries(board)
        for name in metric_names(expr)
        if ":" in name
    }
    assert used, "the dashboards use the recording rules"
    assert used <= defined, f"not in {rules_file}: {used - defined}"


# --- panels -------------------------------------------------------------------------------------


def test_every_panel_has_type_title_description_and_unit(dashboards: dict[str, Json]) -> None:
    for uid, board in each(dashboards):
        for panel in iter_panels(board):
            where = f"{uid}: {panel.get('title')}"
            assert panel["type"] in PANEL_TYPES, where
            assert panel["title"].strip(), where
            assert len(panel["description"]) >= 20, where
            assert panel["fieldConfig"]["defaults"]["unit"], where


def test_overrides_use_grafana_property_ids_and_match_shown_names(
    dashboards: dict[str, Json],
) -> None:
    for uid, board in each(dashboards):
        for panel in iter_panels(board):
            headers: set[str] = set()
            for transformation in panel.get("transformations", []):
                if transformation["id"] == "organize":
                    headers |= set(transformation["options"]["renameByName"].values())
            for override in panel["fieldConfig"]["overrides"]:
                where = f"{uid}: {panel['title']}: {override['matcher']}"
                assert override["matcher"]["id"] == "byName", where
                if panel["type"] == "table":  # byName matches the header after renaming
                    assert override["matcher"]["options"] in headers, where
                for item in override["properties"]:
                    assert item["id"] in OVERRIDE_PROPERTIES, where


def test_panel_ids_are_unique_and_the_grid_does_not_overlap(dashboards: dict[str, Json]) -> None:
    for uid, board in each(dashboards):
        panels = list(iter_panels(board))
        assert len({panel["id"] for panel in panels}) == len(panels), uid
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{uid}: {panel['title']}"
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not area & cells, f"{uid}: {panel['title']} overlaps another panel"
            cells |= area


def test_overview_has_the_agreed_panels(dashboards: dict[str, Json]) -> None:
    queries = panel_queries(dashboards["dli-overview.json"])
    used = {name for _, expr in queries for name in metric_names(expr)}
    assert {
        "target_status:dli_jobs:count",
        "target:dli_jobs_running:count",
        "target:dli_jobs_not_running:count",
        "target_queue:dli_job_compute_units:sum",
    } <= used
    assert any("topk(" in e and "increase(dli_job_restarts_total" in e for _, e in queries)
    assert {
        "dli_queue_compute_units",
        "dli_queue_used_compute_units",
        "dli_elastic_resource_pool_current_compute_units",
        "dli_elastic_resource_pool_actual_compute_units",
        "dli_elastic_resource_pool_max_compute_units",
        "dli_elastic_resource_pool_min_compute_units",
        "dli_job_failure_info",
    } <= used
    by_title = {panel["title"]: panel for panel in iter_panels(dashboards["dli-overview.json"])}
    status = by_title["Jobs by DLI status"]
    assert status["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    kinds = {title: panel["type"] for title, panel in by_title.items()}
    assert kinds["Queue capacity"] == "timeseries"
    assert kinds["Queue usage"] == "timeseries"
    assert kinds["Elastic resource pool capacity"] == "timeseries"
    usage = by_title["Queue usage"]
    assert "> 0)" in usage["targets"][0]["expr"], "queues with cu_count 0 are left out"
    assert usage["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_failed_jobs_table_shows_the_reason_and_links_to_the_job_detail(
    dashboards: dict[str, Json],
) -> None:
    by_title = {panel["title"]: panel for panel in iter_panels(dashboards["dli-overview.json"])}
    failed = by_title["Failed jobs and why"]
    assert failed["type"] == "table"
    exprs = [target["expr"] for target in failed["targets"]]
    assert any(
        "dli_job_failure_info" in e and "group_left (queue_name) dli_job_info" in e for e in exprs
    )
    headers = failed["transformations"][1]["options"]["renameByName"]
    assert {"Job", "Queue", "DLI status", "Reason", "Restarts"} <= set(headers.values())
    hidden = failed["transformations"][1]["options"]["excludeByName"]
    assert "reason" in headers and "reason" not in hidden
    (link,) = failed["fieldConfig"]["defaults"]["links"]
    assert link["url"].startswith("/d/dli-job-detail?")
    assert "var-job=${__data.fields.job_id}" in link["url"]


def test_bad_jobs_table_rows_link_to_the_job_detail(dashboards: dict[str, Json]) -> None:
    by_title = {panel["title"]: panel for panel in iter_panels(dashboards["dli-overview.json"])}
    bad = by_title["Jobs in a bad state"]
    exprs = " ".join(target["expr"] for target in bad["targets"])
    for status in build_dashboards.BAD_STATUSES:
        assert status in exprs
    assert 'state!="RUNNING"' in exprs
    headers = bad["transformations"][1]["options"]["renameByName"]
    assert {"Job", "Queue", "Problem", "Restarts"} <= set(headers.values())
    (link,) = bad["fieldConfig"]["defaults"]["links"]
    url = link["url"]
    assert url.startswith("/d/dli-job-detail?")
    assert "var-target=${__data.fields.target}" in url
    assert "var-job=${__data.fields.job_id}" in url
    # The fields the link reads are columns of the table, not hidden by the organize step.
    hidden = bad["transformations"][1]["options"]["excludeByName"]
    assert "target" in headers and "job_id" in headers
    assert not {"target", "job_id"} & set(hidden)


def test_job_detail_has_the_agreed_panels(dashboards: dict[str, Json]) -> None:
    board = dashboards["dli-job-detail.json"]
    kinds = {panel["title"]: panel["type"] for panel in iter_panels(board)}
    assert kinds["DLI status history"] == "state-timeline"
    assert kinds["Flink state history"] == "state-timeline"
    for title in ("Records per second", "Bytes per second", "Backpressure level"):
        assert kinds[title] == "timeseries", title
    for title in ("Operator latency", "CPU and memory usage"):
        assert kinds[title] == "timeseries", title
    by_title = {panel["title"]: panel for panel in iter_panels(board)}
    units = {title: panel["fieldConfig"]["defaults"]["unit"] for title, panel in by_title.items()}
    assert units["Records per second"] == "rps"
    assert units["Bytes per second"] == "Bps"
    assert units["Operator latency"] == "s"
    assert units["CPU and memory usage"] == "percentunit"
    used = {name for _, expr in panel_queries(board) for name in metric_names(expr)}
    job_metrics = {spec.name for spec in CATALOGUE if spec.name.startswith("dli_job_")}
    assert used == job_metrics | RUNTIME_JOB_METRICS


def test_exporter_health_has_the_agreed_panels(dashboards: dict[str, Json]) -> None:
    queries = panel_queries(dashboards["dli-exporter-health.json"])
    exprs = [expr for _, expr in queries]
    for quantile in ("0.5", "0.9", "0.99"):
        assert any(e.startswith(f"histogram_quantile({quantile},") for e in exprs)
    assert any(e.startswith("time() - dli_last_poll_success_timestamp_seconds") for e in exprs)
    used = {name for expr in exprs for name in metric_names(expr)}
    assert {
        "dli_up",
        "dli_poll_duration_seconds",
        "target_operation:dli_api_requests:rate5m",
        "target_operation:dli_api_request_errors:ratio_rate5m",
        "dli_api_requests_total",
        "dli_exporter_build_info",
        "dli_config_last_reload_successful",
        "dli_source_up",
        "dli_source_last_success_timestamp_seconds",
        "dli_cloud_eye_lag_seconds",
    } <= used
    by_title = {p["title"]: p for p in iter_panels(dashboards["dli-exporter-health.json"])}
    poll = by_title["Poll duration"]
    assert "not exported" in poll["description"]
    steps = poll["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == build_dashboards.DEFAULT_POLL_INTERVAL_SECONDS


# --- provisioning -------------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    document = yaml.safe_load((PROVISIONING_DIR / "datasources" / "prometheus.yml").read_text())
    assert document["apiVersion"] == 1
    (datasource,) = document["datasources"]
    assert datasource["name"] == "Prometheus"
    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True


def test_dashboard_provisioning_points_at_the_mounted_dashboards() -> None:
    document = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "dli.yml").read_text())
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "DLI"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_docker_compose_mounts_what_provisioning_expects() -> None:
    compose_file = ROOT / "docker-compose.yml"
    if not compose_file.exists():
        pytest.skip("docker-compose.yml not written yet")
    grafana = yaml.safe_load(compose_file.read_text())["services"]["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    assert Path(mounts["/var/lib/grafana/dashboards"]) == Path("./grafana/dashboards")
    assert Path(mounts["/etc/grafana/provisioning"]) == Path("./grafana/provisioning")


# --- the query helpers themselves ---------------------------------------------------------------


def test_selectors_skip_functions_label_lists_strings_and_numbers() -> None:
    expr = (
        'topk(5, sum by (target, queue_name) (rate(a_total{x=~"$v", y="}{"}[5m] offset 1h))'
        " * on (target) group_left (queue_name) b) > 0.5 or vector(1e3) unless c:rule:sum"
        ' and label_replace(d, "dst", "$1", "src", "(.*)")'
    )
    assert selectors(expr) == [
        ("a_total", 'x=~"$v", y="}{"'),
        ("b", ""),
        ("c:rule:sum", ""),
        ("d", ""),
    ]
    assert matchers('x=~"$v", y="}{"') == [("x", "=~", "$v"), ("y", "=", "}{")]


def test_substitute_fills_variables_and_leaves_back_references() -> None:
    expr = 'label_replace(m{t=~"$target", j="${job}", q=~"[[queue]]"}[$__rate_interval], "a", "$1")'
    assert substitute(expr, {"target": ".*", "job": "7", "queue": "q1"}) == (
        'label_replace(m{t=~".*", j="7", q=~"q1"}[5m], "a", "$1")'
    )
    with pytest.raises(KeyError, match="target"):
        substitute('m{t=~"$target"}', {})


def test_variable_query_expr() -> None:
    assert variable_query_expr("label_values(dli_up, target)") == "dli_up"
    assert variable_query_expr('label_values(m{a="b, c"}, l)') == 'm{a="b, c"}'
    assert variable_query_expr("label_values(target)") == '{target!=""}'
    assert variable_query_expr("query_result(max by (x) (m))") == "max by (x) (m)"
    assert variable_references("${a:queryparam} $b [[c]] ${__url_time_range} $1") == {
        "a",
        "b",
        "c",
    }
