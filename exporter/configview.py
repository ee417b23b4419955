"""``/-/config``: the effective configuration as YAML, every secret redacted.

As blackbox_exporter's ``/config``: what the exporter runs with after defaults, overrides and
``${VAR}``/``*_file`` resolution, each target with its resolved settings (endpoints included),
sources, auth type and non-secret fields. Every `Secret` (secret key, security token, password)
and every bcrypt hash of the web config is shown as `REDACTED`; PEM contents are never shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

import yaml

from exporter.config import (
    AkSkAuth,
    AssumeAgencyAuth,
    Auth,
    Config,
    FederatedAuth,
    MetadataAuth,
    PasswordAuth,
    PodIdentityAuth,
    ProfileAuth,
    Sources,
    TargetConfig,
    WorkloadIdentityAuth,
)
from exporter.config.types import format_duration
from exporter.config.web import WebConfig
from exporter.dli.cloudeye import cloud_eye_endpoint

__all__ = ["REDACTED", "config_yaml", "describe_sources"]

#: What a secret is shown as.
REDACTED: Final = "<secret>"
#: ``auth.type`` per model class (the config file's tags).
_AUTH_TYPES: Final[Mapping[type, str]] = {
    AkSkAuth: "aksk",
    PasswordAuth: "password",
    MetadataAuth: "metadata",
    ProfileAuth: "profile",
    PodIdentityAuth: "pod_identity",
    WorkloadIdentityAuth: "workload_identity",
    FederatedAuth: "federated",
}
_HEADER: Final = "# dli-exporter effective configuration; secrets are shown as <secret>\n"


def config_yaml(config: Config, web: WebConfig | None = None) -> str:
    """The whole effective configuration (and the web config's, when there is one) as YAML."""
    document: dict[str, object] = {
        "source": config.source,
        "metrics": {
            "job_info_labels": config.metrics.job_info_labels,
            "state_sets": config.metrics.state_sets,
        },
        "targets": [_target(target) for target in config.targets],
    }
    if web is not None:
        document["web_config"] = _web(web)
    return _HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def _target(target: TargetConfig) -> dict[str, object]:
    sources = target.sources
    return {
        "name": target.name,
        "region": target.region,
        "project_id": target.project_id,
        "endpoint": target.endpoint,
        "ces_endpoint": cloud_eye_endpoint(target),
        "iam_endpoint": target.iam_endpoint or f"https://iam.{target.region}.myhuaweicloud.com",
        "poll_interval": format_duration(target.poll_interval),
        "timeout": format_duration(target.timeout),
        "concurrency": target.concurrency,
        "rate_limit": target.rate_limit,
        "auth": _auth(target.auth),
        "filters": {
            "job_types": list(target.filters.job_types),
            "queue_names": list(target.filters.queue_names),
            "tags": list(target.filters.tags),
        },
        "tls": {
            "ca_file": target.tls.ca_file,
            "insecure_skip_verify": target.tls.insecure_skip_verify,
        },
        "sources": {
            "cloud_eye": {
                "enabled": sources.cloud_eye,
                "max_age": format_duration(sources.cloud_eye_max_age),
            },
            "queues": sources.queues,
            "elastic_resource_pools": sources.elastic_resource_pools,
        },
    }


def _auth(auth: Auth) -> dict[str, object]:
    shown: dict[str, object]
    if isinstance(auth, AssumeAgencyAuth):
        shown = _auth(auth.base)
        shown["assume_agency"] = {
            "agency_name": auth.agency_name,
            "domain_name": auth.domain_name,
            "domain_id": auth.domain_id,
            "iam_endpoint": auth.iam_endpoint,
            "duration_seconds": auth.duration_seconds,
        }
        return shown
    shown = {"type": _AUTH_TYPES.get(type(auth), type(auth).__name__)}
    for field in dataclasses.fields(auth):
        value = getattr(auth, field.name)
        if value is None:
            continue
        shown[field.name] = _value(value) if field.repr else REDACTED
    return shown


def _value(value: object) -> object:
    """A plain value as is; a `Secret` (or anything else that is not plain text) redacted."""
    if isinstance(value, str | int | float | bool):
        return value
    return REDACTED


def _web(web: WebConfig) -> dict[str, object]:
    shown: dict[str, object] = {"source": web.source}
    if web.tls is not None:
        shown["tls_server_config"] = {
            "cert_file": str(web.tls.cert_file),
            "key_file": str(web.tls.key_file),
            "min_version": web.tls.min_version.name,
            "max_version": web.tls.max_version.name if web.tls.max_version else None,
            "client_auth": web.tls.client_auth.name,
            "client_ca_file": str(web.tls.client_ca_file) if web.tls.client_ca_file else None,
        }
    shown["basic_auth_users"] = {user: REDACTED for user in sorted(web.users)}
    shown["unauthenticated_paths"] = sorted(web.unauthenticated_paths)
    return shown


def describe_sources(sources: Sources) -> str:
    """The sources a target polls besides its job list, for ``--config.check``."""
    names = [
        f"cloud_eye (max_age {format_duration(sources.cloud_eye_max_age)})"
        if sources.cloud_eye
        else "",
        "queues" if sources.queues else "",
        "elastic_resource_pools" if sources.elastic_resource_pools else "",
    ]
    return ", ".join(name for name in names if name) or "job list only"
