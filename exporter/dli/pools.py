"""The elastic resource pool resource: every pool of the project, its compute units and status.

``ceil(pools / 100)`` calls a poll (one for most projects), paged with the overlap of
`exporter.dli.paging`, keyed by the pool's ``id``. The status is a state set over the documented
values (a new one is published as it comes); ``fail_reason`` set means the pool's last creation
or scaling failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from exporter.config import MetricOptions
from exporter.dli.answers import require_list, successful_body
from exporter.dli.api import (
    LIST_ELASTIC_RESOURCE_POOLS,
    POOL_PAGE_SIZE,
    elastic_resource_pools_path,
)
from exporter.dli.capacity import ItemRows, flag, value
from exporter.dli.jobmodel import FlinkJob
from exporter.dli.paging import Page, Pager
from exporter.dli.resource import Resource, SourceContext
from exporter.metricspec import MetricSpec, Reading, state_set
from exporter.values import MAX_ID, ValueIssues, read_int, read_str

__all__ = ["ELASTIC_RESOURCE_POOLS", "POOL_STATUSES", "ElasticResourcePool", "parse_pool_page"]

#: The statuses "Querying All Elastic Resource Pools" documents; others are valid, unknown.
POOL_STATUSES: Final = ("AVAILABLE", "SCALING", "CREATING", "FAILED")
#: A page of 100 pools is ~100 KB.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ElasticResourcePool:
    """One pool; every field but the name may be unknown."""

    pool_id: int
    name: str
    status: str | None = None
    max_cu: int | None = None
    min_cu: int | None = None
    actual_cu: int | None = None
    current_cu: int | None = None
    prepay_cu: int | None = None
    failed: bool | None = None


@dataclass(frozen=True, slots=True)
class PoolPage:
    """One page of the pool list."""

    pools: tuple[ElasticResourcePool, ...]
    count: int | None
    skipped: int


def parse_pool_page(payload: object, issues: ValueIssues) -> PoolPage:
    """One page of ``GET /v3/{project_id}/elastic-resource-pools``."""
    body = successful_body(payload)
    pools = []
    skipped = 0
    for raw in require_list(body, "elastic_resource_pools"):
        pool = _pool(raw, issues) if isinstance(raw, Mapping) else None
        if pool is None:
            skipped += 1
        else:
            pools.append(pool)
    return PoolPage(
        tuple(pools), read_int(body.get("count"), "count", issues, high=MAX_ID), skipped
    )


def _pool(raw: Mapping[str, object], issues: ValueIssues) -> ElasticResourcePool | None:
    pool_id = read_int(raw.get("id"), "id", issues, high=MAX_ID)
    name = read_str(raw.get("elastic_resource_pool_name"), "elastic_resource_pool_name", issues)
    if pool_id is None or not name:
        return None
    reason = read_str(raw.get("fail_reason"), "fail_reason", issues)
    return ElasticResourcePool(
        pool_id=pool_id,
        name=name,
        status=read_str(raw.get("status"), "status", issues, limit=32),
        max_cu=read_int(raw.get("max_cu"), "max_cu", issues),
        min_cu=read_int(raw.get("min_cu"), "min_cu", issues),
        actual_cu=read_int(raw.get("actual_cu"), "actual_cu", issues),
        current_cu=read_int(raw.get("current_cu"), "current_cu", issues),
        prepay_cu=read_int(raw.get("prepay_cu"), "prepay_cu", issues),
        failed=None if reason is None else bool(reason.strip()),
    )


class PoolSource:
    """One target's pool list, all pages."""

    def __init__(self, context: SourceContext) -> None:
        self._transport = context.transport
        self._project = context.project
        self._pager: Pager[ElasticResourcePool] = Pager(
            LIST_ELASTIC_RESOURCE_POOLS,
            key=lambda pool: pool.pool_id,
            concurrency=context.target.concurrency,
        )

    async def poll(
        self, jobs: tuple[FlinkJob, ...] | None, deadline: float
    ) -> tuple[ElasticResourcePool, ...]:
        path = elastic_resource_pools_path(await self._project.resolve(deadline=deadline))

        async def fetch(offset: int) -> Page[ElasticResourcePool]:
            page = await self._transport.get(
                LIST_ELASTIC_RESOURCE_POOLS,
                path,
                {"limit": POOL_PAGE_SIZE, "offset": offset},
                parse_pool_page,
                max_body=MAX_BODY_BYTES,
                deadline=deadline,
            )
            ids = frozenset(pool.pool_id for pool in page.pools)
            return Page(offset, page.pools, ids, page.skipped, page.count)

        return tuple(await self._pager.list_all(fetch))


def _status(pool: ElasticResourcePool) -> Iterable[Reading]:
    return state_set(pool.status, POOL_STATUSES)


def pool_rows(_options: MetricOptions) -> tuple[MetricSpec, ...]:
    """The pool families, one series per pool (per status for the state set)."""
    row = ItemRows(ELASTIC_RESOURCE_POOLS, "elastic_resource_pool", _name).row
    prefix = "dli_elastic_resource_pool"
    return (
        row(
            f"{prefix}_max_compute_units",
            "Most compute units (CUs) the pool may scale to (max_cu).",
            lambda p: value(p.max_cu),
        ),
        row(
            f"{prefix}_min_compute_units",
            "Fewest compute units (CUs) the pool keeps (min_cu).",
            lambda p: value(p.min_cu),
        ),
        row(
            f"{prefix}_actual_compute_units",
            "Compute units (CUs) the pool actually has (actual_cu).",
            lambda p: value(p.actual_cu),
        ),
        row(
            f"{prefix}_current_compute_units",
            "Compute units (CUs) the pool is currently sized to (current_cu).",
            lambda p: value(p.current_cu),
        ),
        row(
            f"{prefix}_prepaid_compute_units",
            "Compute units (CUs) of the pool paid for in advance (prepay_cu).",
            lambda p: value(p.prepay_cu),
        ),
        row(
            f"{prefix}_status",
            "Pool status as a state set: 1 for the current status, 0 for the other documented "
            "ones.",
            _status,
            extra=("status",),
        ),
        row(
            f"{prefix}_failed",
            "1 when the pool reports a failure reason (fail_reason: its creation or scaling "
            "failed), 0 when not.",
            lambda p: flag(p.failed),
        ),
    )


def _name(pool: ElasticResourcePool) -> str:
    return pool.name


ELASTIC_RESOURCE_POOLS: Final[Resource[tuple[ElasticResourcePool, ...]]] = Resource(
    name="elastic_resource_pools",
    open=PoolSource,
    rows=pool_rows,
    enabled=lambda target: target.sources.elastic_resource_pools,
    permission="DLI read access to elastic resource pools (e.g. the DLI ReadOnlyAccess policy)",
)
