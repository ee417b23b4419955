"""Generate the Grafana dashboards in ``grafana/dashboards/`` (one JSON file per dashboard).

The JSON is committed; this script is its source, so the three dashboards share one style (units,
descriptions, variables, colours) and a review sees a readable diff. Run from the repository root::

    .venv/bin/python grafana/build_dashboards.py          # rewrite the JSON files
    .venv/bin/python grafana/build_dashboards.py --check  # exit 1 when they are out of date

Every query goes through the ``${datasource}`` variable and filters by ``target=~"$target"``.
Metric names are the exporter's (README "Metrics") and the recording rules of prometheus/rules.yml.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

#: A JSON object as Grafana stores it.
Json = dict[str, Any]

DASHBOARD_DIR: Final = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION: Final = 39
TAGS: Final = ("dli",)
OVERVIEW_UID: Final = "dli-overview"
JOB_DETAIL_UID: Final = "dli-job-detail"
EXPORTER_HEALTH_UID: Final = "dli-exporter-health"

# --- PromQL building blocks ---------------------------------------------------------------------

TARGET: Final = 'target=~"$target"'
QUEUE: Final = 'queue_name=~"$queue"'
JOB: Final = 'job_id="$job"'
SCRAPE_JOB: Final = 'job=~"$scrape_job"'
#: DLI statuses that mean the job failed and needs a person (ops contract, alert DliJobFailed).
BAD_STATUSES: Final = (
    "job_submit_fail",
    "job_running_exception",
    "job_cancel_fail",
    "job_arrearage_stopped",
)
BAD_STATUS: Final = 'status=~"' + "|".join(BAD_STATUSES) + '"'
#: The default poll interval (config ``poll_interval``); the exporter does not export it.
DEFAULT_POLL_INTERVAL_SECONDS: Final = 60

#: Colour of each DLI status: green running, red failed, orange/yellow in transition, blue at rest.
STATUS_COLORS: Final[Mapping[str, str]] = {
    "job_running": "green",
    "job_submit_fail": "red",
    "job_running_exception": "red",
    "job_cancel_fail": "red",
    "job_arrearage_stopped": "red",
    "job_submitting": "orange",
    "job_downloading": "yellow",
    "job_savepointing": "yellow",
    "job_canceling": "yellow",
    "job_arrearage_recovering": "yellow",
    "job_init": "blue",
    "job_idle": "blue",
    "job_cancel_success": "blue",
    "job_finish": "blue",
}
#: Colour of each Flink job state, on the same scheme.
FLINK_STATE_COLORS: Final[Mapping[str, str]] = {
    "RUNNING": "green",
    "FAILING": "red",
    "FAILED": "red",
    "RESTARTING": "orange",
    "INITIALIZING": "yellow",
    "CREATED": "yellow",
    "RECONCILING": "yellow",
    "CANCELLING": "blue",
    "CANCELED": "blue",
    "SUSPENDED": "blue",
    "FINISHED": "blue",
}


def sel(metric: str, *matchers: str) -> str:
    """A vector selector: ``metric{m1, m2}``."""
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def info_in_queue() -> str:
    """``dli_job_info`` of the selected targets and queues (to join queue_name or filter by it)."""
    return sel("dli_job_info", TARGET, QUEUE)


def in_queue(expr: str) -> str:
    """``expr`` restricted to jobs in the selected queues."""
    return f"({expr}) and on (target, job_id) {info_in_queue()}"


def bad_status() -> str:
    """Jobs whose DLI status is one of :data:`BAD_STATUSES` (value 1, label ``status``)."""
    return f"{sel('dli_job_status', TARGET, BAD_STATUS)} == 1"


def flink_not_running() -> str:
    """Jobs DLI calls running whose Flink state is something else (value 1, label ``state``)."""
    running = sel("dli_job_status", TARGET, 'status="job_running"') + " == 1"
    flink = sel("dli_job_flink_state", TARGET, 'state!="RUNNING"') + " == 1"
    return f"({flink}) and on (target, job_id) ({running})"


# --- panel building blocks ----------------------------------------------------------------------


def datasource() -> Json:
    """The datasource reference every panel and query uses: the ``datasource`` variable."""
    return {"type": "prometheus", "uid": "${datasource}"}


def query(
    expr: str, legend: str = "__auto", *, ref: str = "A", instant: bool = False, table: bool = False
) -> Json:
    """One Prometheus query of a panel."""
    return {
        "datasource": datasource(),
        "editorMode": "code",
        "expr": expr,
        "format": "table" if table else "time_series",
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }


def queries(*items: tuple[str, str]) -> list[Json]:
    """Range queries from (expr, legend) pairs, with refIds A, B, C..."""
    return [query(expr, legend, ref=chr(ord("A") + i)) for i, (expr, legend) in enumerate(items)]


def thresholds(*steps: tuple[float | None, str]) -> Json:
    """Absolute thresholds; the first step's value is None (the base colour)."""
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def value_mappings(texts: Mapping[str, tuple[str, str]]) -> list[Json]:
    """One value mapping: raw value -> (display text, colour)."""
    options = {
        value: {"color": color, "index": index, "text": text}
        for index, (value, (text, color)) in enumerate(texts.items())
    }
    return [{"options": options, "type": "value"}]


