"""DLI's capacity endpoints: list-queues and the paged list of elastic resource pools."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from exporter.dli.api import POOL_PAGE_SIZE
from exporter.simulator.capacity import Capacity
from exporter.simulator.projects import Projects
from exporter.simulator.queues import QUEUE_TYPES
from exporter.simulator.wire import BadRequest, dli_error, int_param, parse_query, project_not_found

__all__ = ["CapacityHandlers"]

#: The ``queue_type`` DLI assumes when the query has none: general-purpose queues are hidden.
DEFAULT_QUEUE_TYPE: Final = "sql"


class CapacityHandlers:
    """Queue and pool handlers, serving ``capacity`` for the projects of ``projects``."""

    def __init__(self, projects: Projects, capacity: Capacity) -> None:
        self._projects = projects
        self._capacity = capacity

    async def list_queues(self, request: web.Request) -> web.Response:
        """``GET /v1.0/{project_id}/queues[?queue_type=sql|general|all]``."""
        project_id = request.match_info["project_id"]
        if not self._projects.has_project(project_id):
            return project_not_found(project_id)
        query = parse_query(request)
        queue_type = query.get("queue_type", DEFAULT_QUEUE_TYPE)
        if len(query.getall("queue_type", [])) > 1 or queue_type not in (*QUEUE_TYPES, "all"):
            return dli_error(
                400, "DLI.0001", "The parameter queue_type must be sql, general or all."
            )
        jobs = self._projects.jobs(project_id)
        queues = [
            queue.to_api(jobs)
            for queue in self._capacity.queues(project_id)
            if queue_type in ("all", queue.queue_type)
        ]
        return web.json_response({"is_success": True, "message": "", "queues": queues})

    async def list_pools(self, request: web.Request) -> web.Response:
        """``GET /v3/{project_id}/elastic-resource-pools[?limit=&offset=&name=&status=]``."""
        project_id = request.match_info["project_id"]
        if not self._projects.has_project(project_id):
            return project_not_found(project_id)
        query = parse_query(request)
        try:
            limit = int_param(query, "limit", POOL_PAGE_SIZE, low=1, high=POOL_PAGE_SIZE)
            offset = int_param(query, "offset", 0, low=0, high=None)
        except BadRequest as err:
            return dli_error(400, "DLI.0001", str(err))
        name, status = query.get("name", ""), query.get("status", "")
        pools = [
            pool
            for pool in self._capacity.pools(project_id)
            if name in pool.name and status in ("", pool.status)
        ]
        page = [
            pool.to_api(self._capacity.hosted_queues(pool))
            for pool in pools[offset : offset + limit]
        ]
        body = {
            "is_success": True,
            "message": "",
            "count": len(pools),
            "elastic_resource_pools": page,
        }
        return web.json_response(body)
