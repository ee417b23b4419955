"""The runtime configuration: frozen, hashable dataclasses the rest of the exporter reads.

Built by :mod:`exporter.config.parse` from the validated file sections
(:mod:`exporter.config.schema`); the file shape can change without touching these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeAlias

from exporter.dli.api import METADATA_ENDPOINT
from exporter.secret import Secret

DEFAULT_POLL_INTERVAL: Final = 60.0
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_CONCURRENCY: Final = 8
DEFAULT_RATE_LIMIT: Final = 20.0
MIN_POLL_INTERVAL: Final = 1.0
#: Cloud Eye datapoints older than this are not published (``sources.cloud_eye.max_age``).
DEFAULT_CLOUD_EYE_MAX_AGE: Final = 300.0
MIN_CLOUD_EYE_MAX_AGE: Final = 60.0
MAX_CLOUD_EYE_MAX_AGE: Final = 3600.0

# Upper bounds keep every number usable later: asyncio.sleep/call_at overflow on huge delays,
# a semaphore of 10**30 or a rate of 1e308 tokens per second means nothing.
MAX_POLL_INTERVAL: Final = 86400.0  # 1d
MAX_TIMEOUT: Final = 600.0  # 10m
MAX_CONCURRENCY: Final = 1000
MIN_RATE_LIMIT: Final = 0.01  # one request per 100 s
MAX_RATE_LIMIT: Final = 10000.0

# Files are read with these limits (exporter.files.read_bounded).
MAX_CONFIG_FILE_SIZE: Final = 4 * 1024 * 1024
MAX_SECRET_FILE_SIZE: Final = 64 * 1024
MAX_CA_FILE_SIZE: Final = 1024 * 1024

JOB_TYPES: Final = frozenset(
    {"flink_sql_job", "flink_opensource_sql_job", "flink_jar_job", "flink_sql_edge_job"}
)

ENV_AK: Final = "HUAWEICLOUD_SDK_AK"
ENV_SK: Final = "HUAWEICLOUD_SDK_SK"
ENV_SECURITY_TOKEN: Final = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105 - a name
#: The SDK's profile file (``ProfileCredentialProvider``): this variable, else the default.
ENV_CREDENTIALS_FILE: Final = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
DEFAULT_CREDENTIALS_FILE: Final = "~/.huaweicloud/credentials"
#: CCE pod identity (the SDK's ``PodIdentityCredentialProvider``).
ENV_POD_URI: Final = "HC_CONTAINER_CREDENTIALS_FULL_URI"
ENV_POD_TOKEN_FILE: Final = "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"  # noqa: S105 - a name
#: Workload identity (the SDK's ``OidcStsCredentialProvider``).
ENV_OIDC_PROVIDER_URN: Final = "HUAWEICLOUD_OIDC_PROVIDER_URN"
ENV_OIDC_AGENCY_URN: Final = "HUAWEICLOUD_OIDC_AGENCY_URN"
ENV_OIDC_TOKEN_FILE: Final = "HUAWEICLOUD_OIDC_TOKEN_FILE"  # noqa: S105 - a name
ENV_OIDC_SESSION_NAME: Final = "HUAWEICLOUD_OIDC_SESSION_NAME"
ENV_OIDC_DURATION: Final = "HUAWEICLOUD_OIDC_DURATION_SECONDS"
ENV_STS_ENDPOINT: Final = "HUAWEICLOUD_SDK_STS_ENDPOINT"
#: The IAM endpoint of the project-id lookup (the SDK's ``IamHelper.get_iam_endpoint``).
ENV_IAM_ENDPOINT: Final = "HUAWEICLOUD_SDK_IAM_ENDPOINT"
#: The SDK's federated identity (``EnvCredentialProvider``: used when AK/SK are not both set).
ENV_IDP_ID: Final = "HUAWEICLOUD_SDK_IDP_ID"
ENV_ID_TOKEN_FILE: Final = "HUAWEICLOUD_SDK_ID_TOKEN_FILE"  # noqa: S105 - a name
#: The lifetime the SDK's ``FederalAccessor`` asks for its temporary AK/SK (6 h).
DEFAULT_FEDERATED_DURATION: Final = 6 * 3600
DEFAULT_OIDC_SESSION_NAME: Final = "oidc-sts-session"
DEFAULT_OIDC_DURATION: Final = 3600
#: ``assume_role.duration_seconds`` bounds of IAM's CreateTemporaryAccessKeyByAgency.
MIN_AGENCY_DURATION: Final = 900
MAX_AGENCY_DURATION: Final = 86_400
DEFAULT_AGENCY_DURATION: Final = 3600


STATE_SET_MODES: Final = ("all", "current")


@dataclass(frozen=True, slots=True)
class Filters:
    """Server-side filters for the job listing; empty means "all"."""

    job_types: tuple[str, ...] = ()
    queue_names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AkSkAuth:
    """Permanent or temporary (with ``security_token``) access key / secret key."""

    access_key: str
    secret_key: Secret
    security_token: Secret | None = None


@dataclass(frozen=True, slots=True)
class PasswordAuth:
    """IAM user password, exchanged for an IAM token at ``iam_endpoint``."""

    username: str
    password: Secret
    domain_name: str
    iam_endpoint: str


@dataclass(frozen=True, slots=True)
class MetadataAuth:
    """Temporary AK/SK of the ECS/CCE node's agency, from the instance metadata service."""

    endpoint: str = METADATA_ENDPOINT