def color_mappings(colors: Mapping[str, str]) -> list[Json]:
    """Value mappings that only colour string values (a state name keeps its text)."""
    return value_mappings({value: (value, color) for value, color in colors.items()})


def color_overrides(colors: Mapping[str, str]) -> list[Json]:
    """Field overrides giving each series named after a state its fixed colour."""
    return [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"fixedColor": color, "mode": "fixed"}}],
        }
        for name, color in colors.items()
    ]


def field_override(name: str, properties: Mapping[str, Any]) -> Json:
    """A field override for the field (or renamed column) ``name``; property ids are Grafana's
    (dotted for custom options: ``custom.cellOptions``)."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def job_detail_link(target: str, job_id: str) -> Json:
    """A data link to the job detail dashboard for the job the clicked value belongs to."""
    return {
        "title": "Job detail",
        "url": (
            f"/d/{JOB_DETAIL_UID}?${{datasource:queryparam}}&var-target={target}"
            f"&var-job={job_id}&${{__url_time_range}}"
        ),
    }


def base_panel(kind: str, title: str, description: str, targets: list[Json], unit: str) -> Json:
    """The parts every panel has; position and id are assigned by :func:`layout`."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource(),
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": thresholds((None, "green"))},
            "overrides": [],
        },
        "options": {},
        "targets": targets,
    }


def legend(*, table: bool = False, calcs: Sequence[str] = ()) -> Json:
    """Legend options: a list below the graph, or a table on the right with ``calcs``."""
    return {
        "calcs": list(calcs),
        "displayMode": "table" if table else "list",
        "placement": "right" if table else "bottom",
        "showLegend": True,
    }


def timeseries(
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str,
    stacked: bool = False,
    steps: bool = False,
    decimals: int | None = None,
    minimum: float | None = 0,
    threshold_line: Sequence[tuple[float | None, str]] = (),
    legend_table: bool = False,
) -> Json:
    """A time series panel; ``threshold_line`` draws dashed lines at the given steps."""
    panel = base_panel("timeseries", title, description, targets, unit)
    defaults = panel["fieldConfig"]["defaults"]
    defaults["color"] = {"mode": "palette-classic"}
    defaults["custom"] = {
        "drawStyle": "line",
        "fillOpacity": 25 if stacked else 10,
        "lineInterpolation": "stepAfter" if steps else "linear",
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": "dashed" if threshold_line else "off"},
    }
    if threshold_line:
        defaults["thresholds"] = thresholds(*threshold_line)
    if decimals is not None:
        defaults["decimals"] = decimals
    if minimum is not None:
        defaults["min"] = minimum
    calcs = ("lastNotNull", "max") if legend_table else ()
    panel["options"] = {
        "legend": legend(table=legend_table, calcs=calcs),
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def stat(
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str = "short",
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    mappings: list[Json] | None = None,
    text_mode: str = "auto",
    color_mode: str = "value",
    graph: bool = False,
    decimals: int | None = None,
) -> Json:
    """A stat panel showing the latest value (or the series name, with ``text_mode="name"``)."""
    panel = base_panel("stat", title, description, targets, unit)
    defaults = panel["fieldConfig"]["defaults"]
    defaults["thresholds"] = thresholds(*steps)
    defaults["color"] = {"mode": "thresholds"}
    if mappings:
        defaults["mappings"] = mappings
    if decimals is not None:
        defaults["decimals"] = decimals
    panel["options"] = {
        "colorMode": color_mode,
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showPercentChange": False,
        "textMode": text_mode,
        "wideLayout": True,
    }
    return panel


def state_timeline(
    title: str,
    description: str,
    targets: list[Json],
    *,
    mappings: list[Json] | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    """A state timeline: one row per series, coloured by mapping or by a per-row override.

    With per-row overrides (one row per state) the legend is hidden: the rows are named already,
    and a state without an override (unknown to this dashboard) is grey.
    """
    panel = base_panel("state-timeline", title, description, targets, "short")
    defaults = panel["fieldConfig"]["defaults"]
    defaults["color"] = {"mode": "thresholds"}
    defaults["custom"] = {"fillOpacity": 80, "lineWidth": 0}
    defaults["thresholds"] = thresholds((None, "text"))
    if mappings:
        defaults["mappings"] = mappings
    panel["fieldConfig"]["overrides"] = overrides or []
    panel["options"] = {
        "alignValue": "left",
        "legend": {**legend(), "showLegend": not overrides},
        "mergeValues": True,
        "rowHeight": 0.9,
        "showValue": "never",
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return panel


def bargauge(
    title: str, description: str, targets: list[Json], *, unit: str, links: list[Json]
) -> Json:
    """A horizontal bar gauge of instant values, each bar linking to ``links``."""
    panel = base_panel("bargauge", title, description, targets, unit)
    defaults = panel["fieldConfig"]["defaults"]
    defaults["color"] = {"mode": "thresholds"}
    defaults["decimals"] = 0
    defaults["min"] = 0
    defaults["links"] = links
    defaults["thresholds"] = thresholds((None, "yellow"), (3, "orange"), (10, "red"))
    panel["options"] = {
        "displayMode": "gradient",
        "maxVizHeight": 300,
        "minVizHeight": 16,
        "minVizWidth": 8,
        "namePlacement": "auto",
        "orientation": "horizontal",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
        "sizing": "auto",
        "valueMode": "color",
    }
    return panel


def table(
    title: str,
    description: str,
    targets: list[Json],
    *,
    columns: Mapping[str, str],
    overrides: list[Json] | None = None,
    links: list[Json] | None = None,
    sort_by: str | None = None,
) -> Json:
    """A table of instant queries merged into one row per job.

    ``columns`` maps the fields to show, in order, to their header; every other field (Time, the
    1-valued state-set samples, scrape labels) is hidden.
    """
    panel = base_panel("table", title, description, targets, "short")
    defaults = panel["fieldConfig"]["defaults"]
    defaults["custom"] = {
        "align": "auto",
        "cellOptions": {"type": "auto"},
        "filterable": True,
        "inspect": False,
    }
    if links:
        defaults["links"] = links
    panel["fieldConfig"]["overrides"] = overrides or []
    panel["options"] = {
        "cellHeight": "sm",
        "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
        "showHeader": True,
        "sortBy": [{"desc": False, "displayName": sort_by}] if sort_by else [],
    }
    hidden = ["Time", "__name__", "instance", "job"]
    hidden += [f"Value #{t['refId']}" for t in targets] + ["Value"]
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {name: True for name in hidden if name not in columns},
                "includeByName": {},
                "indexByName": {name: index for index, name in enumerate(columns)},
                "renameByName": dict(columns),
            },
        },
    ]
    return panel


