"""`RESOURCES`: the DLI resources every target polls after its job list, in exposition order."""

from __future__ import annotations

from typing import Final

from exporter.dli.resource import Resource

__all__ = ["RESOURCES"]

#: Empty until the first resource beyond the job list lands (Cloud Eye, queues, pools).
RESOURCES: Final[tuple[Resource[object], ...]] = ()
