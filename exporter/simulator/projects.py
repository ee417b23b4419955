"""`Projects`: the simulated cloud's projects and their Flink jobs, living through lifecycles."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import fields
from typing import Any, Final

from exporter.simulator.jobs import SimJob, new_jid, seeded_rng, user_id_for
from exporter.simulator.lifecycle import step
from exporter.simulator.population import populate_statuses, random_job, randomize_job_config

__all__ = ["Projects"]

#: Events a job may catch up on in one `advance()`; beyond that it is rescheduled from now, so a
#: clock jumping by months cannot stall a request.
_MAX_CATCH_UP: Final = 1000
_FIRST_JOB_ID: Final = 10_001


class Projects:
    """Projects with jobs whose lifecycles run on ``clock`` (unix seconds).

    ``seed`` makes populated jobs and lifecycles reproducible; with ``lifecycle`` off, jobs
    keep the state they were given. Projects are named like IAM names them: the first
    ``region``, later ones ``region_<id>``. Job ids are unique across all projects.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        seed: int = 0,
        lifecycle: bool = True,
        region: str = "cn-north-4",
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.lifecycle = lifecycle
        self.region = region
        self._rng = seeded_rng(seed)
        self._projects: dict[str, dict[int, SimJob]] = {}
        self._names: dict[str, str] = {}
        self._next_id = _FIRST_JOB_ID
        # Lifecycle schedule: a heap of (due, job_id) plus the live due time and event count of
        # each job; heap entries whose due time no longer matches are stale and skipped.
        self._heap: list[tuple[float, int]] = []
        self._due: dict[int, float] = {}
        self._events: dict[int, int] = {}
        #: Jobs to delete right after their project's next listing, by project.
        self._doomed: dict[str, set[int]] = {}

    def ids(self) -> list[str]:
        """Every project id, in creation order."""
        return list(self._projects)

    # --- projects --------------------------------------------------------------------------

    def add_project(self, project_id: str, *, name: str | None = None) -> None:
        """Create an empty project (no-op when it exists); ``name`` is its IAM project name."""
        self._ensure_project(project_id, name)

    def _ensure_project(self, project_id: str, name: str | None = None) -> dict[int, SimJob]:
        if project_id not in self._projects:
            if name is None:
                taken = self.region in self._names.values()
                name = f"{self.region}_{project_id}" if taken else self.region
            elif name in self._names.values():
                raise ValueError(f"project name {name!r} already exists")
            self._projects[project_id] = {}
            self._names[project_id] = name
        return self._projects[project_id]

    def project_name(self, project_id: str) -> str | None:
        """The IAM name of a project, or ``None`` when it does not exist."""
        return self._names.get(project_id)

    def project_named(self, name: str) -> str | None:
        """The id of the project called ``name``, or ``None``."""
        for project_id, project_name in self._names.items():
            if project_name == name:
                return project_id
        return None

    def has_project(self, project_id: str) -> bool:
        """True when ``project_id`` exists."""
        return project_id in self._projects

    def _project(self, project_id: str) -> dict[int, SimJob]:
        try:
            return self._projects[project_id]
        except KeyError:
            raise KeyError(f"no project {project_id!r}") from None

    # --- jobs ------------------------------------------------------------------------------

    def add_job(self, project_id: str, **fields_: Any) -> SimJob:
        """Add a job (creating the project if needed); any `SimJob` field may be given.

        Defaults: a running Flink OpenSource SQL job created an hour ago and started
        50 minutes ago, with a fresh unique ``job_id``.
        """
        jobs = self._ensure_project(project_id)
        job_id = fields_.pop("job_id", None)
        if job_id is None:
            job_id = self._take_id()
        elif any(job_id in other for other in self._projects.values()):
            raise ValueError(f"job_id {job_id} already exists")
        else:
            self._next_id = max(self._next_id, int(job_id) + 1)
        unknown = set(fields_) - {f.name for f in fields(SimJob)}
        if unknown:
            raise TypeError(f"unknown SimJob fields: {sorted(unknown)}")
        now_ms = self.now_ms()
        user_name = fields_.get("user_name", "alice")
        defaults: dict[str, Any] = {
            "name": f"job_{job_id}",
            "project_id": project_id,
            "user_id": user_id_for(user_name),
            "create_time_ms": now_ms - 3_600_000,
            "update_time_ms": now_ms - 3_000_000,
            "jid": new_jid(self._rng),
        }
        if fields_.get("status", "job_running") == "job_running":
            defaults["start_time_ms"] = now_ms - 3_000_000
        job = SimJob(job_id=job_id, **(defaults | fields_))
        jobs[job_id] = job
        self._schedule(job_id, self.clock())
        return job

    def populate(
        self, project_id: str, count: int, *, running_fraction: float | None = None
    ) -> list[SimJob]:
        """Add ``count`` jobs with a realistic mix of types, queues, sizes and statuses.

        ``running_fraction`` fixes the share of ``job_running`` jobs (rounded); by default about
        two thirds run. Deterministic given the seed and the calls made before.
        """
        jobs = self._ensure_project(project_id)
        now_ms = self.now_ms()
        created = []
        for status in populate_statuses(self._rng, count, running_fraction):
            job_id = self._take_id()
            job = random_job(
                self._rng, job_id=job_id, project_id=project_id, status=status, now_ms=now_ms
            )
            # Fields added later draw from their own stream, so the others replay as before.
            randomize_job_config(job, seeded_rng(self.seed, job_id, "job_config"))
            jobs[job_id] = job
            self._schedule(job_id, self.clock())
            created.append(job)
        return created

    def remove_job(self, project_id: str, job_id: int) -> None:
        """Delete a job; `KeyError` when it does not exist."""
        del self._project(project_id)[job_id]
        self._due.pop(job_id, None)
        self._events.pop(job_id, None)

    def jobs(self, project_id: str) -> list[SimJob]:
        """The project's jobs, in creation order (the live records, not copies)."""
        return list(self._project(project_id).values())

    def get_job(self, project_id: str, job_id: int) -> SimJob | None:
        """One job, or ``None`` when the project has no such job."""
        return self._projects.get(project_id, {}).get(job_id)

    def delete_after_next_list(self, project_id: str, job_id: int) -> None:
        """Delete a job right after the next list-jobs page of its project is built.

        The job is listed once more and then gone, as when it is deleted between a client's
        listing and its execute-graph call (which then answers 404).
        """
        self._doomed.setdefault(project_id, set()).add(job_id)

    def jobs_listed(self, project_id: str) -> None:
        """Called by the list handler after building a page: applies `delete_after_next_list`."""
        for job_id in self._doomed.pop(project_id, set()):
            if self.get_job(project_id, job_id) is not None:
                self.remove_job(project_id, job_id)

    def _take_id(self) -> int:
        while any(self._next_id in jobs for jobs in self._projects.values()):
            self._next_id += 1
        job_id = self._next_id
        self._next_id += 1
        return job_id

    def _find(self, job_id: int) -> SimJob | None:
        for jobs in self._projects.values():
            if job_id in jobs:
                return jobs[job_id]
        return None

    # --- the clock and lifecycles ----------------------------------------------------------

    def now_ms(self) -> int:
        """The clock in epoch milliseconds."""
        return int(self.clock() * 1000)

    def advance(self, now: float | None = None) -> None:
        """Apply every lifecycle event due by ``now`` (default: the clock), in time order.

        Each job draws its randomness from (seed, job_id, event number), so the states reached
        at a given time do not depend on how often this is called. No-op with lifecycle off.
        """
        if not self.lifecycle:
            return
        now = self.clock() if now is None else now
        caught_up: dict[int, int] = {}
        while self._heap and self._heap[0][0] <= now:
            due, job_id = heapq.heappop(self._heap)
            if self._due.get(job_id) != due:
                continue  # stale: the job was removed or rescheduled
            job = self._find(job_id)
            if job is None:
                continue
            count = self._events.get(job_id, 0)
            rng = seeded_rng(self.seed, job_id, count)
            delay = step(job, int(due * 1000), rng)
            self._events[job_id] = count + 1
            caught_up[job_id] = caught_up.get(job_id, 0) + 1
            if caught_up[job_id] >= _MAX_CATCH_UP:
                self._schedule_at(job_id, now + delay)
            else:
                self._schedule_at(job_id, due + delay)

    def _schedule(self, job_id: int, now: float) -> None:
        """Schedule a new job's first event a little after ``now``."""
        rng = seeded_rng(self.seed, job_id, "first")
        self._schedule_at(job_id, now + rng.uniform(5, 30))

    def _schedule_at(self, job_id: int, due: float) -> None:
        self._due[job_id] = due
        heapq.heappush(self._heap, (due, job_id))