Row = tuple[int, Sequence[tuple[int, Json]]]


def layout(rows: Iterable[Row]) -> list[Json]:
    """Place panels row by row: each row is (height, [(width, panel), ...]); ids in order."""
    placed: list[Json] = []
    y = 0
    for height, cells in rows:
        x = 0
        for width, panel in cells:
            position = {"h": height, "w": width, "x": x, "y": y}
            head = {"type": panel["type"], "title": panel["title"], "id": len(placed) + 1}
            placed.append({**head, "gridPos": position, **panel})
            x += width
        if x > 24:
            raise ValueError(f"row at y={y} is {x} wide (max 24)")
        y += height
    return placed


# --- template variables -------------------------------------------------------------------------


def datasource_variable() -> Json:
    """The ``datasource`` variable: any Prometheus datasource, the default one first."""
    return {
        "current": {},
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


def query_variable(
    name: str,
    label: str,
    definition: str,
    description: str,
    *,
    multi: bool = True,
    regex: str = "",
    query_type: int = 1,
) -> Json:
    """A query variable (``query_type`` 1 = label_values, 3 = query_result); multi adds All."""
    variable: Json = {
        "current": ({"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {}),
        "datasource": datasource(),
        "definition": definition,
        "description": description,
        "hide": 0,
        "includeAll": multi,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": {
            "qryType": query_type,
            "query": definition,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "regex": regex,
        "skipUrlSync": False,
        "sort": 5 if query_type == 3 else 1,
        "type": "query",
    }
    if multi:
        # ".*" rather than a list of the values: it also matches jobs without a queue (the
        # label is then empty and label_values cannot offer it).
        variable["allValue"] = ".*"
    return variable


def target_variable() -> Json:
    """``target``: the exporter's configured targets."""
    return query_variable(
        "target",
        "Target",
        "label_values(dli_up, target)",
        "DLI targets (config `targets[].name`) of the exporter.",
    )


def queue_variable() -> Json:
    """``queue``: the queues of the selected targets' jobs."""
    return query_variable(
        "queue",
        "Queue",
        'label_values(dli_job_info{target=~"$target"}, queue_name)',
        "DLI queues of the jobs. Jobs whose queue is unknown only appear under All.",
    )


def job_variable() -> Json:
    """``job``: one job id, shown as "name #id"."""
    expr = (
        'label_join(dli_job_info{target=~"$target", queue_name=~"$queue"}, '
        '"job_display", " #", "job_name", "job_id")'
    )
    return query_variable(
        "job",
        "Job",
        f"query_result({expr})",
        "The DLI job to show (value: job_id; text: job name #job_id).",
        multi=False,
        # Lookaheads so the order of the labels in the result does not matter.
        regex='/^(?=.*job_display="(?<text>[^"]*)")(?=.*job_id="(?<value>[^"]+)")/',
        query_type=3,
    )


def scrape_job_variable() -> Json:
    """``scrape_job``: Prometheus' job name for the exporter (only the exporter's own series)."""
    return {
        "current": {"text": "dli", "value": "dli"},
        "description": "Prometheus scrape job name of the exporter (`up{job=...}`); regex.",
        "hide": 0,
        "label": "Scrape job",
        "name": "scrape_job",
        "options": [{"selected": True, "text": "dli", "value": "dli"}],
        "query": "dli",
        "skipUrlSync": False,
        "type": "textbox",
    }


# --- dashboards ---------------------------------------------------------------------------------


def dashboard(
    uid: str, title: str, description: str, variables: list[Json], rows: Iterable[Row]
) -> Json:
    """A complete dashboard with the shared settings, links to the other DLI dashboards."""
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": list(TAGS),
                "targetBlank": False,
                "title": "DLI dashboards",
                "tooltip": "",
                "type": "dashboards",
                "url": "",
            }
        ],
        "panels": layout(rows),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": list(TAGS),
        "templating": {"list": variables},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def overview() -> Json:
    """DLI Flink jobs overview: counts, bad jobs, restarts and compute units."""
    detail = job_detail_link("${__data.fields.target}", "${__data.fields.job_id}")
    bar_detail = job_detail_link("${__field.labels.target}", "${__field.labels.job_id}")
    bad_any = f"({bad_status()}) or ({flink_not_running()})"
    bad_table = table(
        "Jobs in a bad state",
        "Jobs whose DLI status means failure (" + ", ".join(BAD_STATUSES) + "), and jobs DLI "
        "reports as job_running whose Flink state is not RUNNING (e.g. RESTARTING, FAILING). "
        "Click a row for the job's detail dashboard.",
        [
            query(
                "max by (target, job_id, job_name, queue_name, problem) (\n"
                "  label_replace(\n"
                f"    ({bad_status()})\n"
                f"      * on (target, job_id) group_left (queue_name) {info_in_queue()},\n"
                '    "problem", "DLI status $1", "status", "(.+)"\n'
                "  )\n"
                "  or\n"
                "  label_replace(\n"
                f"    ({flink_not_running()})\n"
                f"      * on (target, job_id) group_left (queue_name) {info_in_queue()},\n"
                '    "problem", "Flink state $1 (DLI: job_running)", "state", "(.+)"\n'
                "  )\n"
                ")",
                ref="A",
                instant=True,
                table=True,
            ),
            query(
                "max by (target, job_id, job_name) (\n"
                f"  {sel('dli_job_restarts_total', TARGET)}\n"
                f"  and on (target, job_id) ({bad_any})\n"
                f"  and on (target, job_id) {info_in_queue()}\n"
                ")",
                ref="B",
                instant=True,
                table=True,
            ),
        ],
        columns={
            "target": "Target",
            "job_name": "Job",
            "job_id": "Job ID",
            "queue_name": "Queue",
            "problem": "Problem",
            "Value #B": "Restarts",
        },
        overrides=[
            field_override(
                "Problem",
                {
                    "custom.cellOptions": {"type": "color-text"},
                    "color": {"fixedColor": "red", "mode": "fixed"},
                },
            ),
            field_override("Restarts", {"decimals": 0}),
        ],
        links=[detail],
        sort_by="Target",
    )
    job_columns = {
        "target": "Target",
        "job_name": "Job",
        "job_id": "Job ID",
        "queue_name": "Queue",
        "job_type": "Type",
        "status": "DLI status",
        "state": "Flink state",
        "Value #C": "Restarts",
        "Value #D": "CUs",
        "Value #E": "Running for",
    }
    jobs_table = table(
        "Jobs",
        "Every job of the selected targets and queues with its DLI status, Flink state (running "
        "jobs only), restart count, configured CUs and run time. Click a row for its detail.",
        [
            query(
                "max by (target, job_id, job_name, queue_name, job_type, status) (\n"
                f"  ({sel('dli_job_status', TARGET)} == 1)\n"
                "    * on (target, job_id) group_left (queue_name, job_type)\n"
                f"    {info_in_queue()}\n"
                ")",
                ref="A",
                instant=True,
                table=True,
            ),
            *(
                query(f"max by ({labels}) ({in_queue(expr)})", ref=ref, instant=True, table=True)
                for ref, labels, expr in (
                    (
                        "B",
                        "target, job_id, job_name, state",
                        f"{sel('dli_job_flink_state', TARGET)} == 1",
                    ),
                    ("C", "target, job_id, job_name", sel("dli_job_restarts_total", TARGET)),
                    ("D", "target, job_id, job_name", sel("dli_job_compute_units", TARGET)),
                    ("E", "target, job_id, job_name", sel("dli_job_duration_seconds", TARGET)),
                )
            ),
        ],
        columns=job_columns,
        overrides=[
            field_override(
                "DLI status",
                {
                    "custom.cellOptions": {"type": "color-text"},
                    "mappings": color_mappings(STATUS_COLORS),
                },
            ),
            field_override(
                "Flink state",
                {
                    "custom.cellOptions": {"type": "color-text"},
                    "mappings": color_mappings(FLINK_STATE_COLORS),
                },
            ),
            field_override("Restarts", {"decimals": 0}),
            field_override("Running for", {"unit": "dtdurations"}),
        ],
        links=[detail],
        sort_by="Job",
    )
    no_queue = '"queue_name", "(none)", "queue_name", ""'
    red_when_any = ((None, "green"), (1, "red"))
    return dashboard(
        OVERVIEW_UID,
        "DLI Flink jobs overview",
        "Huawei Cloud DLI Flink jobs seen by dli-exporter: status, failures, restarts, CUs.",
        [datasource_variable(), target_variable(), queue_variable()],
        [
            (
                4,
                [
                    (
                        4,
                        stat(
                            "Running jobs",
                            "Jobs whose DLI status is job_running (recording rule "
                            "target:dli_jobs_running:count; the queue filter does not apply).",
                            [query(f"sum({sel('target:dli_jobs_running:count', TARGET)})")],
                            color_mode="value",
                            graph=True,
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Jobs not running",
                            "Jobs in any other DLI status, stopped and finished ones included "
                            "(recording rule target:dli_jobs_not_running:count; the queue filter "
                            "does not apply).",
                            [query(f"sum({sel('target:dli_jobs_not_running:count', TARGET)})")],
                            steps=((None, "blue"),),
                            graph=True,
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Jobs in a failed status",
                            "Jobs whose DLI status is " + ", ".join(BAD_STATUSES) + " (alert "
                            "DliJobFailed).",
                            [
                                query(
                                    f"count(({bad_status()}) and on (target, job_id) "
                                    f"{info_in_queue()}) or vector(0)"
                                )
                            ],
                            steps=red_when_any,
                            color_mode="background",
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Running but not RUNNING in Flink",
                            "Jobs DLI reports as job_running whose Flink state (execute-graph) is "
                            "not RUNNING (alert DliJobNotRunningInFlink).",
                            [
                                query(
                                    f"count(({flink_not_running()}) and on (target, job_id) "
                                    f"{info_in_queue()}) or vector(0)"
                                )
                            ],
                            steps=red_when_any,
                            color_mode="background",
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Configured CUs",
                            "Sum of the compute units configured for the jobs of the selected "
                            "targets and queues, whatever their status "
                            "(target_queue:dli_job_compute_units:sum).",
                            [
                                query(
                                    "sum("
                                    + sel("target_queue:dli_job_compute_units:sum", TARGET, QUEUE)
                                    + ")"
                                )
                            ],
                            steps=((None, "blue"),),
                            graph=True,
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Targets down",
                            "Targets whose latest poll failed to list the jobs (dli_up == 0); "
                            "their job series are the last good ones. See Exporter health.",
                            [query(f"count({sel('dli_up', TARGET)} == 0) or vector(0)")],
                            steps=red_when_any,
                            color_mode="background",
                        ),
                    ),
                ],
            ),
            (
                9,
                [
                    (
                        12,
                        _with_overrides(
                            timeseries(
                                "Jobs by DLI status",
                                "Number of jobs in each DLI status over time, stacked "
                                "(target_status:dli_jobs:count; the queue filter does not apply).",
                                queries(
                                    (
                                        "sum by (status) "
                                        f"({sel('target_status:dli_jobs:count', TARGET)})",
                                        "{{status}}",
                                    )
                                ),
                                unit="short",
                                stacked=True,
                                decimals=0,
                                legend_table=True,
                            ),
                            color_overrides(STATUS_COLORS),
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "Configured CUs by queue",
                            "Compute units configured for the jobs of each queue and target, "
                            "stacked, whatever the jobs' status "
                            "(target_queue:dli_job_compute_units:sum). (none): jobs without a "
                            "queue.",
                            queries(
                                (
                                    "label_replace("
                                    + sel("target_queue:dli_job_compute_units:sum", TARGET, QUEUE)
                                    + f", {no_queue})",
                                    "{{target}} / {{queue_name}}",
                                )
                            ),
                            unit="short",
                            stacked=True,
                            legend_table=True,
                        ),
                    ),
                ],
            ),
            (8, [(24, bad_table)]),
            (
                9,
                [
                    (
                        12,
                        bargauge(
                            "Top restarting jobs (last hour)",
                            "The 10 jobs DLI restarted most in the last hour "
                            "(increase(dli_job_restarts_total[1h]); alert DliJobRestartLoop fires "
                            "above 3 in 15 minutes). Click a bar for the job's detail.",
                            [
                                query(
                                    "topk(10,\n"
                                    "  max by (target, job_id, job_name) (\n"
                                    "    "
                                    + in_queue(
                                        f"increase({sel('dli_job_restarts_total', TARGET)}[1h])"
                                    )
                                    + "\n  ) > 0\n)",
                                    "{{job_name}} ({{target}})",
                                    instant=True,
                                )
                            ],
                            unit="short",
                            links=[bar_detail],
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "Actual CUs by queue",
                            "Compute units the jobs of each queue and target actually use "
                            "(real_cu_number, or cu_number when DLI reports 0), stacked "
                            "(target_queue:dli_job_actual_compute_units:sum).",
                            queries(
                                (
                                    "label_replace("
                                    + sel(
                                        "target_queue:dli_job_actual_compute_units:sum",
                                        TARGET,
                                        QUEUE,
                                    )
                                    + f", {no_queue})",
                                    "{{target}} / {{queue_name}}",
                                )
                            ),
                            unit="short",
                            stacked=True,
                            legend_table=True,
                        ),
                    ),
                ],
            ),
            (12, [(24, jobs_table)]),
        ],
    )


def _with_overrides(panel: Json, overrides: list[Json]) -> Json:
    panel["fieldConfig"]["overrides"] = overrides
    return panel


def job_detail() -> Json:
    """DLI job detail: one job's status history, restarts, run time and resources."""

    def job_sel(metric: str) -> str:
        return sel(metric, TARGET, JOB)

    yes_no = value_mappings({"0": ("No", "text"), "1": ("Yes", "green")})
    resources = (
        ("dli_job_compute_units", "CUs"),
        ("dli_job_manager_compute_units", "Manager CUs"),
        ("dli_job_actual_compute_units", "Actual CUs"),
        ("dli_job_parallelism", "Parallelism"),
        ("dli_job_taskmanager_compute_units", "TM CUs"),
        ("dli_job_taskmanager_slots", "TM slots"),
        ("dli_job_executors", "Executors"),
        ("dli_job_executor_compute_units", "Executor CUs"),
    )
    resource_queries = queries(*((job_sel(metric), name) for metric, name in resources))
    info = table(
        "Job",
        "What DLI says about the job: name, id, type, queue, owner, run mode and Flink version "
        "(dli_job_info).",
        [query(job_sel("dli_job_info"), instant=True, table=True)],
        columns={
            "target": "Target",
            "job_name": "Job",
            "job_id": "Job ID",
            "job_type": "Type",
            "queue_name": "Queue",
            "user_name": "Owner",
            "run_mode": "Run mode",
            "flink_version": "Flink version",
        },
    )
    return dashboard(
        JOB_DETAIL_UID,
        "DLI job detail",
        "One DLI Flink job: status history, Flink state, restarts, run time and resources.",
        [datasource_variable(), target_variable(), queue_variable(), job_variable()],
        [
            (4, [(24, info)]),
            (
                4,
                [
                    (
                        6,
                        _with_overrides(
                            stat(
                                "DLI status",
                                "The job's current DLI status (dli_job_status == 1).",
                                [query(f"{job_sel('dli_job_status')} == 1", "{{status}}")],
                                text_mode="name",
                                steps=((None, "text"),),
                                color_mode="background",
                            ),
                            color_overrides(STATUS_COLORS),
                        ),
                    ),
                    (
                        6,
                        _with_overrides(
                            stat(
                                "Flink state",
                                "The Flink job state from execute-graph (dli_job_flink_state == "
                                "1); only for running jobs, absent when the call failed.",
                                [query(f"{job_sel('dli_job_flink_state')} == 1", "{{state}}")],
                                text_mode="name",
                                steps=((None, "text"),),
                                color_mode="background",
                            ),
                            color_overrides(FLINK_STATE_COLORS),
                        ),
                    ),
                    (
                        3,
                        stat(
                            "Restarts",
                            "How many times DLI has restarted the job (dli_job_restarts_total).",
                            [query(job_sel("dli_job_restarts_total"))],
                            decimals=0,
                        ),
                    ),
                    (
                        3,
                        stat(
                            "Restarts (1h)",
                            "Restarts in the last hour (increase over 1h; DliJobRestartLoop fires "
                            "above 3 in 15 minutes).",
                            [query(f"increase({job_sel('dli_job_restarts_total')}[1h])")],
                            steps=((None, "green"), (1, "orange"), (4, "red")),
                            decimals=0,
                        ),
                    ),
                    (
                        6,
                        stat(
                            "Running for",
                            "How long the job has run (dli_job_duration_seconds, from "
                            "execute-graph for running jobs, else the job list).",
                            [query(job_sel("dli_job_duration_seconds"))],
                            unit="dtdurations",
                        ),
                    ),
                ],
            ),
            (
                4,
                [
                    (
                        6,
                        stat(
                            "Created",
                            "When the job was created (dli_job_create_time_seconds).",
                            [query(f"{job_sel('dli_job_create_time_seconds')} * 1000")],
                            unit="dateTimeAsIso",
                        ),
                    ),
                    (
                        6,
                        stat(
                            "Last started",
                            "When the job last started (dli_job_start_time_seconds); no data "
                            "when it never started.",
                            [query(f"{job_sel('dli_job_start_time_seconds')} * 1000")],
                            unit="dateTimeAsIso",
                        ),
                    ),
                    (
                        6,
                        stat(
                            "Has savepoint",
                            "Whether the job has a savepoint to resume from "
                            "(dli_job_has_savepoint).",
                            [query(job_sel("dli_job_has_savepoint"))],
                            mappings=yes_no,
                            unit="none",
                        ),
                    ),
                    (
                        6,
                        stat(
                            "Stoppable",
                            "Whether Flink reports the running job as stoppable "
                            "(dli_job_stoppable, execute-graph isStoppable).",
                            [query(job_sel("dli_job_stoppable"))],
                            mappings=yes_no,
                            unit="none",
                        ),
                    ),
                ],
            ),
            (
                4,
                [
                    (
                        24,
                        stat(
                            "Resources",
                            "The job's resource settings (job_config): CUs (cu_number), manager "
                            "CUs, actual CUs (real_cu_number, or cu_number when 0), parallelism, "
                            "CUs and slots per task manager, executors and CUs per executor. A "
                            "setting DLI did not report shows no value.",
                            resource_queries,
                            text_mode="value_and_name",
                            steps=((None, "blue"),),
                        ),
                    ),
                ],
            ),
            (
                6,
                [
                    (
                        24,
                        state_timeline(
                            "DLI status history",
                            "The job's DLI status over time: one row per status it has been in "
                            "(dli_job_status == 1).",
                            [query(f"{job_sel('dli_job_status')} == 1", "{{status}}")],
                            overrides=color_overrides(STATUS_COLORS),
                        ),
                    ),
                ],
            ),
            (
                5,
                [
                    (
                        24,
                        state_timeline(
                            "Flink state history",
                            "The Flink job state over time while the job runs "
                            "(dli_job_flink_state == 1); gaps where the job was not running or "
                            "execute-graph failed.",
                            [query(f"{job_sel('dli_job_flink_state')} == 1", "{{state}}")],
                            overrides=color_overrides(FLINK_STATE_COLORS),
                        ),
                    ),
                ],
            ),
            (
                8,
                [
                    (
                        12,
                        timeseries(
                            "Restarts",
                            "DLI's restart counter for the job and its increase over the "
                            "preceding hour.",
                            queries(
                                (job_sel("dli_job_restarts_total"), "restart count"),
                                (
                                    f"increase({job_sel('dli_job_restarts_total')}[1h])",
                                    "restarts in the preceding hour",
                                ),
                            ),
                            unit="short",
                            decimals=0,
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "Run time",
                            "How long the job has been running (dli_job_duration_seconds); a drop "
                            "means it was restarted or resubmitted.",
                            queries((job_sel("dli_job_duration_seconds"), "run time")),
                            unit="s",
                        ),
                    ),
                ],
            ),
            (
                8,
                [
                    (
                        24,
                        timeseries(
                            "Resource settings over time",
                            "The job's CU, parallelism, task manager and executor settings over "
                            "time; a step shows a configuration change.",
                            resource_queries,
                            unit="short",
                            steps=True,
                            legend_table=True,
                        ),
                    ),
                ],
            ),
        ],
    )


def exporter_health() -> Json:
    """Exporter health: polls, DLI API traffic, errors and latency, build and config reload."""
    interval = DEFAULT_POLL_INTERVAL_SECONDS
    up_mappings = value_mappings({"0": ("down", "red"), "1": ("up", "green")})
    bucket = sel("dli_api_request_duration_seconds_bucket", TARGET)
    latency = [
        query(
            f"histogram_quantile({q}, sum by (operation, le) (rate({bucket}[5m])))",
            f"p{round(q * 100)} {{{{operation}}}}",
            ref=ref,
        )
        for ref, q in (("A", 0.5), ("B", 0.9), ("C", 0.99))
    ]
    return dashboard(
        EXPORTER_HEALTH_UID,
        "DLI exporter health",
        "Is dli-exporter polling DLI: target status, poll timing, API requests, errors, latency.",
        [datasource_variable(), target_variable(), scrape_job_variable()],
        [
            (
                4,
                [
                    (
                        4,
                        stat(
                            "Targets up",
                            "Targets whose latest poll listed the jobs (sum of dli_up).",
                            [query(f"sum({sel('dli_up', TARGET)})")],
                            steps=((None, "green"),),
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Targets down",
                            "Targets whose latest poll failed (dli_up == 0; alert DliTargetDown "
                            "after 5 minutes).",
                            [query(f"count({sel('dli_up', TARGET)} == 0) or vector(0)")],
                            steps=((None, "green"), (1, "red")),
                            color_mode="background",
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Exporter scrape",
                            "Whether Prometheus can scrape the exporter (up of the scrape job "
                            "in the Scrape job variable; alert DliExporterAbsent).",
                            [query(f"min({sel('up', SCRAPE_JOB)})")],
                            mappings=up_mappings,
                            steps=((None, "red"), (1, "green")),
                            color_mode="background",
                            unit="none",
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Config reload",
                            "Whether the latest configuration reload (SIGHUP or POST /-/reload) "
                            "worked; on failure the previous configuration stays in use "
                            "(dli_config_last_reload_successful).",
                            [query(f"min({sel('dli_config_last_reload_successful', SCRAPE_JOB)})")],
                            mappings=value_mappings({"0": ("failed", "red"), "1": ("ok", "green")}),
                            steps=((None, "red"), (1, "green")),
                            color_mode="background",
                            unit="none",
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Config loaded",
                            "When the configuration was last loaded successfully "
                            "(dli_config_last_reload_success_timestamp_seconds).",
                            [
                                query(
                                    "max("
                                    + sel(
                                        "dli_config_last_reload_success_timestamp_seconds",
                                        SCRAPE_JOB,
                                    )
                                    + ") * 1000"
                                )
                            ],
                            unit="dateTimeFromNow",
                            steps=((None, "text"),),
                        ),
                    ),
                    (
                        4,
                        stat(
                            "Version",
                            "Exporter and Python versions of each exporter instance "
                            "(dli_exporter_build_info).",
                            [
                                query(
                                    sel("dli_exporter_build_info", SCRAPE_JOB),
                                    "{{version}} (Python {{python_version}})",
                                )
                            ],
                            text_mode="name",
                            steps=((None, "text"),),
                            unit="none",
                        ),
                    ),
                ],
            ),
            (
                5,
                [
                    (
                        24,
                        state_timeline(
                            "Target status",
                            "dli_up per target over time: up when the poll listed the jobs, "
                            "down when listing failed (after retries).",
                            [query(sel("dli_up", TARGET), "{{target}}")],
                            mappings=up_mappings,
                        ),
                    ),
                ],
            ),
            (
                8,
                [
                    (
                        12,
                        timeseries(
                            "Poll duration",
                            "How long each target's latest poll took (dli_poll_duration_seconds). "
                            "The poll interval is not exported: the dashed lines are the default "
                            f"{interval}s interval and the poll deadline (90% of it); move them "
                            "(panel thresholds) if you configured another poll_interval.",
                            queries((sel("dli_poll_duration_seconds", TARGET), "{{target}}")),
                            unit="s",
                            threshold_line=(
                                (None, "green"),
                                (interval * 0.9, "orange"),
                                (interval, "red"),
                            ),
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "Time since last successful poll",
                            "Age of each target's data: now minus "
                            "dli_last_poll_success_timestamp_seconds. DliStaleData fires above "
                            f"3 poll intervals ({3 * interval}s with the default interval, dashed "
                            "line); the job series are dropped at that age.",
                            queries(
                                (
                                    "time() - "
                                    + sel("dli_last_poll_success_timestamp_seconds", TARGET),
                                    "{{target}}",
                                )
                            ),
                            unit="s",
                            threshold_line=((None, "green"), (3 * interval, "red")),
                        ),
                    ),
                ],
            ),
            (
                8,
                [
                    (
                        12,
                        timeseries(
                            "API requests by operation",
                            "DLI and IAM API requests per second, retries included "
                            "(target_operation:dli_api_requests:rate5m).",
                            queries(
                                (
                                    sel("target_operation:dli_api_requests:rate5m", TARGET),
                                    "{{target}} {{operation}}",
                                )
                            ),
                            unit="reqps",
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "API error ratio by operation",
                            "Share of API requests that did not get a 2xx answer, over 5 minutes "
                            "(target_operation:dli_api_request_errors:ratio_rate5m). "
                            "DliApiErrorRatioHigh fires above 20% (dashed line).",
                            queries(
                                (
                                    sel(
                                        "target_operation:dli_api_request_errors:ratio_rate5m",
                                        TARGET,
                                    ),
                                    "{{target}} {{operation}}",
                                )
                            ),
                            unit="percentunit",
                            threshold_line=((None, "green"), (0.2, "red")),
                        ),
                    ),
                ],
            ),
            (
                8,
                [
                    (
                        12,
                        timeseries(
                            "API requests by code",
                            "API requests per second by operation and result: HTTP status, "
                            "timeout, or error (connection failure or unusable body), stacked.",
                            queries(
                                (
                                    "sum by (operation, code) (rate("
                                    + sel("dli_api_requests_total", TARGET)
                                    + "[5m]))",
                                    "{{operation}} {{code}}",
                                )
                            ),
                            unit="reqps",
                            stacked=True,
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "API latency quantiles",
                            "Median, 90th and 99th percentile of API request latency by "
                            "operation over 5 minutes (dli_api_request_duration_seconds).",
                            latency,
                            unit="s",
                        ),
                    ),
                ],
            ),
            (
                8,
                [
                    (
                        12,
                        timeseries(
                            "Jobs published",
                            "Jobs the exporter publishes per target (dli_target_jobs).",
                            queries((sel("dli_target_jobs", TARGET), "{{target}}")),
                            unit="short",
                            decimals=0,
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "Average API latency",
                            "Mean API request latency by operation over 5 minutes.",
                            queries(
                                (
                                    "sum by (operation) (rate("
                                    + sel("dli_api_request_duration_seconds_sum", TARGET)
                                    + "[5m]))\n/\nsum by (operation) (rate("
                                    + sel("dli_api_request_duration_seconds_count", TARGET)
                                    + "[5m]))",
                                    "{{operation}}",
                                )
                            ),
                            unit="s",
                        ),
                    ),
                ],
            ),
        ],
    )


def build_all() -> dict[str, Json]:
    """Every dashboard by file name."""
    return {
        f"{board['uid']}.json": board for board in (overview(), job_detail(), exporter_health())
    }


def render(board: Json) -> str:
    """The dashboard as committed: 2-space indented JSON, key order as built, final newline."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` report the ones that differ (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a diff")
    args = parser.parse_args(argv)
    stale = []
    for name, board in build_all().items():
        path = DASHBOARD_DIR / name
        text = render(board)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {DASHBOARD_DIR / name}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
