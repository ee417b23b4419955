"""The dashboard frame: shared settings, links between the DLI dashboards, and the grid layout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from grafana.schema import SCHEMA_VERSION, TAGS, Json

#: Grafana's grid is 24 columns wide.
GRID_WIDTH = 24
#: One row of the grid: (height, [(width, panel), ...]).
Row = tuple[int, Sequence[tuple[int, Json]]]


def row(height: int, *cells: tuple[int, Json]) -> Row:
    """A row of panels of the given widths, left to right."""
    return height, cells


def even_row(height: int, *panels: Json) -> Row:
    """A row of panels sharing the width equally (their number must divide 24)."""
    width, rest = divmod(GRID_WIDTH, len(panels))
    if rest:
        raise ValueError(f"{len(panels)} panels cannot share {GRID_WIDTH} columns equally")
    return height, [(width, panel) for panel in panels]


def full_row(height: int, panel: Json) -> Row:
    """A row holding one full-width panel."""
    return height, [(GRID_WIDTH, panel)]


def layout(rows: Iterable[Row]) -> list[Json]:
    """Place panels row by row, top to bottom and left to right; ids in that order."""
    placed: list[Json] = []
    y = 0
    for height, cells in rows:
        x = 0
        for width, panel in cells:
            position = {"h": height, "w": width, "x": x, "y": y}
            head = {"type": panel["type"], "title": panel["title"], "id": len(placed) + 1}
            placed.append({**head, "gridPos": position, **panel})
            x += width
        if x > GRID_WIDTH:
            raise ValueError(f"row at y={y} is {x} wide (max {GRID_WIDTH})")
        y += height
    return placed


def dashboard(
    uid: str, title: str, description: str, variables: list[Json], rows: Iterable[Row]
) -> Json:
    """A complete dashboard with the shared settings, links to the other DLI dashboards."""
    return {
        "annotations": {"list": [_builtin_annotations()]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [_dli_dashboards_link()],
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


def _builtin_annotations() -> Json:
    """Grafana's own annotations and alerts, hidden."""
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def _dli_dashboards_link() -> Json:
    """A dashboard link to every DLI dashboard (by tag), keeping the variables and time range."""
    return {
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
