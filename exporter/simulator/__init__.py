"""A faithful stand-in for the DLI API, for ``--demo``, the tests and the benchmarks.

It plays the cloud, not the exporter: it answers raw JSON as DLI does and verifies AK/SK
signatures through `exporter.signing`, but knows nothing of the client, poller or collector.
Paths and operation names come from `exporter.dli.api`, which the client builds requests from.

Modules, each depending only on those before it: `jobs` and `lifecycle` (one job and how it
lives), `projects`, `iam`, `metadata`, `faults` and `traffic` (the cloud's state, in parts),
`wire`, `dli_handlers`, `iam_handlers`, `metadata_handlers` and `gateway` (answering requests),
`app` (the application and server) and `state` (`Simulator`, the facade over the parts).
"""

from exporter.dli.api import EXECUTE_GRAPH, IAM_TOKEN, LIST_JOBS
from exporter.simulator.app import create_app, serve
from exporter.simulator.faults import Fault
from exporter.simulator.iam import IssuedToken, TemporaryCredential
from exporter.simulator.jobs import JOB_TYPES, SimJob
from exporter.simulator.state import Simulator
from exporter.simulator.traffic import UNKNOWN, RequestRecord

__all__ = [
    "EXECUTE_GRAPH",
    "IAM_TOKEN",
    "JOB_TYPES",
    "LIST_JOBS",
    "UNKNOWN",
    "Fault",
    "IssuedToken",
    "RequestRecord",
    "SimJob",
    "Simulator",
    "TemporaryCredential",
    "create_app",
    "serve",
]
