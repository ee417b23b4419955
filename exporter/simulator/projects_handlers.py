"""IAM's Keystone ``GET /v3/projects``: the account's projects, filtered by ``name``.

Answered from `Projects` (named like IAM names them); the gateway has verified the signature.
"""

from __future__ import annotations

from aiohttp import web

from exporter.dli.api import LIST_PROJECTS_PATH
from exporter.simulator.jobs import user_id_for
from exporter.simulator.projects import Projects
from exporter.simulator.wire import parse_query

__all__ = ["ProjectsHandlers"]


class ProjectsHandlers:
    """Keystone's project list, serving ``projects``."""

    def __init__(self, projects: Projects) -> None:
        self._projects = projects

    async def list_projects(self, request: web.Request) -> web.Response:
        """``GET /v3/projects[?name=...]``: the projects (with that exact name)."""
        name = parse_query(request).get("name")
        base = f"{request.scheme}://{request.host}{LIST_PROJECTS_PATH}"
        domain_id = user_id_for("domain:simulated")
        listed = []
        for project_id in self._projects.ids():
            project_name = self._projects.project_name(project_id) or ""
            if name is None or project_name == name:
                listed.append(_project(project_id, project_name, domain_id, base))
        links = {"self": str(request.url), "previous": None, "next": None}
        return web.json_response({"projects": listed, "links": links})


def _project(project_id: str, name: str, domain_id: str, base: str) -> dict[str, object]:
    return {
        "id": project_id,
        "name": name,
        "description": "",
        "domain_id": domain_id,
        "parent_id": domain_id,
        "enabled": True,
        "is_domain": False,
        "links": {"self": f"{base}/{project_id}"},
    }
