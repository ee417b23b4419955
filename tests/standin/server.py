"""The stand-in DLI API: list jobs and execute-graph, every signature recomputed by the SDK.

Its signature check is the API gateway's, seen from outside: the ``Authorization`` header is
parsed, the signed headers, ``X-Sdk-Date`` and (for temporary credentials) ``X-Security-Token``
are checked, and the official ``huaweicloudsdkcore`` signer recomputes the signature from what
arrived on the wire.
"""

from __future__ import annotations

import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import unquote

from aiohttp import web
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from tests.standin.data import RUNNING, Json

AK: Final = "STANDINAK7Q2W9E4R6T8Y"
SK: Final = "standin-sk-never-logged-3c1d5e7f9a0b"
TOKEN: Final = "standin-security-token-ffe1d2c3b4a5"
PROJECT: Final = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
MAX_LIMIT: Final = 100
MAX_SKEW: Final = timedelta(minutes=15)
SDK_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
APIG_AUTH_ERROR: Final = "APIG.0301"


# --- the signature check, through the official SDK ----------------------------------------------


def parse_authorization(value: str) -> dict[str, str] | None:
    """``Access``, ``SignedHeaders`` and ``Signature`` of an ``SDK-HMAC-SHA256`` header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != "SDK-HMAC-SHA256":
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, field_value = part.strip().partition("=")
        if not eq:
            return None
        fields[key] = field_value
    return fields if {"Access", "SignedHeaders", "Signature"} <= fields.keys() else None


def decode_query(raw_query: str) -> list[tuple[str, str]]:
    """The query parameters as sent, percent-decoded (a ``+`` stays a plus, as the SDK sends)."""
    pairs = []
    for piece in raw_query.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The first value of a header, by case-insensitive name."""
    return next((value for key, value in headers if key.lower() == name), None)


def signed_header_values(
    headers: Sequence[tuple[str, str]], signed_names: Sequence[str]
) -> dict[str, str] | str:
    """The signed headers with their received names and values, or what is wrong with them."""
    values: dict[str, str] = {}
    for name, value in headers:
        if name.lower() in signed_names:
            if any(seen.lower() == name.lower() for seen in values):
                return f"signed header {name} sent twice"
            values[name] = value
    missing = sorted(set(signed_names) - {name.lower() for name in values})
    return f"signed header(s) not sent: {', '.join(missing)}" if missing else values


def date_problem(sdk_date: str | None, now: datetime) -> str | None:
    """What is wrong with ``X-Sdk-Date``: missing, malformed or too far from ``now``."""
    if sdk_date is None:
        return "X-Sdk-Date is missing"
    try:
        moment = datetime.strptime(sdk_date, SDK_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return "X-Sdk-Date is malformed"
    return "clock skew too large" if abs(now - moment) > MAX_SKEW else None


def token_problem(
    headers: Sequence[tuple[str, str]], signed_names: Sequence[str], token: str
) -> str | None:
    """What is wrong with ``X-Security-Token`` when temporary credentials are expected."""
    sent = header(headers, "x-security-token")
    if sent is None or "x-security-token" not in signed_names:
        return "X-Security-Token is missing or not signed"
    return None if hmac.compare_digest(sent.encode(), token.encode()) else "wrong security token"


def sdk_authorization(
    method: str, raw_path: str, query: list[tuple[str, str]], signed: dict[str, str], body: bytes
) -> dict[str, str]:
    """The Authorization fields the official SDK computes for the received request."""
    host = next(value for name, value in signed.items() if name.lower() == "host")
    request = SdkRequest(
        method=method,
        schema="http",
        host=host,
        resource_path=raw_path,
        query_params=query,
        header_params=dict(signed),
        body=body,
    )
    signed_request = Signer(BasicCredentials(AK, SK)).sign(request)
    fields = parse_authorization(str(signed_request.header_params["Authorization"]))
    assert fields is not None
    return fields


def signature_problem(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    token: str | None,
    now: datetime,
) -> str | None:
    """Why the gateway would reject this request, or ``None`` when the SDK agrees with it."""
    received = parse_authorization(header(headers, "authorization") or "")
    if received is None:
        return "Authorization header is missing or malformed"
    if received["Access"] != AK:
        return "unknown access key"
    signed_names = received["SignedHeaders"].split(";")
    if not {"host", "x-sdk-date"} <= set(signed_names):
        return "host and x-sdk-date must be signed"
    signed = signed_header_values(headers, signed_names)
    if isinstance(signed, str):
        return signed
    problem = date_problem(header(headers, "x-sdk-date"), now)
    if problem is None and token is not None:
        problem = token_problem(headers, signed_names, token)
    if problem is not None:
        return problem
    expected = sdk_authorization(method, raw_path, decode_query(raw_query), signed, body)
    if expected["SignedHeaders"] != received["SignedHeaders"]:
        return "SignedHeaders differ from the SDK's"
    if not hmac.compare_digest(expected["Signature"].encode(), received["Signature"].encode()):
        return "verify aksk signature fail"
    return None


# --- the stand-in -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the stand-in received, and the status it answered."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int


def error_response(status: int, code: str, message: str) -> web.Response:
    """An error in the API's JSON shape."""
    return web.json_response({"error_code": code, "error_msg": message}, status=status)


def json_response(body: Json) -> web.Response:
    """A success body, UTF-8 as is (not ``\\u`` escapes)."""
    return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="application/json")


