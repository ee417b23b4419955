"""The ``auth`` section of a target: one section model per credential source (``type``).

The sources and their keys: ``aksk`` (the default), ``password``, ``metadata``, ``profile``,
``pod_identity``, ``workload_identity`` and ``federated``; `AuthSection` is their discriminated
union, `env_auth` the AK/SK the environment gives a target without ``auth``. Each may add
``assume_agency`` (`AssumeAgencySection`): that identity then polls with the temporary AK/SK of
an agency in another account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, ConfigDict, Discriminator, Tag

from exporter.config.model import (
    DEFAULT_AGENCY_DURATION,
    DEFAULT_FEDERATED_DURATION,
    DEFAULT_OIDC_DURATION,
    DEFAULT_OIDC_SESSION_NAME,
    ENV_AK,
    ENV_IAM_ENDPOINT,
    ENV_ID_TOKEN_FILE,
    ENV_IDP_ID,
    ENV_OIDC_AGENCY_URN,
    ENV_OIDC_DURATION,
    ENV_OIDC_PROVIDER_URN,
    ENV_OIDC_SESSION_NAME,
    ENV_OIDC_TOKEN_FILE,
    ENV_POD_TOKEN_FILE,
    ENV_POD_URI,
    ENV_SECURITY_TOKEN,
    ENV_SK,
    ENV_STS_ENDPOINT,
    MAX_AGENCY_DURATION,
    MIN_AGENCY_DURATION,
    AkSkAuth,
    AssumeAgencyAuth,
    Auth,
    BaseAuth,
    FederatedAuth,
    MetadataAuth,
    PasswordAuth,
    PodIdentityAuth,
    ProfileAuth,
    WorkloadIdentityAuth,
)
from exporter.config.problems import show, type_name
from exporter.config.section import Issue, Section
from exporter.config.types import (
    Context,
    ProfileFile,
    SecretFile,
    SecretText,
    Text,
    Url,
    fail,
    profile_path,
)
from exporter.secret import Secret

__all__ = [
    "AUTH_SECTIONS",
    "AUTH_TYPES",
    "FEDERATED_CHAIN_VARIABLES",
    "OIDC_CHAIN_VARIABLES",
    "AkSkSection",
    "AssumeAgencySection",
    "AuthSection",
    "FederatedSection",
    "MetadataSection",
    "PasswordSection",
    "PodIdentitySection",
    "ProfileSection",
    "WorkloadIdentitySection",
    "env_auth",
]


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


def _agency_duration(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    low, high = MIN_AGENCY_DURATION, MAX_AGENCY_DURATION
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        fail(f"must be a whole number of seconds from {low} to {high}")
    return value


class AssumeAgencySection(Section):
    """``auth.assume_agency``: the agency ``agency_name`` of the account ``domain_name`` or
    ``domain_id`` (exactly one), assumed for temporary AK/SK valid ``duration_seconds``."""

    domain_name: Text | None = None
    domain_id: Text | None = None
    agency_name: Text
    duration_seconds: Annotated[int, BeforeValidator(_agency_duration)] = DEFAULT_AGENCY_DURATION
    iam_endpoint: Url | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        names = [key for key in ("domain_name", "domain_id") if data.get(key) is not None]
        if len(names) == 1:
            return data, []
        return data, [(("domain_name",), "set exactly one of domain_name and domain_id")]

    def wrap(self, base: BaseAuth, region: str) -> AssumeAgencyAuth:
        endpoint = self.iam_endpoint or f"https://iam.{region}.myhuaweicloud.com"
        return AssumeAgencyAuth(
            base,
            self.agency_name,
            endpoint,
            domain_name=self.domain_name,
            domain_id=self.domain_id,
            duration_seconds=self.duration_seconds,
        )


class _AuthSection(Section):
    """A credential source, optionally assuming an agency with it."""

    assume_agency: AssumeAgencySection | None = None

    def _built(self, base: BaseAuth, region: str) -> Auth:
        agency = self.assume_agency
        return base if agency is None else agency.wrap(base, region)


class AkSkSection(_AuthSection):
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
        base = AkSkAuth(self.access_key, _secret(self.secret_key, self.secret_key_file), token)
        return self._built(base, region)


class PasswordSection(_AuthSection):
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
        return self._built(
            PasswordAuth(self.username, password, self.domain_name, endpoint), region
        )


class MetadataSection(_AuthSection):
    """``auth`` with ``type: metadata``: the ECS agency's temporary AK/SK, renewed."""

    tag = "metadata"

    type: Any = None
    endpoint: Url | None = None

    def build(self, region: str) -> Auth:
        base = MetadataAuth() if self.endpoint is None else MetadataAuth(self.endpoint)
        return self._built(base, region)


