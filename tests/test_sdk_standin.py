"""Acceptance: the exporter against an independent DLI stand-in that checks signatures with the SDK.

The stand-in shares no code with the exporter: every request's signature is recomputed by the
official ``huaweicloudsdkcore`` signer from what arrived on the wire, and the job data is a fixed
set (two list pages, every documented status, odd names, missing fields). The exporter app polls
it over real HTTP, and every job's series on ``/metrics`` are compared with what the stand-in
reported.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from yarl import URL

from exporter.config import AkSkAuth, Config, Filters
from exporter.secret import Secret
from exporter.web import create_app
from tests.conftest import make_target

Json = dict[str, Any]
#: (url, headers) of a signed request, for the controls that tamper with one.
Tamper = Callable[[str, dict[str, str]], tuple[str, dict[str, str]]]

AK: Final = "STANDINAK7Q2W9E4R6T8Y"
SK: Final = "standin-sk-never-logged-3c1d5e7f9a0b"
TOKEN: Final = "standin-security-token-ffe1d2c3b4a5"
PROJECT: Final = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
TARGET: Final = "standin"
MAX_LIMIT: Final = 100
MAX_SKEW: Final = timedelta(minutes=15)
SDK_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
APIG_AUTH_ERROR: Final = "APIG.0301"

# Written out here rather than imported, so the exporter's own lists are checked too.
DOCUMENTED_STATUSES: Final = (
    "job_init",
    "job_submitting",
    "job_submit_fail",
    "job_running",
    "job_running_exception",
    "job_downloading",
    "job_idle",
    "job_canceling",
    "job_cancel_success",
    "job_cancel_fail",
    "job_savepointing",
    "job_arrearage_stopped",
    "job_arrearage_recovering",
    "job_finish",
)
FLINK_STATES: Final = (
    "INITIALIZING",
    "CREATED",
    "RUNNING",
    "FAILING",
    "FAILED",
    "CANCELLING",
    "CANCELED",
    "FINISHED",
    "RESTARTING",
    "SUSPENDED",
    "RECONCILING",
)
UNKNOWN_STATUS: Final = "job_teleporting"
UNKNOWN_FLINK_STATE: Final = "RESCALING"
RUNNING: Final = "job_running"
T0: Final = 1_700_000_000_000  # ms


# --- the job data -------------------------------------------------------------------------------


def special_jobs() -> list[tuple[Json, Json | None]]:
    """Hand-picked awkward jobs, each with its execution graph when it is running."""
    return [
        (  # quotes and backslashes; everything present
            {
                "job_id": 7001,
                "name": 'orders "EU" \\ nightly \\"x\\"',
                "desc": "",
                "user_name": "alice",
                "job_type": "flink_opensource_sql_job",
                "status": RUNNING,
                "status_desc": "",
                "create_time": T0 + 1,
                "start_time": T0 + 60_001,
                "duration": 3_500_000,
                "root_id": -1,
                "run_mode": "exclusive_cluster",
                "queue_name": "q-main",
                "has_savepoint": True,
                "restart_times": 3,
                "job_config": {
                    "cu_number": 8,
                    "manager_cu_number": 1,
                    "parallel_number": 4,
                    "tm_cus": 1,
                    "tm_slot_num": 2,
                    "real_cu_number": 9,
                    "executor_number": 2,
                    "executor_cu_number": 2,
                    "flink_version": "1.15",
                },
            },
            {
                "jid": "0" * 31 + "1",
                "name": "orders",
                "isStoppable": True,
                "state": "RUNNING",
                "start-time": T0 + 60_001,
                "end-time": -1,
                "duration": 3_600_000,
            },
        ),
        (  # unicode and an emoji
            {
                "job_id": 7002,
                "name": "实时订单统计 ✓ ünïcödé 🚀",
                "user_name": "张三",
                "job_type": "flink_sql_job",
                "status": "job_cancel_success",
                "create_time": T0 + 2,
                "start_time": T0 + 70_000,
                "duration": 86_400_000,
                "queue_name": "队列",
                "has_savepoint": False,
                "restart_times": 0,
                "job_config": {"cu_number": 2, "manager_cu_number": 1, "real_cu_number": 2},
            },
            None,
        ),
        (  # control characters in the name
            {
                "job_id": 7003,
                "name": "two\nlines\tand a tab",
                "status": "job_running_exception",
                "create_time": T0 + 3,
                "start_time": T0 + 3_000,
                "duration": 1,
                "restart_times": 99,
                "has_savepoint": True,
                "job_config": {"cu_number": 3, "parallel_number": 3},
            },
            None,
        ),
        (  # exposition syntax in the name
            {
                "job_id": 7004,
                "name": 'label{a="b"},c=d # not a comment',
                "status": "job_finish",
                "create_time": T0 + 4,
                "start_time": T0 + 4_000,
                "duration": 12_345,
                "restart_times": 1,
                "has_savepoint": False,
                "job_config": {"cu_number": 5, "tm_cus": 2, "tm_slot_num": 4},
            },
            None,
        ),
        (  # empty name
            {
                "job_id": 7005,
                "name": "",
                "status": "job_idle",
                "create_time": T0 + 5,
                "start_time": T0 + 5_000,
                "duration": 5,
                "restart_times": 2,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            None,
        ),
        (  # no name at all
            {
                "job_id": 7006,
                "status": "job_submitting",
                "create_time": T0 + 6,
                "start_time": 0,
                "restart_times": 0,
                "has_savepoint": False,
            },
            None,
        ),
        (  # running, without restart_times and job_config
            {
                "job_id": 7007,
                "name": "no-config",
                "status": RUNNING,
                "create_time": T0 + 7,
                "start_time": T0 + 7_000,
                "duration": 700,
                "has_savepoint": True,
            },
            {"state": "RESTARTING", "isStoppable": False, "duration": 7_777, "end-time": -1},
        ),
        (  # never started: start_time 0, zeros that are real values, empty job_config
            {
                "job_id": 7008,
                "name": "draft",
                "status": "job_init",
                "create_time": T0 + 8,
                "start_time": 0,
                "duration": 0,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {},
            },
            None,
        ),
        (  # job_config null
            {
                "job_id": 7009,
                "name": "null-config",
                "status": "job_submit_fail",
                "create_time": T0 + 9,
                "start_time": 0,
                "restart_times": 0,
                "job_config": None,
            },
            None,
        ),
        (  # real_cu_number 0 means "same as cu_number"
            {
                "job_id": 7010,
                "name": "real-cu-zero",
                "status": RUNNING,
                "create_time": T0 + 10,
                "start_time": T0 + 10_000,
                "duration": 10,
                "restart_times": 4,
                "has_savepoint": False,
                "job_config": {"cu_number": 16, "manager_cu_number": 2, "real_cu_number": 0},
            },
            {"state": "FAILING", "isStoppable": False, "duration": 1_010},
        ),
        (  # real_cu_number 0 and no cu_number: nothing to report
            {
                "job_id": 7011,
                "name": "real-cu-zero-no-cu",
                "status": "job_canceling",
                "create_time": T0 + 11,
                "start_time": T0 + 11_000,
                "duration": 11,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"real_cu_number": 0, "parallel_number": 1},
            },
            None,
        ),
        (  # no real_cu_number
            {
                "job_id": 7012,
                "name": "no-real-cu",
                "status": "job_cancel_fail",
                "create_time": T0 + 12,
                "start_time": T0 + 12_000,
                "duration": 12,
                "restart_times": 0,
                "has_savepoint": True,
                "job_config": {"cu_number": 4},
            },
            None,
        ),
        (  # a status DLI may add one day
            {
                "job_id": 7013,
                "name": "from-the-future",
                "status": UNKNOWN_STATUS,
                "create_time": T0 + 13,
                "start_time": T0 + 13_000,
                "duration": 13,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            None,
        ),
        (  # no status at all
            {
                "job_id": 7014,
                "name": "no-status",
                "create_time": T0 + 14,
                "start_time": 0,
                "restart_times": 0,
                "has_savepoint": False,
            },
            None,
        ),
        (  # running, the graph has no duration: the list's duration is used
            {
                "job_id": 7015,
                "name": "graph-without-duration",
                "status": RUNNING,
                "create_time": T0 + 15,
                "start_time": T0 + 15_000,
                "duration": 98_765,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            {"state": "RUNNING", "isStoppable": True},
        ),
        (  # running, no duration anywhere
            {
                "job_id": 7016,
                "name": "no-duration-anywhere",
                "status": RUNNING,
                "create_time": T0 + 16,
                "start_time": T0 + 16_000,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            {"state": "CREATED", "isStoppable": False},
        ),
        (  # running, the graph has neither state nor isStoppable
            {
                "job_id": 7017,
                "name": "graph-without-state",
                "status": RUNNING,
                "create_time": T0 + 17,
                "start_time": T0 + 17_000,
                "duration": 17,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            {"duration": 17_017},
        ),
        (  # running, a Flink state the exporter does not know
            {
                "job_id": 7018,
                "name": "unknown-flink-state",
                "status": RUNNING,
                "create_time": T0 + 18,
                "start_time": T0 + 18_000,
                "duration": 18,
                "restart_times": 1,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            {"state": UNKNOWN_FLINK_STATE, "isStoppable": False, "duration": 18_018},
        ),
        (  # an id beyond 2**53: must not go through a float
            {
                "job_id": 2**53 + 1,
                "name": "huge-id",
                "status": "job_savepointing",
                "create_time": T0 + 19,
                "start_time": T0 + 19_000,
                "duration": 19,
                "restart_times": 0,
                "has_savepoint": True,
                "job_config": {"cu_number": 2},
            },
            None,
        ),
        (  # no has_savepoint, create_time or start_time
            {
                "job_id": 7020,
                "name": "sparse",
                "status": "job_arrearage_stopped",
                "duration": 20,
                "restart_times": 0,
                "job_config": {"cu_number": 2},
            },
            None,
        ),
        (  # fields the exporter does not know
            {
                "job_id": 7021,
                "name": "extra-fields",
                "status": "job_arrearage_recovering",
                "create_time": T0 + 21,
                "start_time": T0 + 21_000,
                "duration": 21,
                "restart_times": 0,
                "has_savepoint": False,
                "edge_group_ids": ["g1", "g2"],
                "tags": [{"key": "team", "value": "data"}],
                "job_config": {
                    "cu_number": 6,
                    "resource_config": {"max_slot": 4, "policy": {"nested": [1, 2]}},
                    "feature": "basic",
                },
            },
            None,
        ),
        (
            {
                "job_id": 7022,
                "name": "downloading",
                "status": "job_downloading",
                "create_time": T0 + 22,
                "start_time": 0,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            None,
        ),
        (  # running with a zero duration in the graph: 0 is a value
            {
                "job_id": 7023,
                "name": "a=b, c=d",
                "status": RUNNING,
                "create_time": T0 + 23,
                "start_time": T0 + 23_000,
                "duration": 23,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            {"state": "SUSPENDED", "isStoppable": False, "duration": 0},
        ),
        (  # running, duration only in the graph
            {
                "job_id": 7024,
                "name": "graph-duration-only",
                "status": RUNNING,
                "create_time": T0 + 24,
                "start_time": T0 + 24_000,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"cu_number": 2},
            },
            {"state": "RECONCILING", "isStoppable": False, "duration": 24_024},
        ),
        (  # zeros in job_config are values
            {
                "job_id": 7025,
                "name": "zeros",
                "status": "job_finish",
                "create_time": T0 + 25,
                "start_time": T0 + 25_000,
                "duration": 25,
                "restart_times": 0,
                "has_savepoint": False,
                "job_config": {"cu_number": 0, "tm_slot_num": 0, "executor_number": 0},
            },
            None,
        ),
    ]


def fleet_job(i: int) -> tuple[Json, Json | None]:
    """The i-th ordinary job (half of them running, cycling through statuses and Flink states)."""
    running = i % 2 == 0
    others = [status for status in DOCUMENTED_STATUSES if status != RUNNING]
    status = RUNNING if running else others[(i // 2) % len(others)]
    job_id = 100_000 + 7 * i
    created = T0 + i * 3_600_123
    never_started = status in ("job_init", "job_submitting", "job_submit_fail")
    started = 0 if never_started else created + 60_000 + i
    job = {
        "job_id": job_id,
        "name": f"fleet-{i:03d}",
        "desc": f"job number {i}",
        "user_name": ("alice", "bob", "etl-robot")[i % 3],
        "job_type": ("flink_sql_job", "flink_opensource_sql_job", "flink_jar_job")[i % 3],
        "status": status,
        "status_desc": "",
        "create_time": created,
        "start_time": started,
        "duration": 0 if never_started else i * 61_007,
        "root_id": -1,
        "run_mode": ("shared_cluster", "exclusive_cluster", "edge_node")[i % 3],
        "queue_name": f"queue-{i % 4}",
        "has_savepoint": i % 5 == 0,
        "restart_times": (i * 13) % 7,
        "update_time": created + 1,
        "job_config": {
            "checkpoint_enabled": i % 2 == 1,
            "cu_number": 2 + i % 15,
            "manager_cu_number": 1 + i % 2,
            "parallel_number": 1 + i % 8,
            "tm_cus": 1 + i % 4,
            "tm_slot_num": 1 + i % 6,
            "real_cu_number": 0 if i % 3 == 0 else 3 + i % 20,
            "executor_number": i % 5,
            "executor_cu_number": 1 + i % 3,
            "flink_version": ("1.12", "1.15", "1.17")[i % 3],
        },
    }
    if not running:
        return job, None
    graph = {
        "jid": f"{job_id:032x}",
        "name": job["name"],
        "isStoppable": i % 4 == 0,
        "state": FLINK_STATES[(i // 2) % len(FLINK_STATES)],
        "start-time": started,
        "end-time": -1,
        "duration": i * 61_007 + 12_345,
    }
    return job, graph


def standin_data() -> tuple[list[Json], dict[int, Json]]:
    """A fresh copy of the jobs (a special one in every fifth slot) and running jobs' graphs."""
    fleet = [fleet_job(i) for i in range(110)]
    specials = special_jobs()
    ordered: list[tuple[Json, Json | None]] = []
    for index, item in enumerate(fleet):
        if index % 4 == 0 and specials:
            ordered.append(specials.pop(0))
        ordered.append(item)
    ordered.extend(specials)
    jobs = [job for job, _ in ordered]
    graphs = {job["job_id"]: graph for job, graph in ordered if graph is not None}
    return jobs, graphs


