"""`Simulator`: the simulated cloud, one facade over its parts.

The parts: `Projects` (projects, jobs and their lifecycles), `Iam` (credentials and tokens),
`Faults` (canned failures) and `Traffic` (latency, throttling, request log). The facade keeps
their methods under the names the tests, benchmarks and demo use; `create_app` serves the parts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from exporter.simulator.app import create_app
from exporter.simulator.capacity import Capacity
from exporter.simulator.cloudeye import DEFAULT_LAG_SECONDS, CloudEye
from exporter.simulator.faults import Fault, Faults
from exporter.simulator.iam import Iam, IssuedToken, TemporaryCredential
from exporter.simulator.jobs import SimJob, user_id_for
from exporter.simulator.metadata import Metadata
from exporter.simulator.pools import SimPool
from exporter.simulator.projects import Projects
from exporter.simulator.queues import SimQueue
from exporter.simulator.sts_handlers import Agencies, Agency
from exporter.simulator.traffic import RequestRecord, Traffic

# Fault, IssuedToken and RequestRecord were defined here; they stay importable from here.
__all__ = ["Fault", "IssuedToken", "RequestRecord", "Simulator", "TemporaryCredential"]


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

    Metadata service (`metadata`): hands out temporary AK/SK valid ``credential_ttl`` seconds;
    DLI accepts them, with their ``X-Security-Token``, until they expire or are revoked.

    Cloud Eye (`cloud_eye`) serves running jobs' metrics (`cloudeye.cloud_eye_value`), the
    newest datapoint ``ces_lag_seconds`` behind the clock (rounded down to a whole minute).
    `capacity` holds each project's queues and elastic resource pools.

    The parts are the attributes `projects`, `capacity`, `cloud_eye`, `iam`, `metadata`,
    `faults` and `traffic`; the settings above are attributes too, read and written through to
    the part that uses them.
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
        credential_ttl: float = 86_400.0,
        ces_lag_seconds: float = DEFAULT_LAG_SECONDS,
    ) -> None:
        self.projects = Projects(clock=clock, seed=seed, lifecycle=lifecycle, region=region)
        self.capacity = Capacity()
        self.cloud_eye = CloudEye(lag_seconds=ces_lag_seconds)
        self.iam = Iam(
            credentials=credentials, clock=clock, iam_users=iam_users, token_ttl=token_ttl
        )
        self.metadata = Metadata(self.iam, clock, credential_ttl)
        self.agencies = Agencies(self.iam)
        self.faults = Faults()
        self.traffic = Traffic(
            clock=clock, latency=latency, rate_limit=rate_limit, log_limit=request_log_limit
        )

    def __repr__(self) -> str:
        return f"Simulator(projects={self.projects.ids()}, seed={self.seed})"

    def app(self) -> web.Application:
        """A fresh aiohttp application serving this simulator."""
        return create_app(self)

    # --- settings, each kept by the part that uses it --------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        """The clock (unix seconds) every part reads; setting it sets theirs."""
        return self.projects.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.projects.clock = self.iam.clock = self.traffic.clock = clock
        self.metadata.clock = clock

    @property
    def seed(self) -> int:
        """The seed of populated jobs and lifecycles."""
        return self.projects.seed

    @seed.setter
    def seed(self, seed: int) -> None:
        self.projects.seed = seed

    @property
    def lifecycle(self) -> bool:
        """Whether jobs move through their lifecycles."""
        return self.projects.lifecycle

    @lifecycle.setter
    def lifecycle(self, lifecycle: bool) -> None:
        self.projects.lifecycle = lifecycle

    @property
    def region(self) -> str:
        """The region projects are named after."""
        return self.projects.region

    @region.setter
    def region(self, region: str) -> None:
        self.projects.region = region

    @property
    def ces_lag_seconds(self) -> float:
        """Seconds Cloud Eye's newest datapoint trails the clock (before minute alignment)."""
        return self.cloud_eye.lag_seconds

    @ces_lag_seconds.setter
    def ces_lag_seconds(self, lag: float) -> None:
        self.cloud_eye.lag_seconds = lag

    @property
    def latency(self) -> float:
        """Seconds slept per request."""
        return self.traffic.latency

    @latency.setter
    def latency(self, latency: float) -> None:
        self.traffic.latency = latency

    @property
    def rate_limit(self) -> float | None:
        """Requests per second admitted, all callers together (``None``: unlimited)."""
        return self.traffic.rate_limit

    @rate_limit.setter
    def rate_limit(self, rate_limit: float | None) -> None:
        self.traffic.rate_limit = rate_limit

    @property
    def token_ttl(self) -> float:
        """Seconds a newly issued IAM token is valid."""
        return self.iam.token_ttl

    @token_ttl.setter
    def token_ttl(self, token_ttl: float) -> None:
        self.iam.token_ttl = token_ttl

    @property
    def credential_ttl(self) -> float:
        """Seconds the temporary AK/SK the metadata service hands out are valid."""
        return self.metadata.credential_ttl

    @credential_ttl.setter
    def credential_ttl(self, credential_ttl: float) -> None:
        self.metadata.credential_ttl = credential_ttl

    @property
    def metadata_token_status(self) -> int | None:
        """What the metadata token endpoint answers: ``None`` issues tokens; 404/405/503 not."""
        return self.metadata.token_status

    @metadata_token_status.setter
    def metadata_token_status(self, status: int | None) -> None:
        self.metadata.token_status = status

    @property
    def metadata_agency(self) -> bool:
        """False: the instance has no agency, and the key endpoint answers 401."""
        return self.metadata.agency

    @metadata_agency.setter
    def metadata_agency(self, agency: bool) -> None:
        self.metadata.agency = agency

    @property
    def pod_identity_token(self) -> str | None:
        """The ``Authorization`` token pod identity accepts (``None``: it accepts none)."""
        return self.metadata.pod_token

    @pod_identity_token.setter
    def pod_identity_token(self, token: str | None) -> None:
        self.metadata.pod_token = token

    @property
    def oidc_identity(self) -> tuple[str, str, str] | None:
        """The ``(provider_urn, agency_urn, id_token)`` STS accepts (``None``: none)."""
        return self.metadata.oidc_identity

    @oidc_identity.setter
    def oidc_identity(self, identity: tuple[str, str, str] | None) -> None:
        self.metadata.oidc_identity = identity

    @property
    def federated_identity(self) -> tuple[str, str] | None:
        """The ``(idp_id, id_token)`` IAM exchanges for an unscoped token (``None``: none)."""
        return self.metadata.federated_identity

    @federated_identity.setter
    def federated_identity(self, identity: tuple[str, str] | None) -> None:
        self.metadata.federated_identity = identity

    @property
    def request_log(self) -> list[RequestRecord]:
        """Every request answered (rejected ones included), oldest first."""
        return self.traffic.log

    @request_log.setter
    def request_log(self, log: list[RequestRecord]) -> None:
        self.traffic.log = log

    # --- projects and jobs (`Projects`) ----------------------------------------------------

    def add_project(self, project_id: str, *, name: str | None = None) -> None:
        """Create an empty project (no-op when it exists); ``name`` is its IAM project name."""
        self.projects.add_project(project_id, name=name)

    def project_name(self, project_id: str) -> str | None:
        """The IAM name of a project, or ``None`` when it does not exist."""
        return self.projects.project_name(project_id)

    def project_named(self, name: str) -> str | None:
        """The id of the project called ``name``, or ``None``."""
        return self.projects.project_named(name)

    def has_project(self, project_id: str) -> bool:
        """True when ``project_id`` exists."""
        return self.projects.has_project(project_id)

    def add_job(self, project_id: str, **fields_: Any) -> SimJob:
        """Add a job (creating the project if needed); any `SimJob` field may be given."""
        return self.projects.add_job(project_id, **fields_)

    def populate(
        self, project_id: str, count: int, *, running_fraction: float | None = None
    ) -> list[SimJob]:
        """Add ``count`` jobs with a realistic mix of types, queues, sizes and statuses.

        Also adds the queues the project's jobs name (general), a SQL queue ``sql_adhoc`` and
        the pools hosting them, unless they exist; all deterministic given the seed.
        """
        jobs = self.projects.populate(project_id, count, running_fraction=running_fraction)
        self.capacity.populate(
            project_id, self.projects.jobs(project_id), seed=self.seed, now_ms=self.now_ms()
        )
        return jobs

    def remove_job(self, project_id: str, job_id: int) -> None:
        """Delete a job; `KeyError` when it does not exist."""
        self.projects.remove_job(project_id, job_id)

    def jobs(self, project_id: str) -> list[SimJob]:
        """The project's jobs, in creation order (the live records, not copies)."""
        return self.projects.jobs(project_id)

    def get_job(self, project_id: str, job_id: int) -> SimJob | None:
        """One job, or ``None`` when the project has no such job."""
        return self.projects.get_job(project_id, job_id)

    def delete_after_next_list(self, project_id: str, job_id: int) -> None:
        """Delete a job right after the next list-jobs page of its project is built."""
        self.projects.delete_after_next_list(project_id, job_id)

    def jobs_listed(self, project_id: str) -> None:
        """Called after building a list-jobs page: applies `delete_after_next_list`."""
        self.projects.jobs_listed(project_id)

    def now_ms(self) -> int:
        """The injected clock in epoch milliseconds."""
        return self.projects.now_ms()

    def advance(self, now: float | None = None) -> None:
        """Apply every lifecycle event due by ``now`` (default: the clock), in time order."""
        self.projects.advance(now)

    # --- queues and elastic resource pools (`Capacity`) -----------------------------------

    def add_queue(self, project_id: str, name: str, *, cu_count: int, **fields_: Any) -> SimQueue:
        """Add a queue (creating the project if needed); any `SimQueue` field may be given.

        Defaults: a general, dedicated, pay-per-use queue, scaling between ``min(16, cu_count)``
        and ``cu_count``, whose ``used_cu`` is what its running jobs take (`SimQueue.used_cu`).
        """
        self.projects.add_project(project_id)
        return self.capacity.add_queue(
            project_id, name, now_ms=self.now_ms(), cu_count=cu_count, **fields_
        )

    def add_pool(
        self,
        project_id: str,
        name: str,
        *,
        max_cu: int,
        min_cu: int,
        current_cu: int,
        **fields_: Any,
    ) -> SimPool:
        """Add an elastic resource pool (creating the project if needed); any `SimPool` field.

        Defaults: ``AVAILABLE``, no failure, ``actual_cu`` = ``current_cu``, nothing prepaid.
        """
        self.projects.add_project(project_id)
        return self.capacity.add_pool(
            project_id,
            name,
            now_ms=self.now_ms(),
            max_cu=max_cu,
            min_cu=min_cu,
            current_cu=current_cu,
            **fields_,
        )

    def queues(self, project_id: str) -> list[SimQueue]:
        """The project's queues, in creation order (the live records)."""
        return self.capacity.queues(project_id)

    def pools(self, project_id: str) -> list[SimPool]:
        """The project's elastic resource pools, in creation order (the live records)."""
        return self.capacity.pools(project_id)

    # --- credentials and tokens (`Iam`) ----------------------------------------------------

    def secret_for(self, access_key: str) -> str | None:
        """The secret key of ``access_key``, or ``None`` when it is unknown."""
        return self.iam.secret_for(access_key)

    def check_password(self, user: str, password: str, domain_name: str) -> bool:
        """True when ``user`` exists in ``domain_name`` with this password."""
        return self.iam.check_password(user, password, domain_name)

    def issue_token(self, user: str, project_id: str) -> tuple[str, IssuedToken]:
        """A new token for ``user`` scoped to ``project_id``, valid ``token_ttl`` seconds."""
        return self.iam.issue_token(user, project_id)

    def token_info(self, token: str) -> IssuedToken | None:
        """The issued token, or ``None`` when it is unknown, revoked or expired."""
        return self.iam.token_info(token)

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (as a password change does)."""
        self.iam.revoke_tokens()

    def issue_temporary_credentials(self, ttl: float | None = None) -> TemporaryCredential:
        """New temporary AK/SK valid ``ttl`` seconds (default ``credential_ttl``)."""
        return self.iam.issue_temporary(self.credential_ttl if ttl is None else ttl)

    def temporary_credentials(self) -> list[TemporaryCredential]:
        """Every temporary AK/SK issued and not revoked, oldest first."""
        return self.iam.temporary_credentials()

    def revoke_temporary_credentials(self) -> None:
        """Invalidate every temporary AK/SK issued so far; DLI answers 401 to them."""
        self.iam.revoke_temporary()

    def add_agency(
        self,
        domain_name: str,
        agency_name: str,
        project_id: str,
        *,
        trusted: frozenset[str] = frozenset(),
    ) -> Agency:
        """An agency of the account ``domain_name`` (a new project ``project_id``) that the
        ``trusted`` access keys or users (default: anyone signed in) may assume."""
        self.projects.add_project(project_id)
        domain_id = user_id_for(f"domain:{domain_name}")
        agency = Agency(domain_name, domain_id, agency_name, project_id, trusted)
        self.agencies.add(agency)
        return agency

    def revoke_agency(self, domain_name: str, agency_name: str) -> None:
        """Delete the agency: assuming it answers 403 and its temporary AK/SK stop working."""
        self.agencies.revoke(domain_name, agency_name)

    def metadata_tokens(self) -> list[str]:
        """The metadata session tokens issued and not expired or revoked."""
        return self.metadata.tokens()

    def revoke_metadata_tokens(self) -> None:
        """Invalidate every metadata session token; the key endpoint answers 401 to them."""
        self.metadata.revoke_tokens()

    # --- faults (`Faults`) -----------------------------------------------------------------

    def inject_fault(self, fault: Fault, *, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``fault``, in injection order."""
        self.faults.inject(fault, times=times)

    def set_fault(self, fault: Fault) -> None:
        """Answer every request matching ``fault.operation`` with ``fault`` until cleared.

        Queued faults (`inject_fault`) go first. A later ``set_fault`` for the same operation
        replaces this one; one for a specific operation wins over one for any (``None``).
        """
        self.faults.set(fault)

    def clear_faults(self) -> None:
        """Drop every queued and persistent fault: requests are answered normally again."""
        self.faults.clear()

    def take_fault(self, operation: str) -> Fault | None:
        """The first queued fault matching ``operation`` (removed), else the standing one."""
        return self.faults.take(operation)

    # --- throttling and the request log (`Traffic`) ----------------------------------------

    def admit(self) -> bool:
        """Token-bucket throttle on the injected clock; False when over ``rate_limit``."""
        return self.traffic.admit()

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
        self.traffic.record(
            method=method,
            path=path,
            query=query,
            status=status,
            access_key=access_key,
            operation=operation,
            user=user,
        )
