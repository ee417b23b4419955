"""The simulator's aiohttp application: DLI's list-jobs and execute-graph endpoints, and IAM's.

A middleware plays the API gateway (latency, route lookup, AK/SK signature or IAM token check,
throttling, injected faults, request log); the handlers play DLI and answer raw JSON as it does.
IAM's password-token endpoint (``POST /v3/auth/tokens``) is served by the same application,
without the gateway's authentication and throttling.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

from aiohttp import web
from multidict import MultiDict, MultiMapping

from exporter.signing import SignatureError, verify_request
from exporter.simulator.jobs import user_id_for

if TYPE_CHECKING:
    from exporter.simulator.jobs import SimJob
    from exporter.simulator.state import Fault, IssuedToken, Simulator

LIST_JOBS: Final = "list_jobs"
EXECUTE_GRAPH: Final = "execute_graph"
IAM_TOKEN: Final = "iam_token"  # noqa: S105 - an operation name
UNKNOWN: Final = "unknown"

_LIST_PATH: Final = "/v1.0/{project_id}/streaming/jobs"
_GRAPH_PATH: Final = "/v1.0/{project_id}/streaming/jobs/{job_id}/execute-graph"
_IAM_TOKEN_PATH: Final = "/v3/auth/tokens"  # noqa: S105 - a path
_AUTH_TOKEN_HEADER: Final = "X-Auth-Token"  # noqa: S105 - a header name
#: The IAM user a request authenticated as (or asked a token for), for the request log.
_USER: Final = web.RequestKey("user", str)
#: Set when an injected fault reset the connection instead of answering.
_RESET: Final = web.RequestKey("reset", bool)
_MAX_LIMIT: Final = 100
_MAX_NAME_LENGTH: Final = 57
#: Filters compared for equality; an empty value means "no filter".
_EQUALITY_FILTERS: Final = ("job_type", "status", "queue_name", "user_name")
#: List parameters that take one value; ``tags`` may repeat.
_SINGLE_VALUED: Final = ("limit", "offset", "show_detail", "order", "name", *_EQUALITY_FILTERS)
_SHUTDOWN_TIMEOUT: Final = 5.0

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(sim: Simulator) -> web.Application:
    """An application serving ``sim``; it holds no state of its own."""
    api = _Api(sim)
    app = web.Application(middlewares=[api.gateway])
    app.router.add_get(_LIST_PATH, api.list_jobs, name=LIST_JOBS, allow_head=False)
    app.router.add_get(_GRAPH_PATH, api.execute_graph, name=EXECUTE_GRAPH, allow_head=False)
    app.router.add_post(_IAM_TOKEN_PATH, api.iam_token, name=IAM_TOKEN)
    return app


@asynccontextmanager
async def serve(simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run the simulator on a real socket; yields the base URL like ``http://127.0.0.1:54321``."""
    runner = web.AppRunner(simulator.app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        url_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        if ":" in url_host:
            url_host = f"[{url_host}]"
        yield f"http://{url_host}:{bound_port}"
    finally:
        await runner.cleanup()


class _BadRequest(Exception):
    """A query parameter DLI (or a body IAM) would reject: answered as 400."""


@dataclass(frozen=True, slots=True)
class _Login:
    """A password-authentication request body, as IAM reads it."""

    user: str
    password: str
    domain_name: str
    project_id: str | None
    project_name: str | None


@dataclass(frozen=True, slots=True)
class _ListQuery:
    limit: int = 10
    offset: int = 0
    show_detail: bool = False
    ascending: bool = False
    name: str = ""
    filters: dict[str, str] = field(default_factory=dict)


class _Api:
    """Request handlers bound to one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    @web.middleware
    async def gateway(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Everything the API gateway does before and after DLI answers."""
        sim = self._sim
        if sim.latency > 0:
            await asyncio.sleep(sim.latency)
        sim.advance()
        request_id = uuid.uuid4().hex
        route_name = request.match_info.route.name
        known = (LIST_JOBS, EXECUTE_GRAPH, IAM_TOKEN)
        operation = route_name if route_name in known else UNKNOWN
        if operation == IAM_TOKEN:
            response, access_key = await self._answer_iam(request, handler, request_id), None
        else:
            response, access_key = await self._answer(request, handler, operation, request_id)
        if not response.prepared:  # a truncated answer was sent already, with its id
            response.headers["X-Request-Id"] = request_id
        query: dict[str, str] = {}
        for key, value in parse_query(request).items():
            query.setdefault(key, value)
        sim.record(
            method=request.method,
            path=request.path,
            query=query,
            status=0 if request.get(_RESET) else response.status,
            access_key=access_key,
            operation=operation,
            user=request.get(_USER),
        )
        return response

    async def _answer_iam(
        self, request: web.Request, handler: _Handler, request_id: str
    ) -> web.StreamResponse:
        """IAM is not behind DLI's gateway: no signature check and no throttling, only faults."""
        fault = self._sim.take_fault(IAM_TOKEN)
        if fault is not None:
            return await _fault_response(request, fault, request_id, IAM_TOKEN)
        return await handler(request)

    async def _answer(
        self, request: web.Request, handler: _Handler, operation: str, request_id: str
    ) -> tuple[web.StreamResponse, str | None]:
        no_route = request.match_info.http_exception
        if no_route is not None:
            message = "The API does not exist or has not been published in the environment"
            return _apig_error(no_route.status, "APIG.0101", message, request_id), None
        token = request.headers.get(_AUTH_TOKEN_HEADER)
        access_key: str | None = None
        if token is not None:
            issued = self._sim.token_info(token)
            if issued is None:
                message = "Incorrect IAM authentication information: token expired or invalid"
                return _apig_error(401, "APIG.0301", message, request_id), None
            request[_USER] = issued.user
        else:
            try:
                access_key = await self._verify_signature(request)
            except SignatureError as err:
                return _apig_error(401, err.error_code, err.error_msg, request_id), None
        if not self._sim.admit():
            return _throttled(self._sim.rate_limit or 0.0, request_id), access_key
        fault = self._sim.take_fault(operation)
        if fault is not None:
            return await _fault_response(request, fault, request_id, operation), access_key
        return await handler(request), access_key

    async def _verify_signature(self, request: web.Request) -> str:
        """The access key of a correctly signed request; `SignatureError` otherwise."""
        raw_path, _, raw_query = request.raw_path.partition("?")
        return verify_request(
            request.method,
            raw_path,
            raw_query,
            request.headers,
            await request.read(),
            lookup_secret=self._sim.secret_for,
            now=datetime.fromtimestamp(self._sim.clock(), tz=UTC),
        )

    async def iam_token(self, request: web.Request) -> web.Response:
        """IAM's ``POST /v3/auth/tokens``: a password exchanged for a project-scoped token."""
        sim = self._sim
        try:
            login = _parse_login(json.loads(await request.read()))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            return _iam_error(400, "The request body is not valid JSON.")
        except _BadRequest as err:
            return _iam_error(400, str(err))
        request[_USER] = login.user
        if not sim.check_password(login.user, login.password, login.domain_name):
            return _iam_error(401, "The username or password is wrong.")
        if login.project_id is not None:
            project_id = login.project_id if sim.has_project(login.project_id) else None
        else:
            project_id = sim.project_named(login.project_name or "")
        if project_id is None:
            return _iam_error(401, "The project in the scope does not exist.")
        token, issued = sim.issue_token(login.user, project_id)
        body = _token_body(login, issued, sim.project_name(project_id) or "")
        return web.json_response(body, status=201, headers={"X-Subject-Token": token})

    async def list_jobs(self, request: web.Request) -> web.Response:
        """``GET /v1.0/{project_id}/streaming/jobs``."""
        project_id = request.match_info["project_id"]
        if not self._sim.has_project(project_id):
            return _project_not_found(project_id)
        try:
            query = _parse_list_query(parse_query(request))
        except _BadRequest as err:
            return _dli_error(400, "DLI.0001", str(err))
        jobs = [job for job in self._sim.jobs(project_id) if _matches(job, query)]
        jobs.sort(key=lambda job: (job.create_time_ms, job.job_id), reverse=not query.ascending)
        now_ms = self._sim.now_ms()
        page = jobs[query.offset : query.offset + query.limit]
        body = {
            "is_success": "true",
            "message": "Querying of the job list succeeds.",
            "job_list": {
                "total_count": len(jobs),
                "jobs": [job.to_api(show_detail=query.show_detail, now_ms=now_ms) for job in page],
            },
        }
        self._sim.jobs_listed(project_id)
        return web.json_response(body)

    async def execute_graph(self, request: web.Request) -> web.Response:
        """``GET /v1.0/{project_id}/streaming/jobs/{job_id}/execute-graph``."""
        project_id = request.match_info["project_id"]
        if not self._sim.has_project(project_id):
            return _project_not_found(project_id)
        raw_job_id = request.match_info["job_id"]
        try:
            job_id = int(raw_job_id)
        except ValueError:
            return _dli_error(400, "DLI.0001", f"Invalid job_id: {raw_job_id[:64]!r}.")
        job = self._sim.get_job(project_id, job_id)
        if job is None:
            return _dli_error(404, "DLI.0023", f"The job {job_id} does not exist.")
        if job.status != "job_running":
            message = f"The job {job_id} is not running (status {job.status})."
            return _dli_error(400, "DLI.0012", message)
        body = {
            "is_success": "true",
            "message": "",
            "execute_graph": job.execute_graph(self._sim.now_ms()),
        }
        return web.json_response(body)


def parse_query(request: web.Request) -> MultiDict[str]:
    """The request's query decoded as the signature check decodes it (``+`` stays a plus)."""
    pairs = MultiDict[str]()
    for piece in request.raw_path.partition("?")[2].split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.add(unquote(key), unquote(value))
    return pairs


def _parse_list_query(query: MultiMapping[str]) -> _ListQuery:
    for key in _SINGLE_VALUED:
        if len(query.getall(key, [])) > 1:
            raise _BadRequest(f"The parameter {key} is given more than once.")
    name = query.get("name", "")
    if len(name) > _MAX_NAME_LENGTH:
        raise _BadRequest(f"The parameter name is longer than {_MAX_NAME_LENGTH} characters.")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _BadRequest("The parameter order must be asc or desc.")
    show_detail = query.get("show_detail", "false").lower()
    if show_detail not in ("true", "false"):
        raise _BadRequest("The parameter show_detail must be true or false.")
    return _ListQuery(
        limit=_int_param(query, "limit", 10, low=1, high=_MAX_LIMIT),
        offset=_int_param(query, "offset", 0, low=0, high=None),
        show_detail=show_detail == "true",
        ascending=order == "asc",
        name=name,
        filters={key: query[key] for key in _EQUALITY_FILTERS if query.get(key)},
    )


def _int_param(
    query: MultiMapping[str], key: str, default: int, *, low: int, high: int | None
) -> int:
    raw = query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"The parameter {key} must be an integer.") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _BadRequest(f"The parameter {key} must be {bounds}.")
    return value


