"""The main config file's shape: one pydantic section model per mapping, one field per key.

Each section validates its keys (types and bounds from :mod:`exporter.config.types`) and builds
its runtime object (:mod:`exporter.config.model`). The settings a target inherits from the top
level are the fields of :class:`Settings`: adding one there (and its attribute to
:class:`~exporter.config.model.TargetConfig`) is all an inheritable setting needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field

from exporter.config.auth import (
    FEDERATED_CHAIN_VARIABLES,
    OIDC_CHAIN_VARIABLES,
    AkSkSection,
    AuthSection,
    MetadataSection,
    PasswordSection,
    env_auth,
)
from exporter.config.model import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    ENV_AK,
    ENV_IAM_ENDPOINT,
    ENV_POD_TOKEN_FILE,
    ENV_POD_URI,
    ENV_SECURITY_TOKEN,
    ENV_SK,
    Config,
    Filters,
    MetricOptions,
    TargetConfig,
    TlsClientConfig,
)
from exporter.config.problems import type_name
from exporter.config.section import Issue, Section
from exporter.config.sources import SourcesSection
from exporter.config.types import (
    CaFile,
    Concurrency,
    Context,
    Flag,
    Item,
    JobType,
    PollInterval,
    RateLimit,
    Region,
    StateSets,
    Text,
    Timeout,
    Url,
    fail,
    list_of,
    profile_path,
)

__all__ = ["ConfigFile", "Settings", "TargetSection", "effective_timeout"]


class Settings(Section):
    """What a target inherits from the top level unless it sets its own; ``None``: not set."""

    poll_interval: PollInterval | None = None
    timeout: Timeout | None = None
    concurrency: Concurrency | None = None
    rate_limit: RateLimit | None = None

    def over(self, base: Settings) -> dict[str, Any]:
        """The settings set here, else in ``base``; ``None`` where neither sets one."""
        return {name: _first(getattr(self, name), getattr(base, name)) for name in SETTINGS}


#: The names of the inheritable settings.
SETTINGS: Final = tuple(Settings.model_fields)
assert set(SETTINGS) <= {f.name for f in fields(TargetConfig)}, "a setting TargetConfig lacks"


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value


def effective_timeout(settings: Mapping[str, Any]) -> float:
    """The timeout a target runs with: the one set for it, else ``min(10s, poll_interval)``.

    This is Prometheus' rule for ``scrape_timeout``, so a short interval needs no timeout set.
    """
    if settings["timeout"] is not None:
        return float(settings["timeout"])
    return min(DEFAULT_TIMEOUT, float(_first(settings["poll_interval"], DEFAULT_POLL_INTERVAL)))


StringList = Annotated[tuple[Item, ...], list_of("strings")]


class FiltersSection(Section):
    """``filters``: passed to the list API."""

    job_types: Annotated[tuple[JobType, ...], list_of("strings")] = ()
    queue_names: StringList = ()
    tags: StringList = ()

    def build(self) -> Filters:
        return Filters(self.job_types, self.queue_names, self.tags)


_NOT_SUPPORTED: Final = "unknown key (not supported: only ca_file and insecure_skip_verify are)"
# Keys of Prometheus' tls_config that a target's tls section does not support.
_TLS_UNSUPPORTED: Final = (
    "ca",
    "cert",
    "cert_file",
    "key",
    "key_file",
    "server_name",
    "min_version",
    "max_version",
)


class TlsSection(Section):
    """A target's ``tls``: a private CA bundle, or no certificate checks at all."""

    key_hints = dict.fromkeys(_TLS_UNSUPPORTED, _NOT_SUPPORTED)

    insecure_skip_verify: Flag | None = None
    ca_file: CaFile | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        ca_file = data.get("ca_file")
        if (
            isinstance(ca_file, str)
            and ca_file.strip()
            and data.get("insecure_skip_verify") is True
        ):
            del data["ca_file"]  # not read: it would not be used
            return data, [((), "set only one of ca_file and insecure_skip_verify: true")]
        return data, []

    def build(self) -> TlsClientConfig:
        if self.ca_file is None:
            return TlsClientConfig(insecure_skip_verify=self.insecure_skip_verify is True)
        return TlsClientConfig(ca_file=self.ca_file[0], ca_pem=self.ca_file[1])


class _TargetHead(Section):
    """The keys of a target before its settings (pydantic orders base-class fields first)."""

    name: Text
    region: Region
    project_id: Text | None = None
    endpoint: Url | None = None
    ces_endpoint: Url | None = None
    iam_endpoint: Url | None = None
    auth: AuthSection | None = None


def _chain(context: Context) -> tuple[dict[str, Any] | None, list[Issue]]:
    """The ``auth`` the SDK's default chain picks (see `TargetSection.precheck`), or a problem."""
    environ = context.environ
    if all(environ.get(name) for name in OIDC_CHAIN_VARIABLES):
        return {"type": "workload_identity"}, []
    missing = [n for n in (ENV_AK, ENV_SK) if not environ.get(n, "")]
    if not missing:
        token = environ.get(ENV_SECURITY_TOKEN, "")
        pair = {"type": "aksk", "access_key": environ[ENV_AK], "secret_key": environ[ENV_SK]}
        return pair | ({"security_token": token} if token else {}), []
    if all(environ.get(name) for name in FEDERATED_CHAIN_VARIABLES):
        return {"type": "federated"}, []  # the SDK's env provider: AK/SK, else idp id + token
    profile = profile_path(environ)
    if os.path.lexists(profile):
        return {"type": "profile", "path": profile}, []
    if environ.get(ENV_POD_URI) and environ.get(ENV_POD_TOKEN_FILE):
        return {"type": "pod_identity"}, []
    if len(missing) == 2:
        return {"type": "metadata"}, []
    names, verb = " and ".join(missing), "is" if len(missing) == 1 else "are"
    message = (
        f"auth is not set and environment {names} {verb} not set or empty, "
        f"and there is no profile file {profile!r}"
    )
    return None, [(("auth",), message)]


