"""IAM's endpoint ``POST /v3/auth/tokens``: a user's password exchanged for a project token."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from exporter.dli.api import SUBJECT_TOKEN_HEADER
from exporter.simulator.iam import Iam, IssuedToken
from exporter.simulator.jobs import user_id_for
from exporter.simulator.projects import Projects
from exporter.simulator.wire import USER, BadRequest, iam_error

__all__ = ["IamHandlers"]


@dataclass(frozen=True, slots=True)
class _Login:
    """A password-authentication request body, as IAM reads it."""

    user: str
    password: str
    domain_name: str
    project_id: str | None
    project_name: str | None


class IamHandlers:
    """IAM's request handler: checks passwords with ``iam``, scopes to ``projects``."""

    def __init__(self, iam: Iam, projects: Projects) -> None:
        self._iam = iam
        self._projects = projects

    async def iam_token(self, request: web.Request) -> web.Response:
        """IAM's ``POST /v3/auth/tokens``: a password exchanged for a project-scoped token."""
        iam, projects = self._iam, self._projects
        try:
            login = _parse_login(json.loads(await request.read()))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            return iam_error(400, "The request body is not valid JSON.")
        except BadRequest as err:
            return iam_error(400, str(err))
        request[USER] = login.user
        if not iam.check_password(login.user, login.password, login.domain_name):
            return iam_error(401, "The username or password is wrong.")
        if login.project_id is not None:
            project_id = login.project_id if projects.has_project(login.project_id) else None
        else:
            project_id = projects.project_named(login.project_name or "")
        if project_id is None:
            return iam_error(401, "The project in the scope does not exist.")
        token, issued = iam.issue_token(login.user, project_id)
        body = _token_body(login, issued, projects.project_name(project_id) or "")
        return web.json_response(body, status=201, headers={SUBJECT_TOKEN_HEADER: token})


def _parse_login(payload: object) -> _Login:
    """Read a password-authentication body; `BadRequest` names the first thing wrong."""
    auth = _object(payload, "auth", "")
    identity = _object(auth, "identity", "auth")
    if identity.get("methods") != ["password"]:
        raise BadRequest('Invalid auth.identity.methods: only ["password"] is supported.')
    user = _object(_object(identity, "password", "auth.identity"), "user", "auth.identity.password")
    path = "auth.identity.password.user"
    domain = _object(user, "domain", path)
    project = _object(_object(auth, "scope", "auth"), "project", "auth.scope")
    project_id, project_name = project.get("id"), project.get("name")
    if not isinstance(project_id, str) and not isinstance(project_name, str):
        raise BadRequest("Invalid auth.scope.project: give its id or its name.")
    return _Login(
        user=_text(user, "name", path),
        password=_text(user, "password", path),
        domain_name=_text(domain, "name", f"{path}.domain"),
        project_id=project_id if isinstance(project_id, str) else None,
        project_name=project_name if isinstance(project_name, str) else None,
    )


def _object(parent: object, key: str, path: str) -> dict[str, object]:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid {path + '.' if path else ''}{key}: an object is required.")
    return value


def _text(parent: dict[str, object], key: str, path: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid {path}.{key}: a non-empty string is required.")
    return value


def _token_body(login: _Login, issued: IssuedToken, project_name: str) -> dict[str, object]:
    domain = {"id": user_id_for(f"domain:{login.domain_name}"), "name": login.domain_name}
    return {
        "token": {
            "methods": ["password"],
            "issued_at": _iso_time(issued.issued_at),
            "expires_at": _iso_time(issued.expires_at),
            "user": {"id": user_id_for(login.user), "name": login.user, "domain": domain},
            "project": {"id": issued.project_id, "name": project_name, "domain": domain},
            "roles": [{"id": user_id_for("role:dli_readonly"), "name": "dli_readonly"}],
        }
    }


def _iso_time(seconds: float) -> str:
    """IAM's time format: ``2026-11-24T00:15:00.123000Z``."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
