"""Bench only: the API floor of a `bench/cycle.py` run, a poll's calls without the exporter.

`measure_floor` makes the calls a poll makes, in the poller's order, with the product's public
pieces but no poller, metrics or rate limiter: a bare `JobsApi` for the job list and the
execute graphs, and (with the sources on) each further resource's own source
(`exporter.dli.registry.RESOURCES`: Cloud Eye, queues, elastic resource pools) opened on a
`SourceContext` over plain `Transport`s. So the floor's calls are the exporter's, like for like.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

import aiohttp
from _cycle_harness import REQUEST_TIMEOUT, cpu_seconds
from _cycle_records import Api, Floor, Settings

from exporter.auth import AkSkCredentials
from exporter.config import AkSkAuth, TargetConfig
from exporter.dli.jobs import JobsApi
from exporter.dli.pools import ELASTIC_RESOURCE_POOLS
from exporter.dli.projects import ProjectLookup
from exporter.dli.registry import RESOURCES
from exporter.dli.resource import Resource, Source, SourceContext
from exporter.dli.transport import Transport
from exporter.secret import Secret

#: A deadline no floor run reaches (the sources' polls require one).
PATIENCE: Final = 600.0


async def measure_floor(settings: Settings, api: Api, *, trust_env: bool) -> list[Floor]:
    """``settings.cycles`` runs of the calls a poll makes, as the poller makes them.

    The queue list and the pool pages start with the listing; the first list page, then the
    other pages ``concurrency`` at a time; once the listing is in, the running jobs' execute
    graphs ``concurrency`` at a time and, alongside them under their own semaphore, the Cloud
    Eye batches. The time the simulator and the client alone need, for comparison with the
    exporter's cycle. ``trust_env`` as the exporter's session has it (proxy and netrc lookups
    from the environment).
    """
    floors = []
    calls: Counter[str] = Counter()
    credentials = AkSkCredentials(api.access_key, Secret(api.secret_key))
    async with aiohttp.ClientSession(trust_env=trust_env) as session:

        def transport_to(endpoint: str) -> Transport:
            return Transport(
                session,
                endpoint=endpoint,
                credentials=credentials,
                timeout=REQUEST_TIMEOUT,
                observe=lambda operation, _code, _seconds: calls.update((operation,)),
            )

        transport = transport_to(api.url)
        client = JobsApi(
            transport, project_id=api.project_id, page_concurrency=settings.concurrency
        )
        sources = _open_sources(settings, api, transport, transport_to)
        limit = asyncio.Semaphore(settings.concurrency)

        async def graph(job_id: int) -> None:
            async with limit:
                await client.execute_graph(job_id)

        for _ in range(settings.cycles):
            calls.clear()
            simulator_cpu, cpu = cpu_seconds(api.pid), time.process_time()
            started = time.perf_counter()
            deadline = time.monotonic() + PATIENCE
            async with asyncio.TaskGroup() as group:
                early = {
                    resource.name: group.create_task(source.poll(None, deadline))
                    for resource, source in sources
                    if not resource.needs_jobs
                }
                jobs = await client.list_jobs()
                listed = time.perf_counter()
                late = [
                    source.poll(tuple(jobs), deadline)
                    for resource, source in sources
                    if resource.needs_jobs
                ]
                running = (graph(job.job_id) for job in jobs if job.is_running)
                await asyncio.gather(*running, *late)
            pools = early[ELASTIC_RESOURCE_POOLS.name].result() if sources else None
            floors.append(
                Floor(
                    time.perf_counter() - started,
                    listed - started,
                    time.process_time() - cpu,
                    cpu_seconds(api.pid) - simulator_cpu,
                    Counter(calls),
                    len(pools) if isinstance(pools, tuple) else None,
                )
            )
    return floors


def _open_sources(
    settings: Settings,
    api: Api,
    transport: Transport,
    transport_to: Callable[[str], Transport],
) -> list[tuple[Resource[object], Source[object]]]:
    """Every further resource's source for a target like the exporter's (none: sources off)."""
    if not settings.sources:
        return []
    target = TargetConfig(
        name="floor",
        region="cn-north-4",
        project_id=api.project_id,
        endpoint=api.url,
        auth=AkSkAuth(api.access_key, Secret(api.secret_key)),
        timeout=REQUEST_TIMEOUT,
        concurrency=settings.concurrency,
        ces_endpoint=api.url,
    )
    project = ProjectLookup(target=target.name, region=target.region, known=api.project_id)
    context = SourceContext(target, transport, project, transport_to)
    return [(resource, resource.open(context)) for resource in RESOURCES]
