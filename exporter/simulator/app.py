"""The simulator's aiohttp application (DLI, Cloud Eye and IAM behind the gateway) and server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final, Protocol

from aiohttp import web

from exporter.dli.api import (
    ASSUME_AGENCY,
    ASSUME_AGENCY_PATH,
    BATCH_QUERY_METRIC_DATA,
    BATCH_QUERY_METRIC_DATA_PATH,
    ELASTIC_RESOURCE_POOLS_PATH,
    EXECUTE_GRAPH,
    EXECUTE_GRAPH_PATH,
    FEDERATED_TOKEN,
    FEDERATED_TOKEN_PATH,
    IAM_TOKEN,
    IAM_TOKEN_PATH,
    LIST_ELASTIC_RESOURCE_POOLS,
    LIST_JOBS,
    LIST_JOBS_PATH,
    LIST_PROJECTS,
    LIST_PROJECTS_PATH,
    LIST_QUEUES,
    LIST_QUEUES_PATH,
    METADATA,
    METADATA_SECURITY_KEY_PATH,
    METADATA_TOKEN_PATH,
    POD_IDENTITY,
    POD_IDENTITY_PATH,
    STS_ASSUME_OIDC_PATH,
    WORKLOAD_IDENTITY,
)
from exporter.simulator.capacity import Capacity
from exporter.simulator.capacity_handlers import CapacityHandlers
from exporter.simulator.cloudeye import CloudEye
from exporter.simulator.cloudeye_handlers import CloudEyeHandlers
from exporter.simulator.dli_handlers import DliHandlers
from exporter.simulator.faults import Faults
from exporter.simulator.federated_handlers import FederatedHandlers
from exporter.simulator.gateway import Gateway
from exporter.simulator.iam import Iam
from exporter.simulator.iam_handlers import IamHandlers
from exporter.simulator.metadata import Metadata
from exporter.simulator.metadata_handlers import MetadataHandlers
from exporter.simulator.projects import Projects
from exporter.simulator.projects_handlers import ProjectsHandlers
from exporter.simulator.sts_handlers import Agencies, StsHandlers
from exporter.simulator.traffic import Traffic

#: The route name of the metadata token endpoint (its requests count as operation ``metadata``).
METADATA_TOKEN_ROUTE: Final = "metadata_token"  # noqa: S105 - a route name

__all__ = ["METADATA_TOKEN_ROUTE", "Cloud", "create_app", "serve"]

_SHUTDOWN_TIMEOUT: Final = 5.0


class Cloud(Protocol):
    """What is served: the simulated cloud's parts (a `Simulator` is one)."""

    @property
    def projects(self) -> Projects:
        """Projects and their jobs."""

    @property
    def capacity(self) -> Capacity:
        """Queues and elastic resource pools."""

    @property
    def cloud_eye(self) -> CloudEye:
        """Cloud Eye's settings."""

    @property
    def iam(self) -> Iam:
        """Credentials and tokens."""

    @property
    def metadata(self) -> Metadata:
        """The instance metadata service."""

    @property
    def agencies(self) -> Agencies:
        """Agencies of other accounts that may be assumed."""

    @property
    def faults(self) -> Faults:
        """Faults to answer instead of the real responses."""

    @property
    def traffic(self) -> Traffic:
        """Latency, throttling and the request log."""

    def app(self) -> web.Application:
        """A fresh application serving this cloud."""


def create_app(sim: Cloud) -> web.Application:
    """An application serving ``sim``; it holds no state of its own."""
    gateway = Gateway(sim.projects, sim.iam, sim.faults, sim.traffic)
    dli = DliHandlers(sim.projects)
    iam = IamHandlers(sim.iam, sim.projects)
    app = web.Application(middlewares=[gateway.middleware])
    app.router.add_get(LIST_JOBS_PATH, dli.list_jobs, name=LIST_JOBS, allow_head=False)
    app.router.add_get(EXECUTE_GRAPH_PATH, dli.execute_graph, name=EXECUTE_GRAPH, allow_head=False)
    capacity = CapacityHandlers(sim.projects, sim.capacity)
    app.router.add_get(LIST_QUEUES_PATH, capacity.list_queues, name=LIST_QUEUES, allow_head=False)
    app.router.add_get(
        ELASTIC_RESOURCE_POOLS_PATH,
        capacity.list_pools,
        name=LIST_ELASTIC_RESOURCE_POOLS,
        allow_head=False,
    )
    cloud_eye = CloudEyeHandlers(sim.projects, sim.cloud_eye)
    app.router.add_post(
        BATCH_QUERY_METRIC_DATA_PATH, cloud_eye.batch_query, name=BATCH_QUERY_METRIC_DATA
    )
    app.router.add_post(IAM_TOKEN_PATH, iam.iam_token, name=IAM_TOKEN)
    app.router.add_get(
        LIST_PROJECTS_PATH,
        ProjectsHandlers(sim.projects).list_projects,
        name=LIST_PROJECTS,
        allow_head=False,
    )
    metadata = MetadataHandlers(sim.metadata, sim.iam)
    app.router.add_put(METADATA_TOKEN_PATH, metadata.token, name=METADATA_TOKEN_ROUTE)
    app.router.add_get(
        METADATA_SECURITY_KEY_PATH, metadata.security_key, name=METADATA, allow_head=False
    )
    app.router.add_post(POD_IDENTITY_PATH, metadata.pod_identity, name=POD_IDENTITY)
    app.router.add_post(STS_ASSUME_OIDC_PATH, metadata.assume_with_oidc, name=WORKLOAD_IDENTITY)
    sts = StsHandlers(sim.agencies, sim.iam)
    federated = FederatedHandlers(sim.metadata, sim.iam, sts.assume_agency)
    app.router.add_post(ASSUME_AGENCY_PATH, federated.security_tokens, name=ASSUME_AGENCY)
    app.router.add_post(FEDERATED_TOKEN_PATH, federated.id_token, name=FEDERATED_TOKEN)
    return app


@asynccontextmanager
async def serve(simulator: Cloud, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run the simulator on a real socket; yields the base URL like ``http://127.0.0.1:54321``."""
    runner = web.AppRunner(simulator.app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        url_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        if ":" in url_host:
            url_host = f"[{url_host}]"
        yield f"http://{url_host}:{bound_port}"
    finally:
        await runner.cleanup()
