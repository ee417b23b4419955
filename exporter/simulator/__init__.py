"""A faithful stand-in for the DLI API, for ``--demo``, the tests and the benchmarks.

It plays the cloud, not the exporter: it answers raw JSON as DLI does and verifies AK/SK
signatures through `exporter.signing`, but knows nothing of the client, poller or collector.
"""

from exporter.simulator.app import (
    EXECUTE_GRAPH,
    IAM_TOKEN,
    LIST_JOBS,
    UNKNOWN,
    create_app,
    serve,
)
from exporter.simulator.jobs import JOB_TYPES, SimJob
from exporter.simulator.state import Fault, RequestRecord, Simulator

__all__ = [
    "EXECUTE_GRAPH",
    "IAM_TOKEN",
    "JOB_TYPES",
    "LIST_JOBS",
    "UNKNOWN",
    "Fault",
    "RequestRecord",
    "SimJob",
    "Simulator",
    "create_app",
    "serve",
]
