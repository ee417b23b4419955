"""`Simulator`: the simulated cloud's state (projects, jobs, lifecycles, faults, request log)."""

from __future__ import annotations

import heapq
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web

from exporter.simulator.app import IAM_TOKEN, create_app
from exporter.simulator.jobs import (
    SimJob,
    new_jid,
    populate_statuses,
    random_job,
    seeded_rng,
    step,
    user_id_for,
)

#: Events a job may catch up on in one `advance()`; beyond that it is rescheduled from now, so a
#: clock jumping by months cannot stall a request.
_MAX_CATCH_UP = 1000
_FIRST_JOB_ID = 10_001


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the simulator answered (rejected ones included)."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    status: int
    access_key: str | None
    #: ``list_jobs``, ``execute_graph``, ``iam_token`` or ``unknown``.
    operation: str
    #: The IAM user: who asked for a token, or whose token authenticated a DLI request.
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """A canned failure answered instead of the real response (after the signature check).

    ``body=None`` gives the JSON error body the real service sends for ``status``.
    ``delay`` seconds pass before answering (to trip client timeouts).
    ``operation=None`` matches any DLI operation; IAM faults need ``operation="iam_token"``.
    ``reset=True`` answers nothing: the connection is reset (TCP RST); logged as status 0.
    ``truncate=True`` announces the whole body's ``Content-Length``, sends its first half and
    closes the connection.
    """

    status: int = 500
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    operation: str | None = None
    reset: bool = False
    truncate: bool = False


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What the simulated IAM knows about a token it issued (times on the simulator's clock)."""

    user: str
    project_id: str
    issued_at: float
    expires_at: float


class Simulator:
    """A DLI API stand-in: projects with Flink jobs that live through realistic lifecycles.

    ``credentials`` maps access keys to secret keys. ``clock`` (unix seconds) drives lifecycles
    and the signature-date check; ``seed`` makes populated jobs and lifecycles reproducible.
    ``latency`` seconds are slept per request; ``rate_limit`` (requests per second, all callers
    together) answers 429 ``APIG.0308`` beyond it. Past ``request_log_limit`` records the oldest
    half of `request_log` is dropped (``None``: unbounded), so a long demo does not grow forever.

    IAM: ``iam_users`` maps user names to ``(password, domain_name)``; a token they obtain is
    valid for ``token_ttl`` seconds (an attribute tests may change) on every DLI endpoint.
    Projects are named like IAM names them: the first ``region``, later ones ``region_<id>``.
    """

    def __init__(
        self,
        *,
        credentials: Mapping[str, str],
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        latency: float = 0.0,
        lifecycle: bool = True,
        rate_limit: float | None = None,
        request_log_limit: int | None = 100_000,
        iam_users: Mapping[str, tuple[str, str]] | None = None,
        token_ttl: float = 86_400.0,
        region: str = "cn-north-4",
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.latency = latency
        self.lifecycle = lifecycle
        self.rate_limit = rate_limit
        self.token_ttl = token_ttl
        self.region = region
        self.request_log: list[RequestRecord] = []
        self._credentials = dict(credentials)
        self._rng = seeded_rng(seed)
        self._projects: dict[str, dict[int, SimJob]] = {}
        self._project_names: dict[str, str] = {}
        self._iam_users = dict(iam_users or {})
        self._tokens: dict[str, IssuedToken] = {}
        self._next_id = _FIRST_JOB_ID
        # Lifecycle schedule: a heap of (due, job_id) plus the live due time and event count of
        # each job; heap entries whose due time no longer matches are stale and skipped.
        self._heap: list[tuple[float, int]] = []
        self._due: dict[int, float] = {}
        self._events: dict[int, int] = {}
        self._faults: deque[Fault] = deque()
        #: Persistent faults by operation (``None``: any DLI operation), until `clear_faults`.
        self._standing: dict[str | None, Fault] = {}
        #: Jobs to delete right after their project's next listing, by project.
        self._doomed: dict[str, set[int]] = {}
        self._log_limit = request_log_limit
        self._bucket = (float(rate_limit or 0.0), clock())

    def __repr__(self) -> str:
        return f"Simulator(projects={list(self._projects)}, seed={self.seed})"

    # --- projects and jobs ---------------------------------------------------------------

    def add_project(self, project_id: str, *, name: str | None = None) -> None:
        """Create an empty project (no-op when it exists); ``name`` is its IAM project name."""
        self._ensure_project(project_id, name)

    def _ensure_project(self, project_id: str, name: str | None = None) -> dict[int, SimJob]:
        if project_id not in self._projects:
            if name is None:
                taken = self.region in self._project_names.values()
                name = f"{self.region}_{project_id}" if taken else self.region
            elif name in self._project_names.values():
                raise ValueError(f"project name {name!r} already exists")
            self._projects[project_id] = {}
            self._project_names[project_id] = name
        return self._projects[project_id]

    def project_name(self, project_id: str) -> str | None:
        """The IAM name of a project, or ``None`` when it does not exist."""
        return self._project_names.get(project_id)

    def project_named(self, name: str) -> str | None:
        """The id of the project called ``name``, or ``None``."""
        for project_id, project_name in self._project_names.items():
            if project_name == name:
                return project_id
        return None

    def has_project(self, project_id: str) -> bool:
        """True when ``project_id`` exists."""
        return project_id in self._projects

    def add_job(self, project_id: str, **fields_: Any) -> SimJob:
        """Add a job (creating the project if needed); any `SimJob` field may be given.

        Defaults: a running Flink OpenSource SQL job created an hour ago and started
        50 minutes ago, with a fresh unique ``job_id``.
        """
        jobs = self._ensure_project(project_id)
        job_id = fields_.pop("job_id", None)
        if job_id is None:
            job_id = self._take_id()
        elif any(job_id in other for other in self._projects.values()):
            raise ValueError(f"job_id {job_id} already exists")
        else:
            self._next_id = max(self._next_id, int(job_id) + 1)
        unknown = set(fields_) - {f.name for f in fields(SimJob)}
        if unknown:
            raise TypeError(f"unknown SimJob fields: {sorted(unknown)}")
        now_ms = self._now_ms()
        user_name = fields_.get("user_name", "alice")
        defaults: dict[str, Any] = {
            "name": f"job_{job_id}",
            "project_id": project_id,
            "user_id": user_id_for(user_name),
            "create_time_ms": now_ms - 3_600_000,
            "update_time_ms": now_ms - 3_000_000,
            "jid": new_jid(self._rng),
        }
        if fields_.get("status", "job_running") == "job_running":
            defaults["start_time_ms"] = now_ms - 3_000_000
        job = SimJob(job_id=job_id, **(defaults | fields_))
        jobs[job_id] = job
        self._schedule(job_id, self.clock())
        return job

    def populate(
        self, project_id: str, count: int, *, running_fraction: float | None = None
    ) -> list[SimJob]:
        """Add ``count`` jobs with a realistic mix of types, queues, sizes and statuses.

        ``running_fraction`` fixes the share of ``job_running`` jobs (rounded); by default about
        two thirds run. Deterministic given the seed and the calls made before.
        """
        jobs = self._ensure_project(project_id)
        now_ms = self._now_ms()
        created = []
        for status in populate_statuses(self._rng, count, running_fraction):
            job_id = self._take_id()
            job = random_job(
                self._rng, job_id=job_id, project_id=project_id, status=status, now_ms=now_ms
            )
            jobs[job_id] = job
            self._schedule(job_id, self.clock())
            created.append(job)
        return created

    def remove_job(self, project_id: str, job_id: int) -> None:
        """Delete a job; `KeyError` when it does not exist."""
        del self._project(project_id)[job_id]
        self._due.pop(job_id, None)
        self._events.pop(job_id, None)

    def jobs(self, project_id: str) -> list[SimJob]:
        """The project's jobs, in creation order (the live records, not copies)."""
        return list(self._project(project_id).values())

    def get_job(self, project_id: str, job_id: int) -> SimJob | None:
        """One job, or ``None`` when the project has no such job."""
        return self._projects.get(project_id, {}).get(job_id)

    def _project(self, project_id: str) -> dict[int, SimJob]:
        try:
            return self._projects[project_id]
        except KeyError:
            raise KeyError(f"no project {project_id!r}") from None

    def _take_id(self) -> int:
        while any(self._next_id in jobs for jobs in self._projects.values()):
            self._next_id += 1
        job_id = self._next_id
        self._next_id += 1
        return job_id

    def _now_ms(self, now: float | None = None) -> int:
        return int((self.clock() if now is None else now) * 1000)

    def now_ms(self) -> int:
        """The injected clock in epoch milliseconds."""
        return self._now_ms()

    # --- lifecycles ----------------------------------------------------------------------

    def advance(self, now: float | None = None) -> None:
        """Apply every lifecycle event due by ``now`` (default: the clock), in time order.

        Each job draws its randomness from (seed, job_id, event number), so the states reached
        at a given time do not depend on how often this is called. No-op with lifecycle off.
        """
        if not self.lifecycle:
            return
        now = self.clock() if now is None else now
        caught_up: dict[int, int] = {}
        while self._heap and self._heap[0][0] <= now:
            due, job_id = heapq.heappop(self._heap)
            if self._due.get(job_id) != due:
                continue  # stale: the job was removed or rescheduled
            job = self._find(job_id)
            if job is None:
                continue
            count = self._events.get(job_id, 0)
            rng = seeded_rng(self.seed, job_id, count)
            delay = step(job, self._now_ms(due), rng)
            self._events[job_id] = count + 1
            caught_up[job_id] = caught_up.get(job_id, 0) + 1
            if caught_up[job_id] >= _MAX_CATCH_UP:
                self._schedule_at(job_id, now + delay)
            else:
                self._schedule_at(job_id, due + delay)

    def _schedule(self, job_id: int, now: float) -> None:
        """Schedule a new job's first event a little after ``now``."""
        rng = seeded_rng(self.seed, job_id, "first")
        self._schedule_at(job_id, now + rng.uniform(5, 30))

    def _schedule_at(self, job_id: int, due: float) -> None:
        self._due[job_id] = due
        heapq.heappush(self._heap, (due, job_id))

    def _find(self, job_id: int) -> SimJob | None:
        for jobs in self._projects.values():
            if job_id in jobs:
                return jobs[job_id]
        return None

    # --- requests: credentials, faults, throttling, log ----------------------------------

    def secret_for(self, access_key: str) -> str | None:
        """The secret key of ``access_key``, or ``None`` when it is unknown."""
        return self._credentials.get(access_key)

    def check_password(self, user: str, password: str, domain_name: str) -> bool:
        """True when ``user`` exists in ``domain_name`` with this password."""
        return self._iam_users.get(user) == (password, domain_name)

    def issue_token(self, user: str, project_id: str) -> tuple[str, IssuedToken]:
        """A new token for ``user`` scoped to ``project_id``, valid ``token_ttl`` seconds."""
        now = self.clock()
        self._tokens = {t: issued for t, issued in self._tokens.items() if issued.expires_at > now}
        token = "MII" + secrets.token_urlsafe(96)
        issued = IssuedToken(user, project_id, now, now + self.token_ttl)
        self._tokens[token] = issued
        return token, issued

    def token_info(self, token: str) -> IssuedToken | None:
        """The issued token, or ``None`` when it is unknown, revoked or expired."""
        issued = self._tokens.get(token)
        if issued is None or issued.expires_at <= self.clock():
            return None
        return issued

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (as a password change does)."""
        self._tokens.clear()

    def inject_fault(self, fault: Fault, *, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``fault``, in injection order."""
        self._faults.extend([fault] * times)

    def set_fault(self, fault: Fault) -> None:
        """Answer every request matching ``fault.operation`` with ``fault`` until cleared.

        Queued faults (`inject_fault`) go first. A later ``set_fault`` for the same operation
        replaces this one; one for a specific operation wins over one for any (``None``).
        """
        self._standing[fault.operation] = fault

    def clear_faults(self) -> None:
        """Drop every queued and persistent fault: requests are answered normally again."""
        self._faults.clear()
        self._standing.clear()

    def take_fault(self, operation: str) -> Fault | None:
        """The first queued fault matching ``operation`` (removed), else the standing one."""
        for fault in self._faults:
            if fault.operation == operation or (fault.operation is None and operation != IAM_TOKEN):
                self._faults.remove(fault)
                return fault
        standing = self._standing.get(operation)
        if standing is None and operation != IAM_TOKEN:
            standing = self._standing.get(None)
        return standing

    def delete_after_next_list(self, project_id: str, job_id: int) -> None:
        """Delete a job right after the next list-jobs page of its project is built.

        The job is listed once more and then gone, as when it is deleted between a client's
        listing and its execute-graph call (which then answers 404).
        """
        self._doomed.setdefault(project_id, set()).add(job_id)

    def jobs_listed(self, project_id: str) -> None:
        """Called by the list handler after building a page: applies `delete_after_next_list`."""
        for job_id in self._doomed.pop(project_id, set()):
            if self.get_job(project_id, job_id) is not None:
                self.remove_job(project_id, job_id)

    def admit(self) -> bool:
        """Token-bucket throttle on the injected clock; False when over ``rate_limit``."""
        if self.rate_limit is None:
            return True
        tokens, last = self._bucket
        now = self.clock()
        burst = max(1.0, self.rate_limit)
        tokens = min(burst, tokens + max(0.0, now - last) * self.rate_limit)
        admitted = tokens >= 1.0
        self._bucket = (tokens - 1.0 if admitted else tokens, now)
        return admitted

    def record(
        self,
        *,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        access_key: str | None,
        operation: str,
        user: str | None = None,
    ) -> None:
        """Append a `RequestRecord` stamped with the clock; trims the log when over its limit."""
        entry = RequestRecord(
            self.clock(), method, path, query, status, access_key, operation, user
        )
        self.request_log.append(entry)
        if self._log_limit is not None and len(self.request_log) > self._log_limit:
            del self.request_log[: len(self.request_log) - self._log_limit // 2]

    def app(self) -> web.Application:
        """A fresh aiohttp application serving this simulator."""
        return create_app(self)
