"""The fault harness: the real exporter app polling a "faulty" and a "healthy" simulator.

Every test gets a fresh `Harness`: two simulators on their own loopback ports, the exporter app
(``exporter.web.create_app``) on a third, both targets polled fast (``poll_interval`` 0.3 s by
default) and up. A test injects a fault into the faulty simulator, waits for /metrics to say
what happened (`Harness.wait_down`), then clears it and waits for the recovery
(`Harness.recover`), which also checks that no secret leaked. Modules that need other settings
override the ``settings`` fixture.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from exporter.auth import Credentials, RequestObserver, credentials_for
from exporter.config import AkSkAuth, Config, PasswordAuth, Sources, TargetConfig
from exporter.runtime import ExporterHooks
from exporter.secret import Secret
from exporter.simulator import Simulator, serve
from exporter.snapshot import Snapshot
from exporter.supervisor import CredentialsFactory
from exporter.web import create_app
from tests.conftest import ACCESS_KEY, OTHER_PROJECT, PROJECT, SECRET_KEY, make_target

FAULTY: Final = "faulty"
HEALTHY: Final = "healthy"
SECURITY_TOKEN: Final = "sts-token-do-not-log-3c2b1a09"
IAM_USER: Final = "dli-exporter-bot"
IAM_PASSWORD: Final = "iam-pw-do-not-log-0e9d8c7b"
IAM_DOMAIN: Final = "acme"
#: Upper bound for any wait on the app; the conditions are normally met within an interval or
#: two. Generous so that a loaded CI machine does not fail a test that is right.
WAIT_TIMEOUT: Final = 5.0
#: Recovery must come within this many poll intervals after a fault is cleared (normally 1-2).
RECOVERY_INTERVALS: Final = 10
#: Also counted for a fault the client retries: a retry that starts just before the poll's
#: deadline gets only what is left of it and may time out, or not start ("poll deadline
#: reached before the request").
LATE_RETRY: Final = "timeout"
_SCRAPE_PAUSE: Final = 0.02
_SIGNATURE = re.compile(r"Signature=([0-9a-f]+)")


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """How the targets poll. The healthy target polls a little slower, with a roomier timeout."""

    poll_interval: float = 0.3
    timeout: float = 0.2
    #: The faulty target authenticates with an IAM user's password instead of AK/SK.
    password_auth: bool = False


class SimClock:
    """A simulator clock: real time plus a settable offset, or frozen at one instant."""

    def __init__(self, *, frozen_at: float | None = None) -> None:
        self.offset = 0.0
        self._frozen_at = frozen_at

    def __call__(self) -> float:
        now = time.time() if self._frozen_at is None else self._frozen_at
        return now + self.offset


@dataclass(frozen=True, slots=True)
class Sample:
    """One exposition sample."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Scrape:
    """One /metrics answer (plain text format), parsed."""

    text: str
    samples: tuple[Sample, ...]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = tuple(
            Sample(s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        )
        return cls(text, samples)

    def find(self, name: str, **labels: str) -> list[Sample]:
        """Samples of ``name`` whose labels include ``labels``."""
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def up(self, target: str) -> float | None:
        found = self.find("dli_up", target=target)
        return found[0].value if found else None

    def requests(self, target: str, operation: str, code: str) -> float:
        """``dli_api_requests_total`` for one target, operation and code (0 when absent)."""
        found = self.find("dli_api_requests_total", target=target, operation=operation, code=code)
        return found[0].value if found else 0.0

    def codes(self, target: str, operation: str) -> dict[str, float]:
        """Every code counted for one target and operation."""
        return {
            s.labels["code"]: s.value
            for s in self.find("dli_api_requests_total", target=target, operation=operation)
        }

    def job_ids(self, target: str) -> set[int]:
        """The jobs published for ``target`` (from ``dli_job_info``)."""
        return {int(s.labels["job_id"]) for s in self.find("dli_job_info", target=target)}

    def job_value(self, name: str, target: str, job_id: int, **labels: str) -> float | None:
        found = self.find(name, target=target, job_id=str(job_id), **labels)
        return found[0].value if found else None

    def flink_state(self, target: str, job_id: int) -> str | None:
        """The Flink state published for a job (the state-set member at 1), if any."""
        for s in self.find("dli_job_flink_state", target=target, job_id=str(job_id)):
            if s.value == 1.0:
                return s.labels["state"]
        return None

    def job_lines(self, target: str) -> list[str]:
        """The exposition lines of ``target``'s job series, verbatim and in order."""
        marker = f'target="{target}"'
        return [
            line
            for line in self.text.splitlines()
            if line.startswith("dli_job_") and marker in line
        ]


class RecordingCredentials:
    """Wraps the exporter's credentials and remembers every secret value they put in headers."""

    def __init__(self, inner: Credentials, seen: set[str]) -> None:
        self._inner = inner
        self._seen = seen

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        signed = await self._inner.authorize(method, url, headers, body)
        for name in ("X-Auth-Token", "X-Security-Token"):
            if name in signed:
                self._seen.add(signed[name])
        self._seen.update(_SIGNATURE.findall(signed.get("Authorization", "")))
        return signed

    async def refresh(self) -> bool:
        return await self._inner.refresh()


@dataclass
class Harness:
    """The running exporter and its two simulators, with helpers to observe them."""

    url: str
    session: aiohttp.ClientSession
    settings: FaultSettings
    faulty: Simulator
    healthy: Simulator
    #: The faulty simulator's clock (its offset skews the signature check).
    faulty_clock: SimClock
    #: The exporter's IAM credentials clock (password auth only).
    credentials_clock: SimClock
    caplog: pytest.LogCaptureFixture
    #: Secret values sent in request headers (tokens, signatures), collected as they are sent.
    sent_secrets: set[str]
    #: The healthy target's job series as first scraped; they must never change.
    healthy_baseline: list[str] = field(default_factory=list)
    #: Every snapshot the exporter published, with the monotonic time it was published.
    published: list[tuple[float, Snapshot]] = field(default_factory=list)

    # --- observing -------------------------------------------------------------------------

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as resp:
            return resp.status, await resp.text()

    async def scrape(self) -> Scrape:
        """GET /metrics; it must answer 200 whatever the faulty target does."""
        status, text = await self.get("/metrics")
        assert status == 200, text
        return Scrape.parse(text)

    async def wait_for(
        self, predicate: Callable[[Scrape], bool], what: str, timeout: float = WAIT_TIMEOUT
    ) -> Scrape:
        """Scrape until ``predicate`` holds; fail with the faulty target's series otherwise."""
        last: Scrape | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    last = await self.scrape()
                    if predicate(last):
                        return last
                    await asyncio.sleep(_SCRAPE_PAUSE)
        except TimeoutError:
            shown = [] if last is None else [ln for ln in last.text.splitlines() if FAULTY in ln]
            detail = "\n".join(shown[:60])
            raise AssertionError(f"timed out waiting for {what}; last scrape:\n{detail}") from None

    def log_fields(self, message: str, target: str = FAULTY) -> list[dict[str, object]]:
        """The structured fields of every captured log record ``message`` about ``target``."""
        found = []
        for record in self.caplog.records:
            fields: object = getattr(record, "fields", None)
            if (
                record.getMessage() == message
                and isinstance(fields, dict)
                and fields.get("target", target) == target
            ):
                found.append(fields)
        return found

    def logged_errors(self, *, retried: bool = False) -> list[str]:
        """The ``error`` of each "target is down" record about the faulty target.

        With ``retried``, errors with code ``timeout`` are left out: a retried fault may end a
        poll with a retry cut short by the deadline (see `LATE_RETRY`).
        """
        errors = [str(fields.get("error")) for fields in self.log_fields("target is down")]
        return [e for e in errors if not (retried and f" code={LATE_RETRY} " in e)]

    def retried_with(self, code: str) -> list[str]:
        """Errors the client logged a retry for, whose code is ``code``."""
        errors = [str(fields.get("error")) for fields in self.log_fields("retrying")]
        return [error for error in errors if f" code={code} " in error]

    # --- the checks every fault test makes -------------------------------------------------

    def assert_healthy_untouched(self, scrape: Scrape) -> None:
        """The healthy target is up and its job series are byte for byte what they were."""
        assert scrape.up(HEALTHY) == 1.0
        assert scrape.job_lines(HEALTHY) == self.healthy_baseline

    async def wait_down(self, operation: str, code: str) -> Scrape:
        """Wait until the faulty target is down with ``code`` counted for ``operation`` and
        logged as the reason.

        Meanwhile /metrics answers 200 (checked on every scrape), the process is healthy and
        the healthy target is untouched.
        """

        def down(s: Scrape) -> bool:
            return (
                s.up(FAULTY) == 0.0
                and s.requests(FAULTY, operation, code) >= 1
                and any(f" code={code} " in error for error in self.logged_errors())
            )

        scrape = await self.wait_for(down, f"dli_up 0 and {operation} code={code} counted")
        assert (await self.get("/-/healthy"))[0] == 200
        self.assert_healthy_untouched(scrape)
        return scrape

    async def recover(
        self, *, clear: bool = True, until: Callable[[Scrape], bool] | None = None
    ) -> Scrape:
        """Clear every fault knob (unless ``clear`` is false), wait until the faulty target
        is back with all its jobs and Flink states (and ``until`` holds), then check isolation
        and secrets."""
        cleared_at = time.monotonic()
        if clear:
            self.faulty.clear_faults()
            self.faulty.latency = 0.0
            self.faulty_clock.offset = 0.0
        scrape = await self.wait_for(
            lambda s: (
                self.recovered(s)
                and (until is None or until(s))
                and (not clear or self.polled_since(cleared_at))
            ),
            "the faulty target to recover",
            timeout=RECOVERY_INTERVALS * self.settings.poll_interval,
        )
        if clear:
            self.assert_first_poll_after_clearing_succeeded(cleared_at)
        self.assert_healthy_untouched(scrape)
        await self.assert_no_secrets()
        return scrape

    def polled_since(self, cleared_at: float) -> bool:
        """True once a poll of the faulty target that started after ``cleared_at`` ended
        (the poll in flight at clearing may end recovered too; that one does not count)."""
        return any(
            snapshot.target == FAULTY
            and snapshot.poll_duration_seconds is not None
            and published_at - snapshot.poll_duration_seconds > cleared_at
            for published_at, snapshot in self.published
        )

    def assert_first_poll_after_clearing_succeeded(self, cleared_at: float) -> None:
        """Recovery within one interval: the first poll that started after the fault cleared
        (the one in flight then may still fail) listed the jobs successfully."""
        before = [snap for at, snap in self.published if snap.target == FAULTY and at <= cleared_at]
        if before and before[-1].up:
            return  # the target was not down (e.g. only execute-graph failed): nothing to recover
        started_after = [
            snapshot
            for published_at, snapshot in self.published
            if snapshot.target == FAULTY
            and snapshot.poll_duration_seconds is not None
            and published_at - snapshot.poll_duration_seconds > cleared_at
        ]
        assert started_after, "no poll started after the fault cleared"
        assert started_after[0].up, f"the first poll after clearing failed: {started_after[0]}"

    def recovered(self, scrape: Scrape) -> bool:
        """Faulty is up, publishes exactly its simulator's jobs, with Flink state when running."""
        jobs = self.faulty.jobs(PROJECT)
        return (
            scrape.up(FAULTY) == 1.0
            and scrape.job_ids(FAULTY) == {job.job_id for job in jobs}
            and all(
                scrape.flink_state(FAULTY, job.job_id) == job.flink_state
                for job in jobs
                if job.status == "job_running"
            )
        )

    async def assert_no_secrets(self) -> None:
        """No secret in any captured log record, in /metrics or on the status page."""
        secrets = {SECRET_KEY, SECURITY_TOKEN, IAM_PASSWORD, *self.sent_secrets}
        _, metrics = await self.get("/metrics")
        _, page = await self.get("/")
        records = [str(record.__dict__) for record in self.caplog.records]
        for where, text in (
            ("logs", self.caplog.text),
            ("log records", "\n".join(records)),
            ("/metrics", metrics),
            ("/", page),
        ):
            leaked = [secret for secret in secrets if secret in text]
            assert not leaked, f"{len(leaked)} secret value(s) found in {where}"


def list_page_body(sim: Simulator, project_id: str = PROJECT) -> dict[str, object]:
    """The list-jobs answer the simulator would give for all of a project's jobs."""
    now_ms = sim.now_ms()
    jobs = [job.to_api(show_detail=True, now_ms=now_ms) for job in sim.jobs(project_id)]
    return {
        "is_success": "true",
        "message": "Querying of the job list succeeds.",
        "job_list": {"total_count": len(jobs), "jobs": jobs},
    }


def encode(body: object) -> bytes:
    return json.dumps(body).encode()


@pytest.fixture
def settings() -> FaultSettings:
    """The targets' poll settings; a module overrides this fixture to change them."""
    return FaultSettings()


def _targets(settings: FaultSettings, faulty_url: str, healthy_url: str) -> Config:
    faulty_auth: AkSkAuth | PasswordAuth = AkSkAuth(
        ACCESS_KEY, Secret(SECRET_KEY), Secret(SECURITY_TOKEN)
    )
    if settings.password_auth:
        faulty_auth = PasswordAuth(IAM_USER, Secret(IAM_PASSWORD), IAM_DOMAIN, faulty_url)
    faulty = make_target(
        FAULTY,
        faulty_url,
        poll_interval=settings.poll_interval,
        timeout=settings.timeout,
        auth=faulty_auth,
        # The faults here are the job list's: the further sources (tested against their own
        # faults in tests/test_runtime_sources.py) would only add calls to a 0.2 s budget.
        sources=Sources(cloud_eye=False, queues=False, elastic_resource_pools=False),
    )
    healthy = make_target(
        HEALTHY,
        healthy_url,
        project_id=OTHER_PROJECT,
        poll_interval=settings.poll_interval * 5 / 3,
        timeout=settings.poll_interval * 4 / 3,
        auth=AkSkAuth(ACCESS_KEY, Secret(SECRET_KEY), Secret(SECURITY_TOKEN)),
    )
    return Config(targets=(faulty, healthy), source="<fault tests>")


def _credentials_factory(clock: SimClock, seen: set[str]) -> CredentialsFactory:
    """The app's credentials, recorded; IAM credentials run on ``clock``."""

    def build(
        target: TargetConfig, session: aiohttp.ClientSession, observe: RequestObserver | None
    ) -> Credentials:
        # Only the IAM token's expiry runs on ``clock``: AK/SK signatures keep real time.
        if isinstance(target.auth, PasswordAuth):
            return RecordingCredentials(
                credentials_for(target, session, observe, clock=clock), seen
            )
        return RecordingCredentials(credentials_for(target, session, observe), seen)

    return build


def _faulty_simulator(clock: SimClock) -> Simulator:
    sim = Simulator(
        credentials={ACCESS_KEY: SECRET_KEY},
        clock=clock,
        seed=2,
        lifecycle=False,
        iam_users={IAM_USER: (IAM_PASSWORD, IAM_DOMAIN)},
    )
    sim.add_project(PROJECT)
    for status in ("job_running", "job_running", "job_submitting", "job_cancel_success"):
        sim.add_job(PROJECT, status=status)
    return sim


def _healthy_simulator() -> Simulator:
    """Frozen clock and no lifecycles: its answers, hence its series, never change."""
    sim = Simulator(
        credentials={ACCESS_KEY: SECRET_KEY},
        clock=SimClock(frozen_at=time.time()),
        seed=3,
        lifecycle=False,
    )
    sim.add_project(OTHER_PROJECT)
    for job_id, status in enumerate(("job_running", "job_running", "job_running_exception")):
        sim.add_job(OTHER_PROJECT, job_id=20_001 + job_id, status=status)
    return sim


@pytest.fixture
async def harness(
    settings: FaultSettings, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Harness]:
    """The exporter app polling both simulators, after both targets' first successful polls."""
    caplog.set_level(logging.DEBUG)
    faulty_clock = SimClock()
    credentials_clock = SimClock()
    faulty, healthy = _faulty_simulator(faulty_clock), _healthy_simulator()
    sent: set[str] = set()
    async with AsyncExitStack() as stack:
        faulty_url = await stack.enter_async_context(serve(faulty))
        healthy_url = await stack.enter_async_context(serve(healthy))
        config = _targets(settings, faulty_url, healthy_url)
        published: list[tuple[float, Snapshot]] = []

        def record_publish(snapshot: Snapshot) -> None:
            published.append((time.monotonic(), snapshot))

        app = create_app(
            config,
            credentials=_credentials_factory(credentials_clock, sent),
            hooks=ExporterHooks(on_publish=record_publish),
        )
        runner = web.AppRunner(app)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        session = await stack.enter_async_context(aiohttp.ClientSession())
        harness = Harness(
            url=f"http://{host}:{port}",
            session=session,
            settings=settings,
            faulty=faulty,
            healthy=healthy,
            faulty_clock=faulty_clock,
            credentials_clock=credentials_clock,
            caplog=caplog,
            sent_secrets=sent,
            published=published,
        )
        first = await harness.wait_for(
            lambda s: harness.recovered(s) and s.up(HEALTHY) == 1.0, "both targets up"
        )
        harness.healthy_baseline = first.job_lines(HEALTHY)
        assert first.job_ids(HEALTHY) == {job.job_id for job in healthy.jobs(OTHER_PROJECT)}
        yield harness
