"""Colours of the job states, thresholds, value mappings and field overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from grafana.schema import Json

#: Threshold steps: (lower bound, colour); the first bound is None (the base colour).
Steps = Sequence[tuple[float | None, str]]

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

GREEN: Final[Steps] = ((None, "green"),)
BLUE: Final[Steps] = ((None, "blue"),)
#: The text colour: for values whose colour comes from mappings or overrides.
TEXT: Final[Steps] = ((None, "text"),)
#: A count that should be 0: red from 1.
RED_FROM_ONE: Final[Steps] = ((None, "green"), (1, "red"))
#: A flag that should be 1: red below.
RED_BELOW_ONE: Final[Steps] = ((None, "red"), (1, "green"))
#: Always red: a value that only exists when something is wrong.
RED: Final[Steps] = ((None, "red"),)
#: Cloud Eye's backpressure levels: 0 OK, 50 low, 100 high.
BACKPRESSURE_LEVELS: Final[Steps] = ((None, "green"), (50, "orange"), (100, "red"))


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


def range_mappings(*ranges: tuple[float | None, float | None, str, str]) -> list[Json]:
    """Range mappings from (low, high, text, colour); a None bound is open (so +Inf can match)."""
    mappings = []
    for index, (low, high, text, color) in enumerate(ranges):
        # Grafana reads a null bound as 0: an open bound must be left out.
        bounds = {key: value for key, value in (("from", low), ("to", high)) if value is not None}
        result = {"color": color, "index": index, "text": text}
        mappings.append({"options": {**bounds, "result": result}, "type": "range"})
    return mappings


def flag_mappings(off: tuple[str, str], on: tuple[str, str]) -> list[Json]:
    """Value mappings of a 0/1 flag: (text, colour) for 0 and for 1."""
    return value_mappings({"0": off, "1": on})


def color_mappings(colors: Mapping[str, str]) -> list[Json]:
    """Value mappings that only colour string values (a state name keeps its text)."""
    return value_mappings({value: (value, color) for value, color in colors.items()})


def field_override(name: str, properties: Mapping[str, Any]) -> Json:
    """A field override for the field (or renamed column) ``name``; property ids are Grafana's
    (dotted for custom options: ``custom.cellOptions``)."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def fixed_color(color: str) -> Json:
    """A field colour that does not depend on the value."""
    return {"fixedColor": color, "mode": "fixed"}


def color_overrides(colors: Mapping[str, str]) -> list[Json]:
    """Field overrides giving each series named after a state its fixed colour."""
    return [field_override(name, {"color": fixed_color(color)}) for name, color in colors.items()]


def fixed_color_column(name: str, color: str) -> Json:
    """A table column whose text is always ``color``."""
    return _color_text_column(name, "color", fixed_color(color))


def state_color_column(name: str, colors: Mapping[str, str]) -> Json:
    """A table column of state names, each in its colour from ``colors``."""
    return _color_text_column(name, "mappings", color_mappings(colors))


def decimals_column(name: str, decimals: int = 0) -> Json:
    """A table column shown with ``decimals`` decimals."""
    return field_override(name, {"decimals": decimals})


def _color_text_column(name: str, property_id: str, value: Any) -> Json:
    return field_override(name, {"custom.cellOptions": {"type": "color-text"}, property_id: value})
