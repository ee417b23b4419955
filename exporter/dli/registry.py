"""`RESOURCES`: the DLI resources every target polls besides its job list, in exposition order."""

from __future__ import annotations

from typing import Final

from exporter.dli.cloudeye import CLOUD_EYE
from exporter.dli.pools import ELASTIC_RESOURCE_POOLS
from exporter.dli.queues import QUEUES
from exporter.dli.resource import Resource

__all__ = ["RESOURCES"]

#: Cloud Eye's runtime metrics of running jobs, then the queues, then the elastic resource pools.
RESOURCES: Final[tuple[Resource[object], ...]] = (CLOUD_EYE, QUEUES, ELASTIC_RESOURCE_POOLS)
