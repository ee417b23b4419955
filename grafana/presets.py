"""Ready-made panels that recur across the dashboards, built from :mod:`grafana.panels`."""

from __future__ import annotations

from collections.abc import Mapping

from grafana.panels import stat, state_timeline
from grafana.promql import count_or_zero, milliseconds
from grafana.schema import Json
from grafana.styles import (
    GREEN,
    RED_BELOW_ONE,
    RED_FROM_ONE,
    TEXT,
    Steps,
    color_overrides,
    flag_mappings,
)
from grafana.targets import label_legend, query


def total_stat(
    title: str, description: str, expr: str, *, steps: Steps = GREEN, graph: bool = True
) -> Json:
    """The sum of ``expr``, with a sparkline unless ``graph`` is false."""
    return stat(title, description, [query(f"sum({expr})")], steps=steps, graph=graph)


def problem_count_stat(title: str, description: str, expr: str) -> Json:
    """How many series ``expr`` has; green at 0, a red background from 1."""
    return stat(
        title,
        description,
        [query(count_or_zero(expr))],
        steps=RED_FROM_ONE,
        color_mode="background",
    )


def state_stat(
    title: str, description: str, expr: str, label: str, colors: Mapping[str, str]
) -> Json:
    """The current state: the ``label`` of the series of ``expr``, on its colour from ``colors``."""
    return stat(
        title,
        description,
        [query(expr, label_legend(label))],
        text_mode="name",
        steps=TEXT,
        color_mode="background",
        overrides=color_overrides(colors),
    )


def state_history(
    title: str, description: str, expr: str, label: str, colors: Mapping[str, str]
) -> Json:
    """The states over time: one timeline row per value of ``label``, coloured from ``colors``."""
    return state_timeline(
        title,
        description,
        [query(expr, label_legend(label))],
        overrides=color_overrides(colors),
    )


def timestamp_stat(
    title: str,
    description: str,
    seconds: str,
    *,
    unit: str = "dateTimeAsIso",
    steps: Steps = GREEN,
) -> Json:
    """A Unix time in seconds shown as a date (``unit`` dateTimeAsIso or dateTimeFromNow)."""
    return stat(title, description, [query(milliseconds(seconds))], unit=unit, steps=steps)


def yes_no_stat(title: str, description: str, expr: str) -> Json:
    """A 0/1 flag shown as No / Yes (green)."""
    mappings = flag_mappings(("No", "text"), ("Yes", "green"))
    return stat(title, description, [query(expr)], mappings=mappings, unit="none")


def health_flag_stat(
    title: str, description: str, expr: str, *, bad_text: str, good_text: str
) -> Json:
    """A 0/1 flag that should be 1: ``good_text`` on green, else ``bad_text`` on red."""
    return stat(
        title,
        description,
        [query(expr)],
        mappings=flag_mappings((bad_text, "red"), (good_text, "green")),
        steps=RED_BELOW_ONE,
        color_mode="background",
        unit="none",
    )
