"""The panel kinds the dashboards use, with the house style (units, legends, tooltips).

Each function returns a panel without position or id; :func:`grafana.board.layout` adds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grafana.schema import JOB_DETAIL_UID, Json, datasource
from grafana.styles import GREEN, Steps, thresholds


def base_panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    unit: str,
    *,
    overrides: list[Json] | None = None,
) -> Json:
    """The parts every panel has; position and id are assigned by the layout."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource(),
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": thresholds(*GREEN)},
            "overrides": overrides or [],
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


def job_detail_link(target: str, job_id: str) -> Json:
    """A data link to the job detail dashboard for the job the clicked value belongs to."""
    return {
        "title": "Job detail",
        "url": (
            f"/d/{JOB_DETAIL_UID}?${{datasource:queryparam}}&var-target={target}"
            f"&var-job={job_id}&${{__url_time_range}}"
        ),
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
    threshold_line: Steps = (),
    legend_table: bool = False,
    overrides: list[Json] | None = None,
) -> Json:
    """A time series panel; ``threshold_line`` draws dashed lines at the given steps."""
    panel = base_panel("timeseries", title, description, targets, unit, overrides=overrides)
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
    steps: Steps = GREEN,
    mappings: list[Json] | None = None,
    text_mode: str = "auto",
    color_mode: str = "value",
    graph: bool = False,
    decimals: int | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    """A stat panel showing the latest value (or the series name, with ``text_mode="name"``)."""
    panel = base_panel("stat", title, description, targets, unit, overrides=overrides)
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
        "reduceOptions": _last_value(),
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
    panel = base_panel("state-timeline", title, description, targets, "short", overrides=overrides)
    defaults = panel["fieldConfig"]["defaults"]
    defaults["color"] = {"mode": "thresholds"}
    defaults["custom"] = {"fillOpacity": 80, "lineWidth": 0}
    defaults["thresholds"] = thresholds((None, "text"))
    if mappings:
        defaults["mappings"] = mappings
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
    """A horizontal bar gauge of instant values (yellow, orange from 3, red from 10), each bar
    linking to ``links``."""
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
        "reduceOptions": _last_value(),
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
    panel = base_panel("table", title, description, targets, "short", overrides=overrides)
    defaults = panel["fieldConfig"]["defaults"]
    defaults["custom"] = {
        "align": "auto",
        "cellOptions": {"type": "auto"},
        "filterable": True,
        "inspect": False,
    }
    if links:
        defaults["links"] = links
    panel["options"] = {
        "cellHeight": "sm",
        "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
        "showHeader": True,
        "sortBy": [{"desc": False, "displayName": sort_by}] if sort_by else [],
    }
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        _organize_columns(columns, [target["refId"] for target in targets]),
    ]
    return panel


def _organize_columns(columns: Mapping[str, str], ref_ids: Sequence[str]) -> Json:
    """The ``organize`` step of a table: show ``columns`` in order, renamed; hide the rest."""
    hidden = ["Time", "__name__", "instance", "job"]
    hidden += [f"Value #{ref}" for ref in ref_ids] + ["Value"]
    return {
        "id": "organize",
        "options": {
            "excludeByName": {name: True for name in hidden if name not in columns},
            "includeByName": {},
            "indexByName": {name: index for index, name in enumerate(columns)},
            "renameByName": dict(columns),
        },
    }


def _last_value() -> Json:
    """Reduce each series to its latest value."""
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}
