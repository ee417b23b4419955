"""DLI's and IAM's paths and the exporter's operation names, written once.

The client builds its requests from these and the simulator routes them, so the two cannot
disagree about the API's shape. An operation name is also the ``operation`` label value of the
request metrics.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUTH_TOKEN_HEADER",
    "EXECUTE_GRAPH",
    "EXECUTE_GRAPH_PATH",
    "IAM_TOKEN",
    "IAM_TOKEN_PATH",
    "IAM_TOKEN_QUERY",
    "LIST_JOBS",
    "LIST_JOBS_PATH",
    "MAX_PAGE_SIZE",
    "OPERATIONS",
    "REQUEST_ID_HEADER",
    "SUBJECT_TOKEN_HEADER",
    "execute_graph_path",
    "list_jobs_path",
]

LIST_JOBS: Final = "list_jobs"
EXECUTE_GRAPH: Final = "execute_graph"
IAM_TOKEN: Final = "iam_token"  # noqa: S105 - an operation name
#: Every operation the exporter performs, in the order its metrics list them.
OPERATIONS: Final = (LIST_JOBS, EXECUTE_GRAPH, IAM_TOKEN)

#: Route templates (aiohttp's ``{name}`` syntax), for the simulator's router.
LIST_JOBS_PATH: Final = "/v1.0/{project_id}/streaming/jobs"
EXECUTE_GRAPH_PATH: Final = "/v1.0/{project_id}/streaming/jobs/{job_id}/execute-graph"
IAM_TOKEN_PATH: Final = "/v3/auth/tokens"  # noqa: S105 - a path
#: The query the client sends with a token request: no service catalogue in the answer.
IAM_TOKEN_QUERY: Final = "nocatalog=true"  # noqa: S105 - a query string

#: The header carrying an IAM token on a DLI request (instead of an AK/SK signature).
AUTH_TOKEN_HEADER: Final = "X-Auth-Token"  # noqa: S105 - a header name
#: The header in which IAM returns the token it issued.
SUBJECT_TOKEN_HEADER: Final = "X-Subject-Token"  # noqa: S105 - a header name
#: The header in which the API gateway names each answer it sends.
REQUEST_ID_HEADER: Final = "X-Request-Id"
#: The largest ``limit`` a list-jobs request may ask for: jobs per page.
MAX_PAGE_SIZE: Final = 100


def list_jobs_path(project_id: str) -> str:
    """``GET``: one page of a project's Flink jobs."""
    return LIST_JOBS_PATH.format(project_id=project_id)


def execute_graph_path(project_id: str, job_id: int) -> str:
    """``GET``: the Flink execution graph of one running job."""
    return EXECUTE_GRAPH_PATH.format(project_id=project_id, job_id=job_id)
