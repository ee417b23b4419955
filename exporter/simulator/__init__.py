"""A faithful stand-in for the DLI API, for ``--demo``, the tests and the benchmarks.

It plays the cloud, not the exporter: it answers raw JSON as DLI does and verifies AK/SK
signatures through `exporter.signing`, but knows nothing of the client, poller or collector.
Paths and operation names come from `exporter.dli.api`, which the client builds requests from.

Modules, each depending only on those before it: `jobs`, `population` and `lifecycle` (one
job, random ones, and how they live), `cloudeye` (a running job's Cloud Eye metrics), `queues`
and `pools` (one queue, one elastic resource pool), `projects`, `capacity`, `iam`, `metadata`,
`faults` and `traffic` (the cloud's state, in parts), `wire`, `dli_handlers`,
`capacity_handlers`, `cloudeye_handlers`, `iam_handlers`, `metadata_handlers` and `gateway`
(answering requests), `app` (the application and server) and `state` (`Simulator`, the facade
over the parts).
"""

from exporter.dli.api import EXECUTE_GRAPH, IAM_TOKEN, LIST_JOBS
from exporter.simulator.app import create_app, serve
from exporter.simulator.cloudeye import UNITS as CLOUD_EYE_UNITS
from exporter.simulator.cloudeye import cloud_eye_value, newest_datapoint_ms
from exporter.simulator.faults import Fault
from exporter.simulator.iam import IssuedToken, TemporaryCredential
from exporter.simulator.jobs import JOB_TYPES, SimJob
from exporter.simulator.pools import SimPool
from exporter.simulator.queues import SimQueue
from exporter.simulator.state import Simulator
from exporter.simulator.traffic import UNKNOWN, RequestRecord

__all__ = [
    "CLOUD_EYE_UNITS",
    "EXECUTE_GRAPH",
    "IAM_TOKEN",
    "JOB_TYPES",
    "LIST_JOBS",
    "UNKNOWN",
    "Fault",
    "IssuedToken",
    "RequestRecord",
    "SimJob",
    "SimPool",
    "SimQueue",
    "Simulator",
    "TemporaryCredential",
    "cloud_eye_value",
    "create_app",
    "newest_datapoint_ms",
    "serve",
]