# --- the stand-in's signature check, through the official SDK -----------------------------------


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


# --- the exporter under test --------------------------------------------------------------------


async def scrape_after_first_poll(
    standin_url: str, auth: AkSkAuth, filters: Filters | None = None
) -> str:
    """Run the exporter against the stand-in until ``/-/ready``; return its ``/metrics``."""
    target = make_target(
        TARGET,
        standin_url,
        project_id=PROJECT,
        auth=auth,
        concurrency=8,
        rate_limit=1000.0,
        filters=filters or Filters(),
    )
    app = create_app(Config(targets=(target,), source="<test>"))
    async with serve(app) as url, aiohttp.ClientSession() as session:
        async with asyncio.timeout(10):
            while True:
                async with session.get(f"{url}/-/ready") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.02)
        async with session.get(f"{url}/metrics", headers={"Accept-Encoding": "identity"}) as resp:
            assert resp.status == 200
            return await resp.text()


# --- what the exposition must say ---------------------------------------------------------------


def seconds(ms: Any) -> float | None:
    """Milliseconds as the exporter publishes them (seconds); ``None`` stays ``None``."""
    return None if ms is None else float(ms) / 1000


def number(value: Any) -> float | None:
    """A reported number or flag as a sample value; ``None`` stays ``None``."""
    return None if value is None else float(value)


