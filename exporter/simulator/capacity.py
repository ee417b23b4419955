"""`Capacity`: each project's queues and elastic resource pools, and their random population."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import fields
from typing import Any, Final

from exporter.simulator.jobs import RUNNING, SimJob, seeded_rng
from exporter.simulator.pools import SimPool
from exporter.simulator.queues import SimQueue

__all__ = ["Capacity", "resource_id_for"]

_FIRST_QUEUE_ID: Final = 1001
_FIRST_POOL_ID: Final = 501
_DAY_MS: Final = 86_400_000
#: The SQL queue `populate` adds (the list's default ``queue_type=sql`` shows only it).
POPULATED_SQL_QUEUE: Final = "sql_adhoc"
#: Which pool `populate` puts a populated queue in (queues not named here stay out of pools).
_POOL_OF: Final = {"flink_prod": "pool_prod", "realtime_etl": "pool_prod", "flink_dev": "pool_dev"}
#: Shared queues (``resource_mode`` 0): DLI's default queue.
_SHARED: Final = frozenset({"default"})


def resource_id_for(*parts: object) -> str:
    """A stable UUID-shaped resource id."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


class Capacity:
    """Queues and elastic resource pools by project, in creation order (the live records)."""

    def __init__(self) -> None:
        self._queues: dict[str, dict[str, SimQueue]] = {}
        self._pools: dict[str, dict[str, SimPool]] = {}
        self._next_queue_id = _FIRST_QUEUE_ID
        self._next_pool_id = _FIRST_POOL_ID

    def add_queue(self, project_id: str, name: str, *, now_ms: int, **fields_: Any) -> SimQueue:
        """A new queue; any `SimQueue` field may be given (``cu_count`` is required)."""
        queues = self._queues.setdefault(project_id, {})
        if name in queues:
            raise ValueError(f"queue {name!r} already exists in project {project_id!r}")
        _check_fields(SimQueue, fields_)
        defaults: dict[str, Any] = {
            "create_time_ms": now_ms - 30 * _DAY_MS,
            "resource_id": resource_id_for(project_id, "queue", name),
        }
        if "cu_count" in fields_:
            defaults["cu_scale_out_limit"] = fields_["cu_count"]
            defaults["cu_scale_in_limit"] = min(16, fields_["cu_count"])
        queue = SimQueue(
            queue_id=self._next_queue_id,
            queue_name=name,
            project_id=project_id,
            **(defaults | fields_),
        )
        self._next_queue_id += 1
        queues[name] = queue
        return queue

    def add_pool(self, project_id: str, name: str, *, now_ms: int, **fields_: Any) -> SimPool:
        """A new pool; any `SimPool` field may be given (``max_cu``, ``min_cu``, ``current_cu``)."""
        pools = self._pools.setdefault(project_id, {})
        if name in pools:
            raise ValueError(f"pool {name!r} already exists in project {project_id!r}")
        _check_fields(SimPool, fields_)
        fields_["queues"] = list(fields_.get("queues", ()))
        defaults: dict[str, Any] = {
            "create_time_ms": now_ms - 60 * _DAY_MS,
            "update_time_ms": now_ms - _DAY_MS,
            "resource_id": resource_id_for(project_id, "pool", name),
        }
        pool = SimPool(
            pool_id=self._next_pool_id, name=name, project_id=project_id, **(defaults | fields_)
        )
        self._next_pool_id += 1
        pools[name] = pool
        return pool

    def queues(self, project_id: str) -> list[SimQueue]:
        """The project's queues, in creation order."""
        return list(self._queues.get(project_id, {}).values())

    def pools(self, project_id: str) -> list[SimPool]:
        """The project's elastic resource pools, in creation order."""
        return list(self._pools.get(project_id, {}).values())

    def remove_queue(self, project_id: str, name: str) -> None:
        """Delete a queue; `KeyError` when it does not exist."""
        del self._queues[project_id][name]

    def remove_pool(self, project_id: str, name: str) -> None:
        """Delete a pool; `KeyError` when it does not exist."""
        del self._pools[project_id][name]

    def hosted_queues(self, pool: SimPool) -> list[str]:
        """The pool's queues: those it lists, then the project's queues that name it."""
        hosted = list(pool.queues)
        for queue in self.queues(pool.project_id):
            if queue.elastic_resource_pool_name == pool.name and queue.queue_name not in hosted:
                hosted.append(queue.queue_name)
        return hosted

    def populate(self, project_id: str, jobs: Iterable[SimJob], *, seed: int, now_ms: int) -> None:
        """Queues for every queue name of ``jobs`` not yet known, a SQL queue, and their pools.

        Deterministic given the seed, the project and the jobs; draws from its own generator,
        so the jobs' random stream is untouched. Existing queues and pools are left alone.
        """
        rng = seeded_rng(seed, project_id, "capacity")
        running_cu: dict[str, int] = {}
        for job in jobs:
            running_cu.setdefault(job.queue_name, 0)
            if job.status == RUNNING:
                running_cu[job.queue_name] += job.cu_number
        known = {queue.queue_name for queue in self.queues(project_id)}
        for name, used in running_cu.items():
            if name in known:
                continue
            # Sized so that most queues have headroom and some run close to full.
            cu_count = max(16, math.ceil(used * rng.uniform(0.9, 1.8) / 16) * 16)
            self.add_queue(
                project_id,
                name,
                now_ms=now_ms,
                cu_count=cu_count,
                resource_mode=0 if name in _SHARED else 1,
                charging_mode=rng.choice((1, 1, 2)),
                elastic_resource_pool_name=_POOL_OF.get(name),
                cu_scale_out_limit=cu_count * 2,
                cu_scale_in_limit=16,
                description=f"Flink queue {name}",
            )
        if POPULATED_SQL_QUEUE not in known:
            self.add_queue(
                project_id,
                POPULATED_SQL_QUEUE,
                now_ms=now_ms,
                cu_count=16,
                queue_type="sql",
                used_cu=float(rng.choice((0, 4, 8))),
                description="Ad-hoc Spark SQL",
            )
        self._populate_pools(project_id, seed=seed, now_ms=now_ms)

    def _populate_pools(self, project_id: str, *, seed: int, now_ms: int) -> None:
        rng = seeded_rng(seed, project_id, "pools")
        existing = {pool.name for pool in self.pools(project_id)}
        for pool_name in dict.fromkeys(_POOL_OF.values()):
            hosted = [
                queue
                for queue in self.queues(project_id)
                if queue.elastic_resource_pool_name == pool_name
            ]
            if not hosted or pool_name in existing:
                continue
            current = sum(queue.cu_count for queue in hosted)
            max_cu = max(current, math.ceil(current * rng.uniform(1.0, 2.0) / 16) * 16)
            self.add_pool(
                project_id,
                pool_name,
                now_ms=now_ms,
                max_cu=max_cu,
                min_cu=16,
                current_cu=current,
                prepay_cu=rng.choice((0, 0, 16)),
                description=f"Elastic resource pool {pool_name}",
            )


def _check_fields(kind: type[Any], given: dict[str, Any]) -> None:
    reserved = {"queue_id", "queue_name", "pool_id", "name", "project_id"}
    unknown = set(given) - ({f.name for f in fields(kind)} - reserved)
    if unknown:
        raise TypeError(f"unknown {kind.__name__} fields: {sorted(unknown)}")
