"""DLI's endpoints: list-jobs and execute-graph, answered from `Projects` as raw JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from multidict import MultiMapping

from exporter.dli.api import MAX_PAGE_SIZE
from exporter.simulator.jobs import SimJob
from exporter.simulator.projects import Projects
from exporter.simulator.wire import BadRequest, dli_error, int_param, parse_query, project_not_found

__all__ = ["DliHandlers"]

_MAX_NAME_LENGTH: Final = 57
#: Filters compared for equality; an empty value means "no filter".
_EQUALITY_FILTERS: Final = ("job_type", "status", "queue_name", "user_name")
#: List parameters that take one value; ``tags`` may repeat.
_SINGLE_VALUED: Final = ("limit", "offset", "show_detail", "order", "name", *_EQUALITY_FILTERS)


@dataclass(frozen=True, slots=True)
class _ListQuery:
    limit: int = 10
    offset: int = 0
    show_detail: bool = False
    ascending: bool = False
    name: str = ""
    filters: dict[str, str] = field(default_factory=dict)


class DliHandlers:
    """DLI's request handlers, serving ``projects`` (authentication is the gateway's job)."""

    def __init__(self, projects: Projects) -> None:
        self._projects = projects

    async def list_jobs(self, request: web.Request) -> web.Response:
        """``GET /v1.0/{project_id}/streaming/jobs``."""
        projects = self._projects
        project_id = request.match_info["project_id"]
        if not projects.has_project(project_id):
            return project_not_found(project_id)
        try:
            query = _parse_list_query(parse_query(request))
        except BadRequest as err:
            return dli_error(400, "DLI.0001", str(err))
        jobs = [job for job in projects.jobs(project_id) if _matches(job, query)]
        jobs.sort(key=lambda job: (job.create_time_ms, job.job_id), reverse=not query.ascending)
        now_ms = projects.now_ms()
        page = jobs[query.offset : query.offset + query.limit]
        body = {
            "is_success": "true",
            "message": "Querying of the job list succeeds.",
            "job_list": {
                "total_count": len(jobs),
                "jobs": [job.to_api(show_detail=query.show_detail, now_ms=now_ms) for job in page],
            },
        }
        projects.jobs_listed(project_id)
        return web.json_response(body)

    async def execute_graph(self, request: web.Request) -> web.Response:
        """``GET /v1.0/{project_id}/streaming/jobs/{job_id}/execute-graph``."""
        project_id = request.match_info["project_id"]
        if not self._projects.has_project(project_id):
            return project_not_found(project_id)
        raw_job_id = request.match_info["job_id"]
        try:
            job_id = int(raw_job_id)
        except ValueError:
            return dli_error(400, "DLI.0001", f"Invalid job_id: {raw_job_id[:64]!r}.")
        job = self._projects.get_job(project_id, job_id)
        if job is None:
            return dli_error(404, "DLI.0023", f"The job {job_id} does not exist.")
        if job.status != "job_running":
            message = f"The job {job_id} is not running (status {job.status})."
            return dli_error(400, "DLI.0012", message)
        body = {
            "is_success": "true",
            "message": "",
            "execute_graph": job.execute_graph(self._projects.now_ms()),
        }
        return web.json_response(body)


def _parse_list_query(query: MultiMapping[str]) -> _ListQuery:
    for key in _SINGLE_VALUED:
        if len(query.getall(key, [])) > 1:
            raise BadRequest(f"The parameter {key} is given more than once.")
    name = query.get("name", "")
    if len(name) > _MAX_NAME_LENGTH:
        raise BadRequest(f"The parameter name is longer than {_MAX_NAME_LENGTH} characters.")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("The parameter order must be asc or desc.")
    show_detail = query.get("show_detail", "false").lower()
    if show_detail not in ("true", "false"):
        raise BadRequest("The parameter show_detail must be true or false.")
    return _ListQuery(
        limit=int_param(query, "limit", 10, low=1, high=MAX_PAGE_SIZE),
        offset=int_param(query, "offset", 0, low=0, high=None),
        show_detail=show_detail == "true",
        ascending=order == "asc",
        name=name,
        filters={key: query[key] for key in _EQUALITY_FILTERS if query.get(key)},
    )


def _matches(job: SimJob, query: _ListQuery) -> bool:
    if query.name and query.name not in job.name:
        return False
    return all(getattr(job, key) == value for key, value in query.filters.items())
