"""A DLI resource that exists only in the test suite: "widgets", one module, as a new source is.

It proves the structure: `WIDGETS` is written like `exporter.dli.jobs` (a source polled through
the target's `Transport`, a parser reading values through `exporter.values`, its metric rows)
and reaches ``/metrics`` by being passed in the resources, with no edit to the poller,
collector, writer or web. `widget_route` serves it from the simulator's application.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from exporter.config import MetricOptions
from exporter.dli.jobmodel import JobState
from exporter.dli.resource import Resource, SourceContext, result_of
from exporter.dli.transport import ResponseParseError
from exporter.metricspec import TARGET_LABELS, MetricSpec, Reading
from exporter.snapshot import Snapshot
from exporter.values import ValueIssues, read_int, read_str

WIDGETS_OPERATION: Final = "list_widgets"
WIDGETS_PATH: Final = "/v1.0/{project_id}/widgets"


@dataclass(frozen=True, slots=True)
class Widget:
    """One widget: a name and how many spare parts it has."""

    name: str
    spares: int | None


def parse_widgets(payload: object, issues: ValueIssues) -> tuple[Widget, ...]:
    """``{"widgets": [{"name": ..., "spares": ...}, ...]}``; a wrong shape raises."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("widgets"), list):
        raise ResponseParseError("widgets is missing")
    widgets = []
    for raw in payload["widgets"]:
        if isinstance(raw, Mapping):
            name = read_str(raw.get("name"), "name", issues)
            if name is not None:
                widgets.append(Widget(name, read_int(raw.get("spares"), "spares", issues)))
    return tuple(widgets)


class WidgetSource:
    """One target's widgets, read through its transport."""

    def __init__(self, context: SourceContext) -> None:
        self._transport = context.transport
        self._path = WIDGETS_PATH.format(project_id=context.target.project_id)

    async def poll(self, jobs: tuple[JobState, ...] | None, deadline: float) -> tuple[Widget, ...]:
        return await self._transport.get(
            WIDGETS_OPERATION, self._path, {}, parse_widgets, max_body=65536, deadline=deadline
        )


def _spares(snapshot: Snapshot) -> Iterable[Reading]:
    result = result_of(snapshot, WIDGETS)
    if result is None or result.data is None:
        return ()
    return (
        ((snapshot.target, widget.name), float(widget.spares))
        for widget in result.data
        if widget.spares is not None
    )


def _up(snapshot: Snapshot) -> Iterable[Reading]:
    result = result_of(snapshot, WIDGETS)
    return () if result is None else (((snapshot.target,), float(result.ok)),)


def widget_rows(_options: MetricOptions) -> tuple[MetricSpec, ...]:
    """The widget families: spare parts per widget, and whether the latest read worked."""
    return (
        MetricSpec(
            "dli_test_widget_spares",
            "gauge",
            "Spare parts per widget (test-only resource).",
            (*TARGET_LABELS, "widget"),
            _spares,
        ),
        MetricSpec(
            "dli_test_widgets_up",
            "gauge",
            "1 when the latest read of the widgets worked (test-only resource).",
            TARGET_LABELS,
            _up,
        ),
    )


WIDGETS: Final[Resource[tuple[Widget, ...]]] = Resource(
    name="widgets", open=WidgetSource, rows=widget_rows
)


@dataclass(slots=True)
class WidgetShop:
    """What the test route answers: the widgets, or a failure status."""

    widgets: list[dict[str, object]]
    status: int = 200

    async def handle(self, _request: web.Request) -> web.Response:
        if self.status != 200:
            return web.json_response({"error_code": "DLI.0999", "error_msg": "no"}, status=500)
        return web.json_response({"widgets": self.widgets})


def widget_route(app: web.Application, shop: WidgetShop) -> web.Application:
    """``app`` (the simulator's, behind its gateway: signatures checked) serving ``shop``."""
    app.router.add_get(WIDGETS_PATH, shop.handle, name=WIDGETS_OPERATION, allow_head=False)
    return app
