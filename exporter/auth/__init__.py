"""Credential providers: turn an unsigned request into one DLI will accept.

One module per provider (`aksk`, `iam_token`, `metadata`, `pod_identity`,
`workload_identity`, `agency`), their shared renewal logic in `base` and `temporary`, the choice
among them in `factory`, and in `pool` the factory sharing agency credentials among targets.
The names other modules use are importable from here.
"""

from exporter.auth.agency import AgencyCredentials, AgencyUser
from exporter.auth.aksk import AkSkCredentials
from exporter.auth.base import (
    MIN_REFETCH_INTERVAL,
    REFRESH_FRACTION,
    REFRESH_MARGIN_MAX,
    REJECTED_BACKOFF,
    REJECTED_BACKOFF_MAX,
    Credentials,
    RequestObserver,
    utc_now,
)
from exporter.auth.factory import credentials_for, describe_credentials
from exporter.auth.federated import FederatedCredentials
from exporter.auth.iam_token import IamTokenCredentials
from exporter.auth.metadata import MetadataCredentials
from exporter.auth.pod_identity import PodIdentityCredentials
from exporter.auth.pool import CredentialsPool
from exporter.auth.temporary import TEMPORARY_MARGIN_MAX, TemporaryAkSk, TemporaryKey
from exporter.auth.workload_identity import WorkloadIdentityCredentials
from exporter.dli.api import (
    ASSUME_AGENCY,
    AUTH_TOKEN_HEADER,
    FEDERATED_CREDENTIAL,
    FEDERATED_TOKEN,
    IAM_TOKEN,
    METADATA,
    POD_IDENTITY,
    WORKLOAD_IDENTITY,
)

__all__ = [
    "ASSUME_AGENCY",
    "AUTH_TOKEN_HEADER",
    "FEDERATED_CREDENTIAL",
    "FEDERATED_TOKEN",
    "IAM_TOKEN",
    "METADATA",
    "MIN_REFETCH_INTERVAL",
    "POD_IDENTITY",
    "REFRESH_FRACTION",
    "REFRESH_MARGIN_MAX",
    "REJECTED_BACKOFF",
    "REJECTED_BACKOFF_MAX",
    "TEMPORARY_MARGIN_MAX",
    "WORKLOAD_IDENTITY",
    "AgencyCredentials",
    "AgencyUser",
    "AkSkCredentials",
    "Credentials",
    "CredentialsPool",
    "FederatedCredentials",
    "IamTokenCredentials",
    "MetadataCredentials",
    "PodIdentityCredentials",
    "RequestObserver",
    "TemporaryAkSk",
    "TemporaryKey",
    "WorkloadIdentityCredentials",
    "credentials_for",
    "describe_credentials",
    "utc_now",
]