@dataclass(frozen=True, slots=True)
class ProfileAuth:
    """AK/SK (optionally temporary) read from the SDK's profile file at ``path``, section basic."""

    path: str
    access_key: str
    secret_key: Secret
    security_token: Secret | None = None


@dataclass(frozen=True, slots=True)
class PodIdentityAuth:
    """Temporary AK/SK from CCE pod identity at ``uri``; ``token_file`` (re-read on every fetch,
    as the kubelet rotates it) holds the ``Authorization`` value."""

    uri: str
    token_file: str


@dataclass(frozen=True, slots=True)
class WorkloadIdentityAuth:
    """An OIDC id token (``id_token_file``, re-read on every fetch) exchanged at STS for the
    temporary AK/SK of the agency ``agency_urn`` trusting the identity provider ``provider_urn``."""

    provider_urn: str
    agency_urn: str
    id_token_file: str
    sts_endpoint: str
    session_name: str = DEFAULT_OIDC_SESSION_NAME
    duration_seconds: int = DEFAULT_OIDC_DURATION


@dataclass(frozen=True, slots=True)
class FederatedAuth:
    """A federated id token (``id_token_file``, re-read on every fetch) of the identity provider
    ``idp_id``, exchanged at IAM for an unscoped token and that for temporary AK/SK."""

    idp_id: str
    id_token_file: str
    iam_endpoint: str
    duration_seconds: int = DEFAULT_FEDERATED_DURATION


BaseAuth: TypeAlias = (
    AkSkAuth
    | PasswordAuth
    | MetadataAuth
    | ProfileAuth
    | PodIdentityAuth
    | WorkloadIdentityAuth
    | FederatedAuth
)


@dataclass(frozen=True, slots=True)
class AssumeAgencyAuth:
    """``base``'s identity assuming the agency ``agency_name`` of another account (given by
    exactly one of ``domain_name``/``domain_id``) at ``iam_endpoint`` for temporary AK/SK."""

    base: BaseAuth
    agency_name: str
    iam_endpoint: str
    domain_name: str | None = None
    domain_id: str | None = None
    duration_seconds: int = DEFAULT_AGENCY_DURATION

    @property
    def domain(self) -> str:
        """The other account, as configured (its name or id)."""
        return self.domain_name or self.domain_id or ""


Auth: TypeAlias = BaseAuth | AssumeAgencyAuth


@dataclass(frozen=True, slots=True)
class TlsClientConfig:
    """How a target's API endpoints' certificates are checked (section ``tls`` of a target).

    ``ca_file`` is the resolved path; ``ca_pem`` its PEM certificates (read and checked when the
    config is loaded; comments and anything but certificates dropped; not in ``repr``), trusted
    instead of the system's CA bundle. ``insecure_skip_verify`` turns certificate checks off
    (logged as a warning at start). At most one of the two is set.
    """

    ca_file: str | None = None
    ca_pem: str | None = field(default=None, repr=False)
    insecure_skip_verify: bool = False


@dataclass(frozen=True, slots=True)
class Sources:
    """Which sources beyond the job list a target polls (section ``sources``); all by default.

    ``cloud_eye_max_age``: a Cloud Eye datapoint older than this (seconds) is not published.
    """

    cloud_eye: bool = True
    cloud_eye_max_age: float = DEFAULT_CLOUD_EYE_MAX_AGE
    queues: bool = True
    elastic_resource_pools: bool = True


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One DLI project in one region to poll.

    ``project_id`` ``None``: looked up in IAM (the project named ``region``) at
    ``iam_endpoint`` on the first poll; ``iam_endpoint`` ``None`` means IAM's regional endpoint.
    ``ces_endpoint`` ``None``: Cloud Eye's regional endpoint.
    """

    name: str
    region: str
    project_id: str | None
    endpoint: str
    auth: Auth
    poll_interval: float = DEFAULT_POLL_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    rate_limit: float = DEFAULT_RATE_LIMIT
    filters: Filters = field(default_factory=Filters)
    tls: TlsClientConfig = TlsClientConfig()
    iam_endpoint: str | None = None
    ces_endpoint: str | None = None
    sources: Sources = Sources()


@dataclass(frozen=True, slots=True)
class MetricOptions:
    """Cardinality controls for the job metrics (section ``metrics``).

    ``job_info_labels``: False drops the descriptive labels (type, queue, user, run mode, Flink
    version) from ``dli_job_info``. ``state_sets``: ``all`` publishes one series per known state
    (0 or 1) for ``dli_job_status`` and ``dli_job_flink_state``; ``current`` only the current
    state's series (1), which cuts those series 14-fold and 11-fold but makes "== 0" queries and
    absent-state alerts harder.
    """

    job_info_labels: bool = True
    state_sets: str = "all"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    targets: tuple[TargetConfig, ...]
    source: str
    metrics: MetricOptions = MetricOptions()
