"""The simulator's aiohttp application: DLI's list-jobs and execute-graph endpoints.

A middleware plays the API gateway (latency, route lookup, AK/SK signature check, throttling,
injected faults, request log); the handlers play DLI and answer raw JSON as it does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

from aiohttp import web
from multidict import MultiDict, MultiMapping

from exporter.signing import SignatureError, verify_request

if TYPE_CHECKING:
    from exporter.simulator.jobs import SimJob
    from exporter.simulator.state import Fault, Simulator

LIST_JOBS: Final = "list_jobs"
EXECUTE_GRAPH: Final = "execute_graph"
UNKNOWN: Final = "unknown"

_LIST_PATH: Final = "/v1.0/{project_id}/streaming/jobs"
_GRAPH_PATH: Final = "/v1.0/{project_id}/streaming/jobs/{job_id}/execute-graph"
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
    """A query parameter DLI would reject (answered as 400 ``DLI.0001``)."""


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
        operation = route_name if route_name in (LIST_JOBS, EXECUTE_GRAPH) else UNKNOWN
        response, access_key = await self._answer(request, handler, operation, request_id)
        response.headers["X-Request-Id"] = request_id
        query: dict[str, str] = {}
        for key, value in parse_query(request).items():
            query.setdefault(key, value)
        sim.record(
            method=request.method,
            path=request.path,
            query=query,
            status=response.status,
            access_key=access_key,
            operation=operation,
        )
        return response

    async def _answer(
        self, request: web.Request, handler: _Handler, operation: str, request_id: str
    ) -> tuple[web.StreamResponse, str | None]:
        no_route = request.match_info.http_exception
        if no_route is not None:
            message = "The API does not exist or has not been published in the environment"
            return _apig_error(no_route.status, "APIG.0101", message, request_id), None
        raw_path, _, raw_query = request.raw_path.partition("?")
        try:
            access_key = verify_request(
                request.method,
                raw_path,
                raw_query,
                request.headers,
                await request.read(),
                lookup_secret=self._sim.secret_for,
                now=datetime.fromtimestamp(self._sim.clock(), tz=UTC),
            )
        except SignatureError as err:
            return _apig_error(401, err.error_code, err.error_msg, request_id), None
        if not self._sim.admit():
            return _throttled(self._sim.rate_limit or 0.0, request_id), access_key
        fault = self._sim.take_fault(operation)
        if fault is not None:
            return await _fault_response(fault, request_id), access_key
        return await handler(request), access_key

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


def _apig_error(status: int, error_code: str, message: str, request_id: str) -> web.Response:
    body = {"error_code": error_code, "error_msg": message, "request_id": request_id}
    return web.json_response(body, status=status)


def _throttled(rate_limit: float, request_id: str) -> web.Response:
    message = (
        "The throttling threshold has been reached: policy user over ratelimit, "
        f"limit:{rate_limit:g}, time:1 second"
    )
    return _apig_error(429, "APIG.0308", message, request_id)


async def _fault_response(fault: Fault, request_id: str) -> web.Response:
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    body = fault.body
    if body is None:
        body = json.dumps(_default_fault_body(fault.status, request_id)).encode()
    response = web.Response(status=fault.status, body=body, content_type=fault.content_type)
    response.headers.update(fault.headers)
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
