"""Panel targets: the Prometheus queries a panel runs."""

from __future__ import annotations

from grafana.schema import Json, datasource


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


def label_legend(label: str) -> str:
    """A legend format showing each series' ``label``: ``{{label}}``."""
    return "{{" + label + "}}"


def table_query(expr: str, ref: str = "A") -> Json:
    """An instant query in table format (one row per series), for table panels."""
    return query(expr, ref=ref, instant=True, table=True)


def queries(*items: tuple[str, str]) -> list[Json]:
    """Range queries from (expr, legend) pairs, with refIds A, B, C..."""
    return [query(expr, legend, ref=ref_id(index)) for index, (expr, legend) in enumerate(items)]


def ref_id(index: int) -> str:
    """The refId of a panel's ``index``-th query: A, B, C..."""
    return chr(ord("A") + index)