class ProfileSection(_AuthSection):
    """``auth`` with ``type: profile``: the SDK's profile file, read when the config is loaded.

    ``path`` defaults to ``HUAWEICLOUD_SDK_CREDENTIALS_FILE``, else
    ``~/.huaweicloud/credentials``; its ``[basic]`` section gives ``ak``, ``sk`` and optionally
    ``security_token``.
    """

    tag = "profile"

    type: Any = None
    path: ProfileFile

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        if data.get("path") is None:
            data["path"] = profile_path(context.environ)
        return data, []

    def build(self, region: str) -> Auth:
        profile: ProfileAuth = self.path
        return self._built(profile, region)


class PodIdentitySection(_AuthSection):
    """``auth`` with ``type: pod_identity``: CCE pod identity's temporary AK/SK.

    ``uri`` and ``token_file`` default to the variables CCE injects,
    ``HC_CONTAINER_CREDENTIALS_FULL_URI`` and ``HC_CONTAINER_AUTHORIZATION_TOKEN_FILE``.
    """

    tag = "pod_identity"

    type: Any = None
    uri: Url | None = None
    token_file: Text | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        issues: list[Issue] = []
        for key, variable in (("uri", ENV_POD_URI), ("token_file", ENV_POD_TOKEN_FILE)):
            if data.get(key) is None:
                value = context.environ.get(variable, "")
                if value:
                    data[key] = value
                else:
                    issues.append(((key,), f"is required (or environment {variable})"))
        return data, issues

    def build(self, region: str) -> Auth:
        assert self.uri is not None and self.token_file is not None  # the precheck made sure
        return self._built(PodIdentityAuth(self.uri, self.token_file), region)