def expected_scalars(job: Json, graph: Json | None) -> dict[str, float | None]:
    """Sample name -> the value the stand-in reported for it (``None``: no sample)."""
    config = job.get("job_config") or {}
    graph = graph or {}
    real_cu = config.get("real_cu_number")
    start = job.get("start_time")
    return {
        "dli_job_duration_seconds": seconds(graph.get("duration", job.get("duration"))),
        "dli_job_restarts_total": number(job.get("restart_times")),
        "dli_job_create_time_seconds": seconds(job.get("create_time")),
        "dli_job_start_time_seconds": seconds(start) if start else None,
        "dli_job_has_savepoint": number(job.get("has_savepoint")),
        "dli_job_stoppable": number(graph.get("isStoppable")),
        "dli_job_compute_units": number(config.get("cu_number")),
        "dli_job_manager_compute_units": number(config.get("manager_cu_number")),
        "dli_job_actual_compute_units": number(
            config.get("cu_number") if real_cu == 0 else real_cu
        ),
        "dli_job_parallelism": number(config.get("parallel_number")),
        "dli_job_taskmanager_compute_units": number(config.get("tm_cus")),
        "dli_job_taskmanager_slots": number(config.get("tm_slot_num")),
        "dli_job_executors": number(config.get("executor_number")),
        "dli_job_executor_compute_units": number(config.get("executor_cu_number")),
    }


