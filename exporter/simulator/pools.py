"""Simulated elastic resource pools: the mutable record and its JSON as the API sends it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SimPool"]


@dataclass
class SimPool:
    """One simulated elastic resource pool; tests may mutate any field.

    ``actual_cu`` ``None``: reported as ``current_cu``. ``queues`` are the hosted queue names;
    the listing adds the project's queues whose ``elastic_resource_pool_name`` names the pool.
    """

    pool_id: int
    name: str
    project_id: str
    max_cu: int
    min_cu: int
    current_cu: int
    actual_cu: int | None = None
    prepay_cu: int = 0
    status: str = "AVAILABLE"
    fail_reason: str = ""
    queues: list[str] = field(default_factory=list)
    charging_mode: int = 1
    description: str = ""
    owner: str = "dli_admin"
    create_time_ms: int = 0
    update_time_ms: int = 0
    resource_id: str = ""
    enterprise_project_id: str = "0"

    def to_api(self, hosted: list[str]) -> dict[str, Any]:
        """The pool as one entry of ``elastic_resource_pools``; ``hosted``: its queue names."""
        return {
            "elastic_resource_pool_name": self.name,
            "id": self.pool_id,
            "description": self.description,
            "owner": self.owner,
            "status": self.status,
            "max_cu": self.max_cu,
            "min_cu": self.min_cu,
            "actual_cu": self.current_cu if self.actual_cu is None else self.actual_cu,
            "current_cu": self.current_cu,
            "prepay_cu": self.prepay_cu,
            "charging_mode": self.charging_mode,
            "manager": "containerized",
            "label": {},
            "queues": hosted,
            "fail_reason": self.fail_reason,
            "create_time": self.create_time_ms,
            "update_time": self.update_time_ms,
            "enterprise_project_id": self.enterprise_project_id,
            "resource_id": self.resource_id,
            "cidr_in_vpc": "172.16.0.0/12",
        }
