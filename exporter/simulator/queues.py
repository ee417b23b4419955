"""Simulated DLI queues: the mutable record and its JSON as the list-queues API sends it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from exporter.simulator.jobs import RUNNING, SimJob

__all__ = ["QUEUE_TYPES", "SimQueue", "used_cu_of"]

#: The values of a queue's ``queue_type`` (the list's ``queue_type`` filter also takes ``all``).
QUEUE_TYPES: Final = ("sql", "general")


@dataclass
class SimQueue:
    """One simulated queue; tests may mutate any field.

    ``used_cu`` ``None``: derived from the project's jobs (`used_cu_of`). ``engine`` ``None``:
    ``flink`` for general queues, ``spark`` for SQL ones. ``elastic_resource_pool_name``
    ``None``: the key is absent from the listing.
    """

    queue_id: int
    queue_name: str
    project_id: str
    cu_count: int
    queue_type: str = "general"
    resource_mode: int = 1
    charging_mode: int = 1
    elastic_resource_pool_name: str | None = None
    cu_scale_out_limit: int = 0
    cu_scale_in_limit: int = 0
    is_restarting: bool = False
    used_cu: float | None = None
    description: str = ""
    owner: str = "dli_admin"
    create_time_ms: int = 0
    resource_id: str = ""
    cu_spec: int | None = None
    engine: str | None = None
    labels: str = ""
    feature: str = "basic"
    queue_resource_type: str = "vm"
    enterprise_project_id: str = "0"

    def to_api(self, jobs: Iterable[SimJob]) -> dict[str, Any]:
        """The queue as one entry of the list's ``queues``; ``jobs``: the project's jobs."""
        body: dict[str, Any] = {
            "queue_id": self.queue_id,
            "queue_name": self.queue_name,
            "description": self.description,
            "owner": self.owner,
            "create_time": self.create_time_ms,
            "queue_type": self.queue_type,
            "cu_count": self.cu_count,
            "used_cu": float(self.used_cu if self.used_cu is not None else used_cu_of(self, jobs)),
            "charging_mode": self.charging_mode,
            "resource_mode": self.resource_mode,
            "enterprise_project_id": self.enterprise_project_id,
            "resource_id": self.resource_id,
            "is_restarting": self.is_restarting,
            "labels": self.labels,
            "feature": self.feature,
            "queue_resource_type": self.queue_resource_type,
            "cu_spec": self.cu_count if self.cu_spec is None else self.cu_spec,
            "cu_scale_out_limit": self.cu_scale_out_limit,
            "cu_scale_in_limit": self.cu_scale_in_limit,
            "engine": self.engine or ("flink" if self.queue_type == "general" else "spark"),
        }
        if self.elastic_resource_pool_name is not None:
            body["elastic_resource_pool_name"] = self.elastic_resource_pool_name
        return body


def used_cu_of(queue: SimQueue, jobs: Iterable[SimJob]) -> float:
    """The CUs the queue's ``job_running`` jobs take (``cu_number``), at most ``cu_count``."""
    used = sum(job.cu_number for job in jobs if job.queue_name == queue.queue_name and _runs(job))
    return float(min(used, queue.cu_count))


def _runs(job: SimJob) -> bool:
    return job.status == RUNNING