def expected_state_set(current: str | None, known: Iterable[str]) -> dict[str, float]:
    """A state set: every known state, 1 for ``current``, plus ``current`` if unknown."""
    if current is None:
        return {}
    states = {state: float(state == current) for state in known}
    return {**states, current: 1.0}


def expected_info(job: Json) -> dict[str, str]:
    """The ``dli_job_info`` labels the job should get (empty when not reported)."""
    config = job.get("job_config") or {}
    return {
        "job_type": job.get("job_type") or "",
        "queue_name": job.get("queue_name") or "",
        "user_name": job.get("user_name") or "",
        "run_mode": job.get("run_mode") or "",
        "flink_version": config.get("flink_version") or "",
    }


def job_samples(exposition: str) -> dict[str, dict[str, list[Sample]]]:
    """job_id -> sample name -> the samples carrying that job id."""
    index: dict[str, dict[str, list[Sample]]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if "job_id" in sample.labels:
                index.setdefault(sample.labels["job_id"], {}).setdefault(sample.name, [])
                index[sample.labels["job_id"]][sample.name].append(sample)
    return index


def state_set_problems(
    job_id: str, name: str, label: str, samples: list[Sample], want: dict[str, float]
) -> list[str]:
    """A mismatch message when a state-set's samples are not exactly ``want``."""
    got = {sample.labels[label]: sample.value for sample in samples}
    if got != want or len(samples) != len(got):
        return [f"job {job_id} {name}: got {sorted(got.items())}, want {sorted(want.items())}"]
    return []


def job_problems(job: Json, graph: Json | None, samples: Mapping[str, list[Sample]]) -> list[str]:
    """Every way the job's series differ from what the stand-in reported."""
    job_id = str(job["job_id"])
    problems = []
    for name, value in expected_scalars(job, graph).items():
        got = [sample.value for sample in samples.get(name, [])]
        want = [] if value is None else [value]
        if got != want:
            problems.append(f"job {job_id} {name}: got {got}, want {want}")
    want_status = expected_state_set(job.get("status"), DOCUMENTED_STATUSES)
    problems += state_set_problems(
        job_id, "status", "status", samples.get("dli_job_status", []), want_status
    )
    want_flink = expected_state_set((graph or {}).get("state"), FLINK_STATES)
    problems += state_set_problems(
        job_id, "flink state", "state", samples.get("dli_job_flink_state", []), want_flink
    )
    info = samples.get("dli_job_info", [])
    want_info = expected_info(job)
    if [(s.value, {k: s.labels[k] for k in want_info}) for s in info] != [(1.0, want_info)]:
        problems.append(f"job {job_id} info: got {info}, want {want_info}")
    labels = {(s.labels["target"], s.labels["job_name"]) for ss in samples.values() for s in ss}
    if labels != {(TARGET, job.get("name") or "")}:
        problems.append(f"job {job_id} target/job_name labels: {labels}")
    return problems


def exposition_problems(exposition: str, jobs: list[Json], graphs: dict[int, Json]) -> list[str]:
    """Every difference between the exposition and the stand-in's jobs, for all jobs at once."""
    index = job_samples(exposition)
    problems = [
        f"unknown job {job_id} exported"
        for job_id in index.keys() - {str(job["job_id"]) for job in jobs}
    ]
    for job in jobs:
        graph = graphs.get(job["job_id"]) if job.get("status") == RUNNING else None
        problems += job_problems(job, graph, index.get(str(job["job_id"]), {}))
    return problems


# --- the acceptance test ------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, TOKEN], ids=["permanent-aksk", "temporary-aksk"])
async def test_every_job_comes_out_exactly_as_the_standin_reported_it(token: str | None) -> None:
    jobs, graphs = standin_data()
    standin = StandIn(jobs, graphs, security_token=token)
    auth = AkSkAuth(AK, Secret(SK), security_token=Secret(token) if token else None)

    async with serve(standin.app()) as standin_url:
        exposition = await scrape_after_first_poll(standin_url, auth)

    assert standin.rejections == []
    assert standin.violations == []
    assert [r for r in standin.requests if r.status != 200] == []
    list_calls = [r for r in standin.requests if r.path.endswith("/streaming/jobs")]
    limits = [int(dict(r.query)["limit"]) for r in list_calls]
    assert len(list_calls) >= 2 and max(limits) <= MAX_LIMIT
    # Every job listed; pages overlap by one job, so each page boundary's job twice.
    assert set(standin.listed) == {job["job_id"] for job in jobs}
    assert sum(standin.listed.values()) == len(jobs) + len(list_calls) - 1
    running = [job["job_id"] for job in jobs if job.get("status") == RUNNING]
    assert standin.graph_calls == Counter(running)
    assert exposition_problems(exposition, jobs, graphs) == []
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    assert [(s.labels, s.value) for s in families["dli_up"].samples] == [({"target": TARGET}, 1.0)]
    assert [s.value for s in families["dli_target_jobs"].samples] == [len(jobs)]
    assert SK not in exposition and TOKEN not in exposition


ODD_QUEUE: Final = "队列 a+b/c~%20&x=y"
ODD_TAGS: Final = ("team=data", "a&b c+d", "ünï/~%")


async def test_filters_with_odd_characters_are_signed_and_sent_as_the_sdk_expects() -> None:
    jobs, graphs = standin_data()
    for index, job in enumerate(jobs):
        job["queue_name"] = ODD_QUEUE if index % 3 else "other"
    standin = StandIn(jobs, graphs)
    filters = Filters(job_types=("flink_sql_job",), queue_names=(ODD_QUEUE,), tags=ODD_TAGS)
    auth = AkSkAuth(AK, Secret(SK))

    async with serve(standin.app()) as standin_url:
        exposition = await scrape_after_first_poll(standin_url, auth, filters)

    assert standin.rejections == []
    list_calls = [r for r in standin.requests if r.path.endswith("/streaming/jobs")]
    assert list_calls
    for call in list_calls:
        assert [v for k, v in call.query if k == "queue_name"] == [ODD_QUEUE]
        assert [v for k, v in call.query if k == "job_type"] == ["flink_sql_job"]
        assert sorted(v for k, v in call.query if k == "tags") == sorted(ODD_TAGS)
    wanted = {
        str(job["job_id"])
        for job in jobs
        if job.get("queue_name") == ODD_QUEUE and job.get("job_type") == "flink_sql_job"
    }
    assert len(wanted) > 5
    assert set(job_samples(exposition)) == wanted


def test_the_job_set_covers_what_the_acceptance_test_claims() -> None:
    jobs, graphs = standin_data()
    ids = [job["job_id"] for job in jobs]
    statuses = {job.get("status") for job in jobs}
    states = {graph.get("state") for graph in graphs.values()}

    assert len(ids) == len(set(ids)) > MAX_LIMIT + 20
    assert set(DOCUMENTED_STATUSES) | {UNKNOWN_STATUS, None} == statuses
    assert set(FLINK_STATES) | {UNKNOWN_FLINK_STATE, None} == states
    assert set(graphs) == {job["job_id"] for job in jobs if job.get("status") == RUNNING}
    assert any("restart_times" not in job and "job_config" not in job for job in jobs)
    assert any(job.get("start_time") == 0 for job in jobs)
    assert any("name" not in job for job in jobs)
    assert any('"' in job.get("name", "") and "\\" in job.get("name", "") for job in jobs)
    assert any(not job.get("name", "").isascii() for job in jobs)


# --- controls: the stand-in rejects what it should, so the acceptance test can fail -------------


def sdk_signed_get(
    base_url: str,
    path: str,
    query: list[tuple[str, str]],
    *,
    ak: str = AK,
    sk: str = SK,
    token: str | None = None,
    skew: timedelta = timedelta(0),
) -> tuple[str, dict[str, str]]:
    """URL and headers of a GET signed by the official SDK, as an SDK client would send it."""
    credentials = BasicCredentials(ak, sk)
    if token is not None:
        credentials.with_security_token(token)
    sdk_date = (datetime.now(UTC) + skew).strftime(SDK_DATE_FORMAT)
    request = SdkRequest(
        method="GET",
        schema="http",
        host=base_url.removeprefix("http://"),
        resource_path=path,
        query_params=query,
        header_params={"Content-Type": "application/json", "X-Sdk-Date": sdk_date},
        body=b"",
    )
    signed = credentials.sign_request(request)
    return f"{base_url}{signed.uri}", {str(k): str(v) for k, v in signed.header_params.items()}


async def send(url: str, headers: Mapping[str, str]) -> tuple[int, Json]:
    """GET an already-encoded URL with exactly these headers; the status and JSON body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(URL(url, encoded=True), headers=headers) as resp,
    ):
        return resp.status, await resp.json()


def replace_url(old: str, new: str) -> Tamper:
    """Change the URL after signing."""
    return lambda url, headers: (url.replace(old, new), headers)


def set_header(name: str, value: str | None) -> Tamper:
    """Set (or, with ``None``, remove) a header after signing."""

    def tamper(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        changed = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        if value is not None:
            changed[name] = value
        return url, changed

    return tamper


@dataclass(frozen=True)
class Control:
    """A request signed by the SDK (maybe with wrong inputs or tampered with) and its outcome."""

    status: int
    standin_token: str | None = None
    ak: str = AK
    sk: str = SK
    token: str | None = None
    skew: timedelta = timedelta(0)
    tamper: Tamper | None = None


CONTROLS: Final = {
    "sdk-signed": Control(200),
    "sdk-signed-temporary": Control(200, standin_token=TOKEN, token=TOKEN),
    "wrong-secret-key": Control(401, sk="not-the-secret-key"),
    "unknown-access-key": Control(401, ak="SOMEONEELSE000000000"),
    "query-changed": Control(401, tamper=replace_url("offset=0", "offset=1")),
    "path-changed": Control(401, tamper=replace_url(PROJECT, PROJECT.upper())),
    "signed-header-changed": Control(401, tamper=set_header("Content-Type", "application/xml")),
    "signed-header-dropped": Control(401, tamper=set_header("Content-Type", None)),
    "no-authorization": Control(401, tamper=set_header("Authorization", None)),
    "stale-date": Control(401, skew=timedelta(hours=-1)),
    "token-missing": Control(401, standin_token=TOKEN),
    "token-wrong": Control(401, standin_token=TOKEN, token="some-other-token"),
    "token-unsigned": Control(
        401, standin_token=TOKEN, tamper=set_header("X-Security-Token", TOKEN)
    ),
}


@pytest.mark.parametrize("name", CONTROLS)
async def test_standin_accepts_only_correctly_signed_requests(name: str) -> None:
    control = CONTROLS[name]
    jobs, graphs = standin_data()
    standin = StandIn(jobs, graphs, security_token=control.standin_token)
    async with serve(standin.app()) as base:
        url, headers = sdk_signed_get(
            base,
            f"/v1.0/{PROJECT}/streaming/jobs",
            [("limit", "10"), ("offset", "0"), ("show_detail", "true")],
            ak=control.ak,
            sk=control.sk,
            token=control.token,
            skew=control.skew,
        )
        if control.tamper is not None:
            url, headers = control.tamper(url, headers)
        status, body = await send(url, headers)

    assert status == control.status, body
    assert len(standin.requests) == 1
    if status == 200:
        assert standin.rejections == []
        assert len(body["job_list"]["jobs"]) == 10
    else:
        assert body["error_code"] == APIG_AUTH_ERROR
        assert len(standin.rejections) == 1
        assert SK not in json.dumps(body)


async def test_standin_pages_and_refuses_pages_over_100() -> None:
    jobs, graphs = standin_data()
    standin = StandIn(jobs, graphs)
    path = f"/v1.0/{PROJECT}/streaming/jobs"
    async with serve(standin.app()) as base:
        last = await send(*sdk_signed_get(base, path, [("limit", "100"), ("offset", "100")]))
        too_big = await send(*sdk_signed_get(base, path, [("limit", "101"), ("offset", "0")]))

    assert last[0] == 200
    assert last[1]["job_list"]["total_count"] == len(jobs)
    assert [job["job_id"] for job in last[1]["job_list"]["jobs"]] == [
        job["job_id"] for job in jobs[100:]
    ]
    assert too_big[0] == 400
    assert standin.violations == ["list with limit=101"]


async def test_standin_refuses_execute_graph_of_a_job_that_is_not_running() -> None:
    jobs, graphs = standin_data()
    standin = StandIn(jobs, graphs)
    running = next(job["job_id"] for job in jobs if job.get("status") == RUNNING)
    idle = next(job["job_id"] for job in jobs if job.get("status") == "job_idle")
    graph_path = f"/v1.0/{PROJECT}/streaming/jobs/{{}}/execute-graph"
    async with serve(standin.app()) as base:
        ok = await send(*sdk_signed_get(base, graph_path.format(running), []))
        refused = await send(*sdk_signed_get(base, graph_path.format(idle), []))

    assert ok == (200, {"is_success": True, "message": "", "execute_graph": graphs[running]})
    assert refused[0] == 400
    assert len(standin.violations) == 1 and str(idle) in standin.violations[0]
