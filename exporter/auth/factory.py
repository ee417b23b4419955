"""`credentials_for`: the provider a target's ``auth`` describes; `describe_credentials`.

`credentials_for` builds unshared providers (an agency too); `exporter.auth.pool.CredentialsPool`
is the factory that shares one agency credential among the targets assuming it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp

from exporter.auth.agency import AgencyCredentials, AgencyUser
from exporter.auth.aksk import AkSkCredentials
from exporter.auth.base import Credentials, RequestObserver
from exporter.auth.federated import FederatedCredentials
from exporter.auth.iam_token import IamTokenCredentials
from exporter.auth.metadata import MetadataCredentials
from exporter.auth.pod_identity import PodIdentityCredentials
from exporter.auth.workload_identity import WorkloadIdentityCredentials
from exporter.config import (
    AkSkAuth,
    AssumeAgencyAuth,
    BaseAuth,
    FederatedAuth,
    MetadataAuth,
    PasswordAuth,
    PodIdentityAuth,
    ProfileAuth,
    TargetConfig,
    WorkloadIdentityAuth,
)
from exporter.http import ssl_setting

log = logging.getLogger(__name__)


def credentials_for(
    target: TargetConfig,
    session: aiohttp.ClientSession,
    observe: RequestObserver | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Credentials:
    """The credentials a target's ``auth`` section describes.

    ``session`` and ``observe`` serve credentials that call an API themselves (IAM tokens, the
    metadata service); ``clock`` (unix seconds) is what their expiry is judged on. Which source
    was chosen is logged (once per poller start; never a secret).
    """
    log_choice(target)
    auth = target.auth
    if isinstance(auth, AssumeAgencyAuth):
        return AgencyUser(agency_credentials(target, auth, session, clock=clock), observe)
    return base_credentials(target, auth, session, observe, clock=clock)


def log_choice(target: TargetConfig) -> None:
    """Log where a target's credentials come from (never a secret)."""
    log.info(
        "credentials chosen",
        extra={"fields": {"target": target.name, "credentials": describe_credentials(target)}},
    )


def agency_credentials(
    target: TargetConfig,
    auth: AssumeAgencyAuth,
    session: aiohttp.ClientSession,
    *,
    clock: Callable[[], float] = time.time,
) -> AgencyCredentials:
    """A new agency credential; its base identity's own calls are observed by its users."""
    relay = _Relay()
    base = base_credentials(target, auth.base, session, relay, clock=clock)
    shared = AgencyCredentials(
        session,
        base=base,
        iam_endpoint=auth.iam_endpoint,
        agency_name=auth.agency_name,
        domain_name=auth.domain_name,
        domain_id=auth.domain_id,
        duration_seconds=auth.duration_seconds,
        timeout=target.timeout,
        clock=clock,
        ssl_option=ssl_setting(target.tls),
    )
    relay.shared = shared
    return shared


class _Relay:
    """Observes a base identity's calls with the observer of the agency's current user."""

    shared: AgencyCredentials | None = None

    def __call__(self, operation: str, code: str, seconds: float) -> None:
        observe = None if self.shared is None else self.shared.observe
        if observe is not None:
            observe(operation, code, seconds)


def base_credentials(
    target: TargetConfig,
    auth: BaseAuth,
    session: aiohttp.ClientSession,
    observe: RequestObserver | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Credentials:
    """The provider of one credential source (no agency)."""
    if isinstance(auth, AkSkAuth | ProfileAuth):
        return AkSkCredentials(
            auth.access_key,
            auth.secret_key,
            auth.security_token,
            clock=lambda: datetime.fromtimestamp(clock(), tz=UTC),
        )
    if isinstance(auth, PasswordAuth):
        if target.project_id is None:  # the config refuses this: the token is project-scoped
            raise ValueError(f"target {target.name}: password auth needs project_id")
        return IamTokenCredentials(
            session,
            iam_endpoint=auth.iam_endpoint,
            username=auth.username,
            password=auth.password,
            domain_name=auth.domain_name,
            project_id=target.project_id,
            timeout=target.timeout,
            observe=observe,
            clock=clock,
            ssl_option=ssl_setting(target.tls),
        )
    if isinstance(auth, MetadataAuth):
        return MetadataCredentials(
            session, endpoint=auth.endpoint, timeout=target.timeout, observe=observe, clock=clock
        )
    if isinstance(auth, PodIdentityAuth):
        return PodIdentityCredentials(
            session,
            uri=auth.uri,
            token_file=auth.token_file,
            timeout=target.timeout,
            observe=observe,
            clock=clock,
            ssl_option=ssl_setting(target.tls),
        )
    if isinstance(auth, WorkloadIdentityAuth):
        return WorkloadIdentityCredentials(
            session,
            sts_endpoint=auth.sts_endpoint,
            provider_urn=auth.provider_urn,
            agency_urn=auth.agency_urn,
            id_token_file=auth.id_token_file,
            session_name=auth.session_name,
            duration_seconds=auth.duration_seconds,
            timeout=target.timeout,
            observe=observe,
            clock=clock,
            ssl_option=ssl_setting(target.tls),
        )
    if isinstance(auth, FederatedAuth):
        return FederatedCredentials(
            session,
            iam_endpoint=auth.iam_endpoint,
            idp_id=auth.idp_id,
            id_token_file=auth.id_token_file,
            duration_seconds=auth.duration_seconds,
            timeout=target.timeout,
            observe=observe,
            clock=clock,
            ssl_option=ssl_setting(target.tls),
        )
    raise TypeError(f"target {target.name}: unknown auth {type(auth).__name__}")


def describe_credentials(target: TargetConfig) -> str:
    """Where a target's credentials come from, for ``/`` and ``--config.check``; no secret."""
    auth = target.auth
    if isinstance(auth, AssumeAgencyAuth):
        base = describe_credentials(replace(target, auth=auth.base))
        return f"{base} assuming agency {auth.agency_name} in {auth.domain}"
    if isinstance(auth, AkSkAuth):
        kind = "temporary AK/SK" if auth.security_token is not None else "AK/SK"
        return f"{kind} (access key {auth.access_key})"
    if isinstance(auth, PasswordAuth):
        return f"IAM password token (user {auth.username}, domain {auth.domain_name})"
    if isinstance(auth, ProfileAuth):
        kind = "temporary AK/SK" if auth.security_token is not None else "AK/SK"
        return f"profile file {auth.path} ({kind}, access key {auth.access_key})"
    if isinstance(auth, MetadataAuth):
        return f"ECS instance metadata ({auth.endpoint})"
    if isinstance(auth, PodIdentityAuth):
        return f"CCE pod identity ({auth.uri}, token file {auth.token_file})"
    if isinstance(auth, WorkloadIdentityAuth):
        return f"workload identity (agency {auth.agency_urn} via {auth.sts_endpoint})"
    if isinstance(auth, FederatedAuth):
        return (
            f"federated identity (identity provider {auth.idp_id}, "
            f"id token file {auth.id_token_file}, via {auth.iam_endpoint})"
        )
    return type(auth).__name__
