"""The queue resource: every queue of the project (``queue_type=all``) and its compute units.

One call a poll. ``queue_type=all`` because the API's default, ``sql``, hides the general-purpose
queues Flink jobs run on. ``queue_name`` is the label ``dli_job_info`` carries too, so a job's
queue capacity is one join away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from exporter.config import MetricOptions
from exporter.dli.answers import require_list, successful_body
from exporter.dli.api import LIST_QUEUES, list_queues_path
from exporter.dli.capacity import ItemRows, flag, value
from exporter.dli.jobmodel import FlinkJob
from exporter.dli.resource import Resource, SourceContext
from exporter.metricspec import MetricSpec, Reading
from exporter.values import ValueIssues, read_bool, read_float, read_int, read_str

__all__ = ["QUEUES", "Queue", "parse_queues"]

#: A project has at most a few hundred queues (~1 KB each).
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
#: ``resource_mode`` and ``charging_mode`` as label values (others are kept as sent).
RESOURCE_MODES: Final = {0: "shared", 1: "dedicated"}
CHARGING_MODES: Final = {1: "pay_per_use", 2: "yearly_monthly"}


@dataclass(frozen=True, slots=True)
class Queue:
    """One queue of ``GET /v1.0/{project_id}/queues``; every field but the name may be unknown."""

    name: str
    queue_type: str | None = None
    resource_mode: str | None = None
    charging_mode: str | None = None
    elastic_resource_pool: str | None = None
    cu_count: int | None = None
    used_cu: float | None = None
    cu_scale_out_limit: int | None = None
    cu_scale_in_limit: int | None = None
    is_restarting: bool | None = None


def parse_queues(payload: object, issues: ValueIssues) -> tuple[Queue, ...]:
    """The queues of a list-queues answer; entries without a name are left out."""
    queues = []
    for raw in require_list(successful_body(payload), "queues"):
        if isinstance(raw, Mapping):
            queue = _queue(raw, issues)
            if queue is not None:
                queues.append(queue)
    return tuple(queues)


def _queue(raw: Mapping[str, object], issues: ValueIssues) -> Queue | None:
    name = read_str(raw.get("queue_name"), "queue_name", issues)
    if not name:
        return None
    return Queue(
        name=name,
        queue_type=read_str(raw.get("queue_type"), "queue_type", issues),
        resource_mode=_mode(raw.get("resource_mode"), "resource_mode", RESOURCE_MODES, issues),
        charging_mode=_mode(raw.get("charging_mode"), "charging_mode", CHARGING_MODES, issues),
        elastic_resource_pool=read_str(
            raw.get("elastic_resource_pool_name"), "elastic_resource_pool_name", issues
        ),
        cu_count=read_int(raw.get("cu_count"), "cu_count", issues),
        used_cu=read_float(raw.get("used_cu"), "used_cu", issues),
        cu_scale_out_limit=read_int(raw.get("cu_scale_out_limit"), "cu_scale_out_limit", issues),
        cu_scale_in_limit=read_int(raw.get("cu_scale_in_limit"), "cu_scale_in_limit", issues),
        is_restarting=read_bool(raw.get("is_restarting"), "is_restarting", issues),
    )


def _mode(raw: object, field: str, names: Mapping[int, str], issues: ValueIssues) -> str | None:
    """A numeric mode by its name; another number or a string as sent."""
    if isinstance(raw, str):
        return read_str(raw, field, issues, limit=32)
    number = read_int(raw, field, issues, high=10**6)
    return None if number is None else names.get(number, str(number))


class QueueSource:
    """One target's queue list, one call a poll."""

    def __init__(self, context: SourceContext) -> None:
        self._transport = context.transport
        self._project = context.project

    async def poll(self, jobs: tuple[FlinkJob, ...] | None, deadline: float) -> tuple[Queue, ...]:
        project_id = await self._project.resolve(deadline=deadline)
        return await self._transport.get(
            LIST_QUEUES,
            list_queues_path(project_id),
            {"queue_type": "all"},
            parse_queues,
            max_body=MAX_BODY_BYTES,
            deadline=deadline,
        )


def _info(queue: Queue) -> Iterable[Reading]:
    labels = (
        queue.queue_type,
        queue.resource_mode,
        queue.elastic_resource_pool,
        queue.charging_mode,
    )
    return ((tuple(label or "" for label in labels), 1.0),)


def queue_rows(_options: MetricOptions) -> tuple[MetricSpec, ...]:
    """The queue families, one series per queue."""

    row = ItemRows(QUEUES, "queue_name", _name).row
    return (
        row(
            "dli_queue_info",
            "Always 1 for each queue; labels give its type, resource mode, elastic resource "
            "pool and charging mode (empty when unknown).",
            _info,
            extra=("queue_type", "resource_mode", "elastic_resource_pool", "charging_mode"),
        ),
        row(
            "dli_queue_compute_units",
            "Compute units (CUs) of the queue (cu_count).",
            lambda q: value(q.cu_count),
        ),
        row(
            "dli_queue_used_compute_units",
            "Compute units (CUs) of the queue in use (used_cu).",
            lambda q: value(q.used_cu),
        ),
        row(
            "dli_queue_scale_out_limit_compute_units",
            "Most compute units (CUs) the queue may scale out to (cu_scale_out_limit).",
            lambda q: value(q.cu_scale_out_limit),
        ),
        row(
            "dli_queue_scale_in_limit_compute_units",
            "Fewest compute units (CUs) the queue may scale in to (cu_scale_in_limit).",
            lambda q: value(q.cu_scale_in_limit),
        ),
        row(
            "dli_queue_restarting",
            "1 while the queue is restarting (is_restarting), 0 when not.",
            lambda q: flag(q.is_restarting),
        ),
    )


def _name(queue: Queue) -> str:
    return queue.name


QUEUES: Final[Resource[tuple[Queue, ...]]] = Resource(
    name="queues",
    open=QueueSource,
    rows=queue_rows,
    enabled=lambda target: target.sources.queues,
    permission="DLI read access to queues (e.g. the DLI ReadOnlyAccess policy)",
)
