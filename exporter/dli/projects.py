"""`ProjectLookup`: a target's project id, configured or looked up once from IAM.

Without a configured ``project_id`` the id is found as the SDK's ``BasicCredentials`` finds it:
Keystone's ``GET /v3/projects?name={region}`` on the IAM endpoint, signed with the target's
credentials, where exactly one project must answer (none or several is an error naming them).
The call goes through the target's `Transport` (operation ``list_projects``), on the first poll
rather than at config load; a success is kept for the lookup's life, a failure is retried on
the next poll.
"""

from __future__ import annotations

import logging
from typing import Final

from exporter.dli.api import LIST_PROJECTS, LIST_PROJECTS_PATH
from exporter.dli.transport import ResponseParseError, Transport
from exporter.errors import DliApiError
from exporter.values import ValueIssues

__all__ = ["MAX_PROJECTS_BODY_BYTES", "ProjectLookup", "parse_project_ids"]

log = logging.getLogger(__name__)

#: A project list filtered by name holds one project; anything near this is not IAM's answer.
MAX_PROJECTS_BODY_BYTES: Final = 1024 * 1024
#: Ids named in the error when several projects match.
_IDS_SHOWN: Final = 5


def parse_project_ids(body: object, issues: ValueIssues) -> tuple[str, ...]:
    """The ``projects[].id`` values of a Keystone project list."""
    projects = body.get("projects") if isinstance(body, dict) else None
    if not isinstance(projects, list):
        raise ResponseParseError("no projects list")
    ids: list[str] = []
    for project in projects:
        project_id = project.get("id") if isinstance(project, dict) else None
        if not isinstance(project_id, str) or not project_id:
            raise ResponseParseError("a project without an id")
        ids.append(project_id)
    return tuple(ids)


class ProjectLookup:
    """One target's project id: ``known`` when configured, else asked of IAM via ``transport``.

    ``transport`` (required without ``known``) is bound to the IAM endpoint; ``region`` is the
    project name asked for.
    """

    def __init__(
        self,
        *,
        target: str,
        region: str,
        known: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        if known is None and transport is None:
            raise ValueError("a project lookup needs a transport to IAM")
        self._target = target
        self._region = region
        self._project_id = known
        self._transport = transport

    @property
    def project_id(self) -> str | None:
        """The id when known (configured, or found by an earlier lookup)."""
        return self._project_id

    async def resolve(self, *, deadline: float | None = None) -> str:
        """The project id, asking IAM the first time; raises `DliApiError` when it cannot."""
        if self._project_id is not None:
            return self._project_id
        assert self._transport is not None
        ids = await self._transport.get(
            LIST_PROJECTS,
            LIST_PROJECTS_PATH,
            {"name": self._region},
            parse_project_ids,
            max_body=MAX_PROJECTS_BODY_BYTES,
            deadline=deadline,
        )
        if len(ids) != 1:
            raise DliApiError(LIST_PROJECTS, "error", self._no_single_project(ids))
        self._project_id = ids[0]
        log.info(
            "project id found in IAM",
            extra={"fields": {"target": self._target, "region": self._region, "project": ids[0]}},
        )
        return ids[0]

    def _no_single_project(self, ids: tuple[str, ...]) -> str:
        if not ids:
            return (
                f"no IAM project is named {self._region!r} in this account; "
                "check the region or set project_id"
            )
        shown = ",".join(ids[:_IDS_SHOWN]) + (",..." if len(ids) > _IDS_SHOWN else "")
        return f"{len(ids)} IAM projects are named {self._region!r} [{shown}]; set project_id"