class TargetSection(Settings, _TargetHead):
    """One entry of ``targets``."""

    filters: FiltersSection | None = None
    tls: TlsSection | None = None
    sources: SourcesSection | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        """Without ``auth``, the SDK's chain: workload identity (OIDC), environment AK/SK (else
        its federated identity provider id and id token file), the profile file, pod identity,
        the ECS metadata service; the first one configured wins.

        Whether the metadata service answers is only known by asking it, which a config load
        must not do, so it comes last (the SDK asks it before pod identity, whose variables are
        set only in a pod anyway): it is chosen when nothing else is set at all. Half of the
        AK/SK pair in the environment is a mistake to report, not a reason to move on.

        Password auth needs ``project_id``: its IAM token is scoped to the project, so the
        project cannot be looked up with it first.
        """
        auth = data.get("auth")
        if (
            data.get("project_id") is None
            and isinstance(auth, dict)
            and auth.get("type") == "password"
        ):
            return data, [(("project_id",), "is required with auth type password")]
        if isinstance(auth, dict) and set(auth) == {"assume_agency"}:
            # An agency on top of whatever the chain finds: `auth: {assume_agency: ...}`.
            chosen, issues = _chain(context)
            if chosen is not None:
                data["auth"] = {**chosen, "assume_agency": auth["assume_agency"]}
            return data, issues
        if auth is not None:
            return data, []
        chosen, issues = _chain(context)
        if chosen is not None and chosen.get("type") != "aksk":
            data["auth"] = chosen  # environment AK/SK stay out of the data (build reads them)
        return data, issues

    def build(
        self, top: Settings, context: Context, top_sources: SourcesSection | None = None
    ) -> TargetConfig:
        """The runtime target: this section over the top level's settings over the defaults."""
        settings = self.over(top)
        chosen = {name: value for name, value in settings.items() if value is not None}
        chosen["timeout"] = effective_timeout(settings)
        auth = env_auth(context.environ) if self.auth is None else self.auth.build(self.region)
        return TargetConfig(
            name=self.name,
            region=self.region,
            project_id=self.project_id,
            endpoint=self.endpoint or f"https://dli.{self.region}.myhuaweicloud.com",
            ces_endpoint=self.ces_endpoint,
            iam_endpoint=None if self.project_id is not None else self._iam_endpoint(context),
            auth=auth,
            filters=Filters() if self.filters is None else self.filters.build(),
            tls=TlsClientConfig() if self.tls is None else self.tls.build(),
            sources=(self.sources or SourcesSection()).over(top_sources),
            **chosen,
        )

    def _iam_endpoint(self, context: Context) -> str:
        """Where the project id is looked up: as set, else the SDK's variable, else regional."""
        from_env = context.environ.get(ENV_IAM_ENDPOINT, "").strip()
        return self.iam_endpoint or from_env or f"https://iam.{self.region}.myhuaweicloud.com"


def _elsewhere(section: type[Section], hint: str) -> dict[str, str]:
    return dict.fromkeys(section.model_fields, f"unknown key ({hint})")


TargetSection.key_hints = {
    **_elsewhere(FiltersSection, "it belongs under filters"),
    **_elsewhere(AkSkSection, "it belongs under auth"),
    **{
        k: v
        for k, v in _elsewhere(PasswordSection, "it belongs under auth").items()
        if k != "iam_endpoint"
    },
    **{
        k: v
        for k, v in _elsewhere(MetadataSection, "it belongs under auth").items()
        if k != "endpoint"
    },
    **_elsewhere(TlsSection, "it belongs under tls"),
    "tls_config": 'unknown key (the section is called "tls" here)',
}


class MetricsSection(Section):
    """``metrics``: cardinality controls."""

    job_info_labels: Flag = True
    state_sets: StateSets = "all"

    def build(self) -> MetricOptions:
        return MetricOptions(job_info_labels=self.job_info_labels, state_sets=self.state_sets)


def _targets(value: Any) -> Any:
    if value is None:
        fail("is required (a list of targets)")
    if not isinstance(value, list):
        fail(f"must be a list, not {type_name(value)}")
    if not value:
        fail("must list at least one target")
    return value


class ConfigFile(Settings):
    """The whole file: settings for every target, ``metrics`` and ``targets``."""

    key_hints = _elsewhere(TargetSection, "it belongs under an entry of targets")

    metrics: MetricsSection | None = None
    sources: SourcesSection | None = None
    targets: Annotated[tuple[TargetSection, ...], BeforeValidator(_targets)] = Field(
        default=None, validate_default=True
    )

    def build(self, source: str, context: Context) -> Config:
        """The runtime config; ``source`` names the file."""
        targets = tuple(target.build(self, context, self.sources) for target in self.targets)
        metrics = MetricOptions() if self.metrics is None else self.metrics.build()
        return Config(targets=targets, source=source, metrics=metrics)