def _oidc_duration(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 900 <= value <= 43_200:
        fail("must be a whole number of seconds from 900 to 43200")
    return value


class WorkloadIdentitySection(_AuthSection):
    """``auth`` with ``type: workload_identity``: an OIDC id token exchanged at STS.

    Each key defaults to the SDK's variable: ``HUAWEICLOUD_OIDC_PROVIDER_URN``,
    ``HUAWEICLOUD_OIDC_AGENCY_URN``, ``HUAWEICLOUD_OIDC_TOKEN_FILE``,
    ``HUAWEICLOUD_OIDC_SESSION_NAME``, ``HUAWEICLOUD_OIDC_DURATION_SECONDS`` and
    ``HUAWEICLOUD_SDK_STS_ENDPOINT`` (else ``https://sts.<region>.myhuaweicloud.com``).
    """

    tag = "workload_identity"

    type: Any = None
    provider_urn: Text | None = None
    agency_urn: Text | None = None
    id_token_file: Text | None = None
    session_name: Text | None = None
    duration_seconds: Annotated[int, BeforeValidator(_oidc_duration)] | None = None
    sts_endpoint: Url | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        issues: list[Issue] = []
        for key, variable, required in _OIDC_KEYS:
            if data.get(key) is None:
                value = context.environ.get(variable, "")
                if value:
                    data[key] = value
                elif required:
                    issues.append(((key,), f"is required (or environment {variable})"))
        return data, issues

    def build(self, region: str) -> Auth:
        assert self.provider_urn and self.agency_urn and self.id_token_file  # the precheck
        base = WorkloadIdentityAuth(
            self.provider_urn,
            self.agency_urn,
            self.id_token_file,
            self.sts_endpoint or f"https://sts.{region}.myhuaweicloud.com",
            self.session_name or DEFAULT_OIDC_SESSION_NAME,
            self.duration_seconds or DEFAULT_OIDC_DURATION,
        )
        return self._built(base, region)


_OIDC_KEYS: Final = (
    ("provider_urn", ENV_OIDC_PROVIDER_URN, True),
    ("agency_urn", ENV_OIDC_AGENCY_URN, True),
    ("id_token_file", ENV_OIDC_TOKEN_FILE, True),
    ("session_name", ENV_OIDC_SESSION_NAME, False),
    ("duration_seconds", ENV_OIDC_DURATION, False),
    ("sts_endpoint", ENV_STS_ENDPOINT, False),
)
#: The variables that put workload identity first in the default chain.
OIDC_CHAIN_VARIABLES: Final = (ENV_OIDC_PROVIDER_URN, ENV_OIDC_AGENCY_URN, ENV_OIDC_TOKEN_FILE)


class FederatedSection(_AuthSection):
    """``auth`` with ``type: federated``: an identity provider's id token exchanged at IAM.

    Each key defaults to the SDK's variable: ``HUAWEICLOUD_SDK_IDP_ID``,
    ``HUAWEICLOUD_SDK_ID_TOKEN_FILE`` and ``HUAWEICLOUD_SDK_IAM_ENDPOINT`` (else
    ``https://iam.<region>.myhuaweicloud.com``).
    """

    tag = "federated"

    type: Any = None
    idp_id: Text | None = None
    id_token_file: Text | None = None
    iam_endpoint: Url | None = None

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        issues: list[Issue] = []
        for key, variable, required in _FEDERATED_KEYS:
            if data.get(key) is None:
                value = context.environ.get(variable, "").strip()
                if value:
                    data[key] = value
                elif required:
                    issues.append(((key,), f"is required (or environment {variable})"))
        return data, issues

    def build(self, region: str) -> Auth:
        assert self.idp_id and self.id_token_file  # the precheck
        base = FederatedAuth(
            self.idp_id,
            self.id_token_file,
            self.iam_endpoint or f"https://iam.{region}.myhuaweicloud.com",
            DEFAULT_FEDERATED_DURATION,
        )
        return self._built(base, region)


_FEDERATED_KEYS: Final = (
    ("idp_id", ENV_IDP_ID, True),
    ("id_token_file", ENV_ID_TOKEN_FILE, True),
    ("iam_endpoint", ENV_IAM_ENDPOINT, False),
)
#: The variables that choose federated identity in the default chain (without AK/SK).
FEDERATED_CHAIN_VARIABLES: Final = (ENV_IDP_ID, ENV_ID_TOKEN_FILE)


#: The sections of each ``auth`` type, by tag.
AUTH_SECTIONS: Final[tuple[type[Section], ...]] = (
    AkSkSection,
    PasswordSection,
    MetadataSection,
    ProfileSection,
    PodIdentitySection,
    WorkloadIdentitySection,
    FederatedSection,
)
AUTH_TYPES: Final = tuple(section.tag for section in AUTH_SECTIONS)


def _auth_hints(section: type[Section]) -> dict[str, str]:
    """ "Unknown key" hints naming the ``auth`` type a key of another type belongs to."""
    hints: dict[str, str] = {}
    for other in AUTH_SECTIONS:
        for key in set(other.model_fields) - set(section.model_fields):
            hint = "set type: password to use it" if other is PasswordSection else ""
            hint = hint or f"only for type: {other.tag}"
            hints.setdefault(key, f"unknown key ({hint})")
    return hints


for _section in AUTH_SECTIONS:
    _section.key_hints = _auth_hints(_section)


def _auth_type(value: Any) -> str:
    if not isinstance(value, str):
        fail(f"must be a string, not {type_name(value)}")
    others = " or ".join(f'"{tag}"' for tag in AUTH_TYPES)
    fail(f"must be {others}, not {show(value)}")


class BadAuthType(Section):
    """An ``auth`` whose ``type`` is neither: only that is reported."""

    model_config = ConfigDict(extra="ignore")
    tag = "invalid"

    type: Annotated[str, BeforeValidator(_auth_type)]

    def build(self, region: str) -> Auth:
        raise AssertionError("never valid")  # pragma: no cover


def _auth_kind(value: Any) -> str:
    kind = value.get("type", "aksk") if isinstance(value, dict) else "aksk"
    return kind if kind in AUTH_TYPES else "invalid"


AuthSection = Annotated[
    Annotated[AkSkSection, Tag("aksk")]
    | Annotated[PasswordSection, Tag("password")]
    | Annotated[MetadataSection, Tag("metadata")]
    | Annotated[ProfileSection, Tag("profile")]
    | Annotated[PodIdentitySection, Tag("pod_identity")]
    | Annotated[WorkloadIdentitySection, Tag("workload_identity")]
    | Annotated[FederatedSection, Tag("federated")]
    | Annotated[BadAuthType, Tag("invalid")],
    Discriminator(_auth_kind),
]


def env_auth(environ: Mapping[str, str]) -> AkSkAuth:
    token = environ.get(ENV_SECURITY_TOKEN, "")
    return AkSkAuth(environ[ENV_AK], Secret(environ[ENV_SK]), Secret(token) if token else None)
