"""The runtime configuration: frozen, hashable dataclasses the rest of the exporter reads.

Built by :mod:`exporter.config.parse` from the validated file sections
(:mod:`exporter.config.schema`); the file shape can change without touching these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeAlias

from exporter.secret import Secret

DEFAULT_POLL_INTERVAL: Final = 60.0
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_CONCURRENCY: Final = 8
DEFAULT_RATE_LIMIT: Final = 20.0
MIN_POLL_INTERVAL: Final = 1.0

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


Auth: TypeAlias = AkSkAuth | PasswordAuth


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
class TargetConfig:
    """One DLI project in one region to poll."""

    name: str
    region: str
    project_id: str
    endpoint: str
    auth: Auth
    poll_interval: float = DEFAULT_POLL_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    rate_limit: float = DEFAULT_RATE_LIMIT
    filters: Filters = field(default_factory=Filters)
    tls: TlsClientConfig = TlsClientConfig()


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