def parse_int(text: str | None, default: int) -> int | None:
    """A query parameter as a non-negative int; ``None`` when it is not one."""
    if text is None:
        return default
    return int(text) if text.isascii() and text.isdigit() else None


@dataclass
class StandIn:
    """A DLI API stand-in for one project: list jobs and execute-graph, SDK-checked signatures.

    ``violations`` collects requests a careful client would not send (a page over 100 jobs, an
    execution graph of a job that is not running); ``rejections`` collects failed signatures.
    """

    jobs: list[Json]
    graphs: dict[int, Json]
    security_token: str | None = None
    requests: list[Recorded] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    listed: Counter[int] = field(default_factory=Counter)
    graph_calls: Counter[int] = field(default_factory=Counter)

    def app(self) -> web.Application:
        """The aiohttp application serving this stand-in."""

        @web.middleware
        async def authenticate(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            path, _, raw_query = request.raw_path.partition("?")
            body = await request.read()
            problem = signature_problem(
                request.method,
                path,
                raw_query,
                list(request.headers.items()),
                body,
                token=self.security_token,
                now=datetime.now(UTC),
            )
            response: web.StreamResponse
            if problem is not None:
                self.rejections.append(f"{request.method} {request.raw_path}: {problem}")
                message = f"Incorrect IAM authentication information: {problem}"
                response = error_response(401, APIG_AUTH_ERROR, message)
            else:
                try:
                    response = await handler(request)
                except web.HTTPException as exc:
                    response = error_response(exc.status, "APIG.0101", exc.reason)
            query = tuple(decode_query(raw_query))
            self.requests.append(Recorded(request.method, path, query, response.status))
            return response

        app = web.Application(middlewares=[authenticate])
        app.router.add_get("/v1.0/{project_id}/streaming/jobs", self.list_jobs)
        app.router.add_get(
            "/v1.0/{project_id}/streaming/jobs/{job_id}/execute-graph", self.execute_graph
        )
        return app

    async def list_jobs(self, request: web.Request) -> web.Response:
        """One page of jobs, by ``offset`` and ``limit`` (default 10, at most 100).

        ``job_type`` and ``queue_name`` filter; other parameters (``tags``) are only recorded.
        """
        if request.match_info["project_id"] != PROJECT:
            return error_response(404, "DLI.0002", "project not found")
        params = dict(decode_query(request.raw_path.partition("?")[2]))
        limit = parse_int(params.get("limit"), 10)
        offset = parse_int(params.get("offset"), 0)
        if limit is None or offset is None or limit < 1:
            return error_response(400, "DLI.0005", "limit and offset must be integers")
        if limit > MAX_LIMIT:
            self.violations.append(f"list with limit={limit}")
            return error_response(400, "DLI.0005", f"limit must be at most {MAX_LIMIT}")
        wanted = {key: params[key] for key in ("job_type", "queue_name") if key in params}
        jobs = [job for job in self.jobs if all(job.get(k) == v for k, v in wanted.items())]
        page = jobs[offset : offset + limit]
        self.listed.update(job["job_id"] for job in page)
        return json_response(
            {
                "is_success": "true",
                "message": "Querying of the job list succeeds.",
                "job_list": {"total_count": len(jobs), "jobs": page},
            }
        )

    async def execute_graph(self, request: web.Request) -> web.Response:
        """The execution plan of a running job; 400 (and a violation) for any other job."""
        if request.match_info["project_id"] != PROJECT:
            return error_response(404, "DLI.0002", "project not found")
        text = request.match_info["job_id"]
        job_id = parse_int(text, -1)
        job_id = -1 if job_id is None else job_id
        self.graph_calls[job_id] += 1
        job = next((job for job in self.jobs if job["job_id"] == job_id), None)
        if job is None or job.get("status") != RUNNING:
            self.violations.append(f"execute-graph of job {text} ({job and job.get('status')})")
            return error_response(400, "DLI.0001", f"job {text} is not running")
        graph = self.graphs.get(job_id)
        if graph is None:
            return error_response(500, "DLI.0999", f"the stand-in has no graph for job {text}")
        return json_response({"is_success": True, "message": "", "execute_graph": graph})


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 with an ephemeral port; yield its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