def _parse_login(payload: object) -> _Login:
    """Read a password-authentication body; `_BadRequest` names the first thing wrong."""
    auth = _object(payload, "auth", "")
    identity = _object(auth, "identity", "auth")
    if identity.get("methods") != ["password"]:
        raise _BadRequest('Invalid auth.identity.methods: only ["password"] is supported.')
    user = _object(_object(identity, "password", "auth.identity"), "user", "auth.identity.password")
    path = "auth.identity.password.user"
    domain = _object(user, "domain", path)
    project = _object(_object(auth, "scope", "auth"), "project", "auth.scope")
    project_id, project_name = project.get("id"), project.get("name")
    if not isinstance(project_id, str) and not isinstance(project_name, str):
        raise _BadRequest("Invalid auth.scope.project: give its id or its name.")
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
        raise _BadRequest(f"Invalid {path + '.' if path else ''}{key}: an object is required.")
    return value


def _text(parent: dict[str, object], key: str, path: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise _BadRequest(f"Invalid {path}.{key}: a non-empty string is required.")
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


def _matches(job: SimJob, query: _ListQuery) -> bool:
    if query.name and query.name not in job.name:
        return False
    return all(getattr(job, key) == value for key, value in query.filters.items())


def _dli_error(status: int, error_code: str, message: str) -> web.Response:
    body = {
        "is_success": "false",
        "message": message,
        "error_code": error_code,
        "error_msg": message,
    }
    return web.json_response(body, status=status)


def _project_not_found(project_id: str) -> web.Response:
    return _dli_error(404, "DLI.0023", f"The project {project_id[:64]} does not exist.")


def _iam_error(status: int, message: str) -> web.Response:
    return web.json_response(_iam_error_body(status, message), status=status)


def _iam_error_body(status: int, message: str) -> dict[str, object]:
    return {"error": {"code": status, "message": message, "title": HTTPStatus(status).phrase}}


def _apig_error(status: int, error_code: str, message: str, request_id: str) -> web.Response:
    body = {"error_code": error_code, "error_msg": message, "request_id": request_id}
    return web.json_response(body, status=status)


def _throttled(rate_limit: float, request_id: str) -> web.Response:
    message = (
        "The throttling threshold has been reached: policy user over ratelimit, "
        f"limit:{rate_limit:g}, time:1 second"
    )
    return _apig_error(429, "APIG.0308", message, request_id)


async def _fault_response(
    request: web.Request, fault: Fault, request_id: str, operation: str
) -> web.StreamResponse:
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    if fault.reset:
        return _reset(request, fault.status)
    body = fault.body
    if body is None and operation == IAM_TOKEN:
        message = "Server-side errors occur." if fault.status >= 500 else "The request failed."
        body = json.dumps(_iam_error_body(fault.status, message)).encode()
    elif body is None:
        body = json.dumps(_default_fault_body(fault.status, request_id)).encode()
    if fault.truncate:
        return await _truncated(request, fault, body, request_id)
    response = web.Response(status=fault.status, body=body, content_type=fault.content_type)
    response.headers.update(fault.headers)
    return response


def _reset(request: web.Request, status: int) -> web.Response:
    """Reset the connection (RST, not a graceful close); the returned response is never sent."""
    request[_RESET] = True
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: closing sends RST and drops unsent data
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=status)


async def _truncated(
    request: web.Request, fault: Fault, body: bytes, request_id: str
) -> web.StreamResponse:
    """Announce ``len(body)`` bytes, send half of them, then close the connection."""
    response = web.StreamResponse(status=fault.status, headers=fault.headers)
    response.content_type = fault.content_type
    response.content_length = len(body)
    response.headers["X-Request-Id"] = request_id
    response.force_close()
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    return response


def _default_fault_body(status: int, request_id: str) -> dict[str, str]:
    if status == 429:
        return {
            "error_code": "APIG.0308",
            "error_msg": "The throttling threshold has been reached",
            "request_id": request_id,
        }
    if status == 401:
        return {
            "error_code": "APIG.0301",
            "error_msg": "Incorrect IAM authentication information",
            "request_id": request_id,
        }
    message = "Server-side errors occur." if status >= 500 else "The request failed."
    return {
        "is_success": "false",
        "message": message,
        "error_code": "DLI.0999",
        "error_msg": message,
    }
