"""DLI's and IAM's paths and the exporter's operation names, written once.

The client builds its requests from these and the simulator routes them, so the two cannot
disagree about the API's shape. An operation name is also the ``operation`` label value of the
request metrics.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ASSUME_AGENCY",
    "ASSUME_AGENCY_PATH",
    "AUTH_TOKEN_HEADER",
    "BATCH_QUERY_METRIC_DATA",
    "BATCH_QUERY_METRIC_DATA_PATH",
    "CES_MAX_METRICS_PER_CALL",
    "CES_NAMESPACE",
    "ELASTIC_RESOURCE_POOLS_PATH",
    "EXECUTE_GRAPH",
    "EXECUTE_GRAPH_PATH",
    "FEDERATED_CREDENTIAL",
    "FEDERATED_TOKEN",
    "FEDERATED_TOKEN_PATH",
    "IAM_TOKEN",
    "IAM_TOKEN_PATH",
    "IAM_TOKEN_QUERY",
    "IDP_ID_HEADER",
    "LIST_ELASTIC_RESOURCE_POOLS",
    "LIST_JOBS",
    "LIST_JOBS_PATH",
    "LIST_PROJECTS",
    "LIST_PROJECTS_PATH",
    "LIST_QUEUES",
    "LIST_QUEUES_PATH",
    "MAX_PAGE_SIZE",
    "METADATA",
    "METADATA_ENDPOINT",
    "METADATA_SECURITY_KEY_PATH",
    "METADATA_TOKEN_HEADER",
    "METADATA_TOKEN_PATH",
    "METADATA_TOKEN_TTL_HEADER",
    "OPERATIONS",
    "POD_IDENTITY",
    "POD_IDENTITY_PATH",
    "POOL_PAGE_SIZE",
    "REQUEST_ID_HEADER",
    "SECURITY_TOKEN_HEADER",
    "STS_ASSUME_OIDC_PATH",
    "SUBJECT_TOKEN_HEADER",
    "WORKLOAD_IDENTITY",
    "batch_query_metric_data_path",
    "elastic_resource_pools_path",
    "execute_graph_path",
    "list_jobs_path",
    "list_queues_path",
]

LIST_JOBS: Final = "list_jobs"
EXECUTE_GRAPH: Final = "execute_graph"
#: IAM's Keystone "list projects", finding a target's project id when none is configured.
LIST_PROJECTS: Final = "list_projects"
IAM_TOKEN: Final = "iam_token"  # noqa: S105 - an operation name
#: Requests to the ECS instance metadata service (its token and the temporary AK/SK).
METADATA: Final = "metadata"
#: Requests to CCE pod identity (``HC_CONTAINER_CREDENTIALS_FULL_URI``) for temporary AK/SK.
POD_IDENTITY: Final = "pod_identity"
#: Requests to STS exchanging an OIDC id token for an agency's temporary AK/SK.
WORKLOAD_IDENTITY: Final = "workload_identity"
#: Requests to IAM for an agency's temporary AK/SK (``auth.assume_agency``).
ASSUME_AGENCY: Final = "assume_agency"
#: Requests to IAM exchanging a federated id token for an unscoped token (``type: federated``).
FEDERATED_TOKEN: Final = "federated_token"  # noqa: S105 - an operation name
#: Requests to IAM exchanging that unscoped token for temporary AK/SK (``type: federated``).
FEDERATED_CREDENTIAL: Final = "federated_credential"
#: Cloud Eye's v1 batch query of metric data (the runtime metrics of running Flink jobs).
BATCH_QUERY_METRIC_DATA: Final = "batch_query_metric_data"
#: DLI's list of a project's queues (``queue_type=all``).
LIST_QUEUES: Final = "list_queues"
#: DLI's paged list of a project's elastic resource pools.
LIST_ELASTIC_RESOURCE_POOLS: Final = "list_elastic_resource_pools"
#: Every operation the exporter performs, in the order its metrics list them.
OPERATIONS: Final = (
    LIST_JOBS,
    EXECUTE_GRAPH,
    IAM_TOKEN,
    METADATA,
    POD_IDENTITY,
    WORKLOAD_IDENTITY,
    LIST_PROJECTS,
    ASSUME_AGENCY,
    FEDERATED_TOKEN,
    FEDERATED_CREDENTIAL,
    BATCH_QUERY_METRIC_DATA,
    LIST_QUEUES,
    LIST_ELASTIC_RESOURCE_POOLS,
)

#: Route templates (aiohttp's ``{name}`` syntax), for the simulator's router.
LIST_JOBS_PATH: Final = "/v1.0/{project_id}/streaming/jobs"
EXECUTE_GRAPH_PATH: Final = "/v1.0/{project_id}/streaming/jobs/{job_id}/execute-graph"
#: Cloud Eye (``https://ces.{region}.myhuaweicloud.com``): ``POST`` up to 500 metric queries.
BATCH_QUERY_METRIC_DATA_PATH: Final = "/V1.0/{project_id}/batch-query-metric-data"
#: ``GET ?queue_type=all``: every queue of the project, in one answer (no paging by default).
LIST_QUEUES_PATH: Final = "/v1.0/{project_id}/queues"
#: ``GET ?limit=&offset=``: one page of the project's elastic resource pools.
ELASTIC_RESOURCE_POOLS_PATH: Final = "/v3/{project_id}/elastic-resource-pools"
IAM_TOKEN_PATH: Final = "/v3/auth/tokens"  # noqa: S105 - a path
#: ``GET ?name={region}``: the projects of the caller's account with that name.
LIST_PROJECTS_PATH: Final = "/v3/projects"
#: The query the client sends with a token request: no service catalogue in the answer.
IAM_TOKEN_QUERY: Final = "nocatalog=true"  # noqa: S105 - a query string

#: The ECS instance metadata service (SDK ``MetadataAccessor``): ``PUT`` a session token, then
#: ``GET`` the agency's temporary AK/SK with it.
METADATA_ENDPOINT: Final = "http://169.254.169.254"
METADATA_TOKEN_PATH: Final = "/meta-data/latest/api/token"  # noqa: S105 - a path
METADATA_SECURITY_KEY_PATH: Final = "/openstack/latest/securitykey"
#: Asks for a metadata token valid this many seconds (the SDK asks for 6 h).
METADATA_TOKEN_TTL_HEADER: Final = "X-Metadata-Token-Ttl-Seconds"  # noqa: S105 - a header name
#: Carries the metadata token on the security-key request.
METADATA_TOKEN_HEADER: Final = "X-Metadata-Token"  # noqa: S105 - a header name
#: Where the simulator serves pod identity (the real address is the full URI CCE injects).
POD_IDENTITY_PATH: Final = "/pod-identity/credentials"
#: STS: ``POST`` an OIDC id token with provider and agency URNs (SDK ``OidcStsAccessor``).
STS_ASSUME_OIDC_PATH: Final = "/v5/agencies/assume-with-oidc"
#: IAM: ``POST`` ``assume_role``: an agency's temporary AK/SK (CreateTemporaryAccessKeyByAgency).
ASSUME_AGENCY_PATH: Final = "/v3.0/OS-CREDENTIAL/securitytokens"
#: IAM: ``POST`` an id token with ``X-Idp-Id``; the unscoped token comes back in
#: ``X-Subject-Token`` (SDK ``IamHelper.create_unscoped_token_by_id_token``). The temporary
#: AK/SK for it are ``POST``ed at ``ASSUME_AGENCY_PATH`` with ``methods: ["token"]``.
FEDERATED_TOKEN_PATH: Final = "/v3.0/OS-AUTH/id-token/tokens"  # noqa: S105 - a path
#: Names the identity provider on the id token request.
IDP_ID_HEADER: Final = "X-Idp-Id"
#: Carries the security token of temporary AK/SK on a signed request.
SECURITY_TOKEN_HEADER: Final = "X-Security-Token"  # noqa: S105 - a header name

#: The header carrying an IAM token on a DLI request (instead of an AK/SK signature).
AUTH_TOKEN_HEADER: Final = "X-Auth-Token"  # noqa: S105 - a header name
#: The header in which IAM returns the token it issued.
SUBJECT_TOKEN_HEADER: Final = "X-Subject-Token"  # noqa: S105 - a header name
#: The header in which the API gateway names each answer it sends.
REQUEST_ID_HEADER: Final = "X-Request-Id"
#: The largest ``limit`` a list-jobs request may ask for: jobs per page.
MAX_PAGE_SIZE: Final = 100
#: The ``limit`` of an elastic-resource-pool page (the API's default, 100).
POOL_PAGE_SIZE: Final = 100
#: Cloud Eye's namespace of DLI's metrics.
CES_NAMESPACE: Final = "SYS.DLI"
#: The most metric queries one v1 batch query may carry.
CES_MAX_METRICS_PER_CALL: Final = 500


def list_jobs_path(project_id: str) -> str:
    """``GET``: one page of a project's Flink jobs."""
    return LIST_JOBS_PATH.format(project_id=project_id)


def execute_graph_path(project_id: str, job_id: int) -> str:
    """``GET``: the Flink execution graph of one running job."""
    return EXECUTE_GRAPH_PATH.format(project_id=project_id, job_id=job_id)


def batch_query_metric_data_path(project_id: str) -> str:
    """``POST`` (Cloud Eye): the datapoints of up to 500 metrics."""
    return BATCH_QUERY_METRIC_DATA_PATH.format(project_id=project_id)


def list_queues_path(project_id: str) -> str:
    """``GET``: the project's queues."""
    return LIST_QUEUES_PATH.format(project_id=project_id)


def elastic_resource_pools_path(project_id: str) -> str:
    """``GET``: one page of the project's elastic resource pools."""
    return ELASTIC_RESOURCE_POOLS_PATH.format(project_id=project_id)
