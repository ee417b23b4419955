"""The main config file's shape: one pydantic section model per mapping, one field per key.

Each section validates its keys (types and bounds from :mod:`exporter.config.types`) and builds
its runtime object (:mod:`exporter.config.model`). The settings a target inherits from the top
level are the fields of :class:`Settings`: adding one there (and its attribute to
:class:`~exporter.config.model.TargetConfig`) is all an inheritable setting needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, ConfigDict, Discriminator, Field, Tag

from exporter.config.model import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    ENV_AK,
    ENV_SECURITY_TOKEN,
    ENV_SK,
    AkSkAuth,
    Auth,
    Config,
    Filters,
    MetricOptions,
    PasswordAuth,
    TargetConfig,
    TlsClientConfig,
)
from exporter.config.problems import show, type_name
from exporter.config.section import Issue, Section
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
    SecretFile,
    SecretText,
    StateSets,
    Text,
    Timeout,
    Url,
    fail,
    list_of,
)
from exporter.secret import Secret

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


def _secrets(
    data: dict[Any, Any], names: tuple[str, ...], required: tuple[str, ...]
) -> tuple[dict[Any, Any], list[Issue]]:
    """Check that each secret of ``names`` is set at most once: inline or as ``<name>_file``."""
    issues: list[Issue] = []
    for name in names:
        file_name = f"{name}_file"
        has_value, has_file = data.get(name) is not None, data.get(file_name) is not None
        if has_value and has_file:
            issues.append(((name,), f"set only one of {name} and {file_name}"))
            del data[name], data[file_name]  # neither is checked, the file not read
        elif not has_value and not has_file and name in required:
            absent = name not in data and file_name not in data
            issues.append(((name,), f"is required (or {file_name})" if absent else "is required"))
    return data, issues


def _secret(value: Secret | None, from_file: Secret | None) -> Secret:
    secret = value or from_file
    assert secret is not None  # the precheck made sure
    return secret


class AkSkSection(Section):
    """``auth`` with ``type: aksk`` (the default): access key, secret key, optional token."""

    tag = "aksk"

    type: Any = None
    access_key: Text
    secret_key: SecretText | None = None
    secret_key_file: SecretFile | None = None
    security_token: SecretText | None = None
    security_token_file: SecretFile | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        return _secrets(data, ("secret_key", "security_token"), ("secret_key",))

    def build(self, region: str) -> Auth:
        token = self.security_token or self.security_token_file
        return AkSkAuth(self.access_key, _secret(self.secret_key, self.secret_key_file), token)


class PasswordSection(Section):
    """``auth`` with ``type: password``: an IAM user, exchanged for a token."""

    tag = "password"

    type: Any = None
    username: Text
    password: SecretText | None = None
    password_file: SecretFile | None = None
    domain_name: Text
    iam_endpoint: Url | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        return _secrets(data, ("password",), ("password",))

    def build(self, region: str) -> Auth:
        endpoint = self.iam_endpoint or f"https://iam.{region}.myhuaweicloud.com"
        password = _secret(self.password, self.password_file)
        return PasswordAuth(self.username, password, self.domain_name, endpoint)


AkSkSection.key_hints = dict.fromkeys(
    set(PasswordSection.model_fields) - set(AkSkSection.model_fields),
    "unknown key (set type: password to use it)",
)
PasswordSection.key_hints = dict.fromkeys(
    set(AkSkSection.model_fields) - set(PasswordSection.model_fields),
    "unknown key (only for type: aksk)",
)


def _auth_type(value: Any) -> str:
    if not isinstance(value, str):
        fail(f"must be a string, not {type_name(value)}")
    fail(f'must be "aksk" or "password", not {show(value)}')


class BadAuthType(Section):
    """An ``auth`` whose ``type`` is neither: only that is reported."""

    model_config = ConfigDict(extra="ignore")
    tag = "invalid"

    type: Annotated[str, BeforeValidator(_auth_type)]

    def build(self, region: str) -> Auth:
        raise AssertionError("never valid")  # pragma: no cover


def _auth_kind(value: Any) -> str:
    kind = value.get("type", "aksk") if isinstance(value, dict) else "aksk"
    return kind if kind in ("aksk", "password") else "invalid"


AuthSection = Annotated[
    Annotated[AkSkSection, Tag("aksk")]
    | Annotated[PasswordSection, Tag("password")]
    | Annotated[BadAuthType, Tag("invalid")],
    Discriminator(_auth_kind),
]


def _env_auth(environ: Mapping[str, str]) -> AkSkAuth:
    token = environ.get(ENV_SECURITY_TOKEN, "")
    return AkSkAuth(environ[ENV_AK], Secret(environ[ENV_SK]), Secret(token) if token else None)


class _TargetHead(Section):
    """The keys of a target before its settings (pydantic orders base-class fields first)."""

    name: Text
    region: Region
    project_id: Text
    endpoint: Url | None = None
    auth: AuthSection | None = None


class TargetSection(Settings, _TargetHead):
    """One entry of ``targets``."""

    filters: FiltersSection | None = None
    tls: TlsSection | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        if data.get("auth") is not None:
            return data, []
        missing = [n for n in (ENV_AK, ENV_SK) if not context.environ.get(n, "")]
        if not missing:
            return data, []
        names, verb = " and ".join(missing), "is" if len(missing) == 1 else "are"
        return data, [
            (("auth",), f"auth is not set and environment {names} {verb} not set or empty")
        ]

    def build(self, top: Settings, context: Context) -> TargetConfig:
        """The runtime target: this section over the top level's settings over the defaults."""
        settings = self.over(top)
        chosen = {name: value for name, value in settings.items() if value is not None}
        chosen["timeout"] = effective_timeout(settings)
        auth = _env_auth(context.environ) if self.auth is None else self.auth.build(self.region)
        return TargetConfig(
            name=self.name,
            region=self.region,
            project_id=self.project_id,
            endpoint=self.endpoint or f"https://dli.{self.region}.myhuaweicloud.com",
            auth=auth,
            filters=Filters() if self.filters is None else self.filters.build(),
            tls=TlsClientConfig() if self.tls is None else self.tls.build(),
            **chosen,
        )


def _elsewhere(section: type[Section], hint: str) -> dict[str, str]:
    return dict.fromkeys(section.model_fields, f"unknown key ({hint})")


TargetSection.key_hints = {
    **_elsewhere(FiltersSection, "it belongs under filters"),
    **_elsewhere(AkSkSection, "it belongs under auth"),
    **_elsewhere(PasswordSection, "it belongs under auth"),
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
    targets: Annotated[tuple[TargetSection, ...], BeforeValidator(_targets)] = Field(
        default=None, validate_default=True
    )

    def build(self, source: str, context: Context) -> Config:
        """The runtime config; ``source`` names the file."""
        targets = tuple(target.build(self, context) for target in self.targets)
        metrics = MetricOptions() if self.metrics is None else self.metrics.build()
        return Config(targets=targets, source=source, metrics=metrics)
