"""Simulated DLI Flink jobs: the mutable record, its JSON as the API sends it, random population.

Nothing here reads a clock or a global random source: times and random generators come from the
caller, so a seeded simulation replays exactly.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any, Final

JOB_TYPES: Final = ("flink_opensource_sql_job", "flink_jar_job", "flink_sql_job")
RUNNING: Final = "job_running"
#: Statuses in which the job's Flink cluster is up (duration keeps growing).
LIVE_STATUSES: Final = frozenset({RUNNING, "job_savepointing", "job_canceling", "job_cancel_fail"})
#: Statuses a job that stopped stays in until it is resubmitted.
STOPPED_STATUSES: Final = frozenset(
    {"job_submit_fail", "job_running_exception", "job_cancel_success", "job_finish"}
)

_QUEUES: Final = (
    ("flink_prod", "exclusive_cluster"),
    ("flink_prod", "exclusive_cluster"),
    ("realtime_etl", "exclusive_cluster"),
    ("flink_dev", "exclusive_cluster"),
    ("default", "shared_cluster"),
)
_USERS: Final = ("alice", "bob", "carol", "etl_svc", "etl_svc")
_SUBJECTS: Final = ("orders", "clickstream", "payments", "inventory", "iot_sensor", "user_profile")
_ACTIONS: Final = ("ingest", "dedup", "enrich", "aggregate", "sink_dws", "alerting", "cdc")
_FLINK_VERSIONS: Final = {
    "flink_opensource_sql_job": ("1.15", "1.15", "1.17", "1.12"),
    "flink_jar_job": ("1.15", "1.12", "1.17"),
    "flink_sql_job": ("1.10", "1.12"),
}
#: Initial statuses of a populated job that is not running, with weights.
_IDLE_MIX: Final = (
    ("job_cancel_success", 30),
    ("job_running_exception", 16),
    ("job_finish", 12),
    ("job_submit_fail", 10),
    ("job_init", 10),
    ("job_submitting", 8),
    ("job_savepointing", 4),
    ("job_canceling", 4),
    ("job_cancel_fail", 2),
    ("job_arrearage_stopped", 2),
    ("job_idle", 1),
    ("job_downloading", 1),
)
#: Share of populated jobs that are running when the caller does not say.
DEFAULT_RUNNING_FRACTION: Final = 0.65
_DAY_MS: Final = 86_400_000
#: The ``status_desc`` DLI gives a job in some statuses (empty in the others).
STATUS_DESC: Final = {
    "job_submit_fail": "Failed to submit the job: insufficient resources in the queue.",
    "job_running_exception": (
        "org.apache.flink.runtime.JobException: Recovery is suppressed by "
        "FixedDelayRestartBackoffTimeStrategy"
    ),
    "job_cancel_fail": "Failed to stop the job: the savepoint timed out.",
    "job_arrearage_stopped": "The job is stopped because the account is in arrears.",
}
#: The Flink state execute-graph reports in each status that has a fixed one.
STOPPED_FLINK_STATE: Final = {
    "job_running_exception": "FAILED",
    "job_cancel_success": "CANCELED",
    "job_finish": "FINISHED",
    "job_arrearage_stopped": "SUSPENDED",
    "job_arrearage_recovering": "SUSPENDED",
    "job_canceling": "CANCELLING",
}


@dataclass
class SimJob:
    """One simulated job; tests may mutate any field to set up an exact state.

    Times are epoch milliseconds, as the API sends them. ``flink_state`` is what
    execute-graph reports while ``status`` is ``job_running``.
    """

    job_id: int
    name: str
    project_id: str = ""
    job_type: str = "flink_opensource_sql_job"
    status: str = RUNNING
    status_desc: str = ""
    desc: str = ""
    queue_name: str = "flink_prod"
    user_name: str = "alice"
    user_id: str = ""
    run_mode: str = "exclusive_cluster"
    create_time_ms: int = 0
    start_time_ms: int = 0
    #: When the job last stopped running; ``None`` while it runs or if it never ran.
    end_time_ms: int | None = None
    update_time_ms: int = 0
    restart_times: int = 0
    has_savepoint: bool = False
    cu_number: int = 2
    manager_cu_number: int = 1
    parallel_number: int = 1
    tm_cus: int = 1
    tm_slot_num: int = 1
    real_cu_number: int = 0
    executor_number: int | None = None
    executor_cu_number: int | None = None
    flink_version: str = "1.15"
    flink_state: str = "RUNNING"
    is_stoppable: bool = False
    jid: str = "0" * 32
    root_id: int = -1
    sql_body: str | None = None
    main_class: str | None = None
    entrypoint_args: str | None = None
    checkpoint_enabled: bool = True
    checkpoint_interval: int = 60

    def duration_ms(self, now_ms: int) -> int:
        """How long the job ran (or has been running); 0 if it never started."""
        if self.start_time_ms <= 0:
            return 0
        end = now_ms if self.end_time_ms is None else self.end_time_ms
        return max(0, end - self.start_time_ms)

    def to_api(self, *, show_detail: bool, now_ms: int) -> dict[str, Any]:
        """The job as one entry of the list API's ``job_list.jobs``."""
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "name": self.name,
            "desc": self.desc,
            "job_type": self.job_type,
            "status": self.status,
            "status_desc": self.status_desc,
            "create_time": self.create_time_ms,
            "start_time": self.start_time_ms,
            "queue_name": self.queue_name,
            "has_savepoint": self.has_savepoint,
            "restart_times": self.restart_times,
            "graph_editor_enabled": False,
        }
        if show_detail:
            body.update(
                user_id=self.user_id,
                project_id=self.project_id,
                run_mode=self.run_mode,
                entrypoint_args=self.entrypoint_args,
                job_config=self._job_config(with_cu=True),
            )
        else:
            body.update(
                user_name=self.user_name,
                duration=self.duration_ms(now_ms),
                root_id=self.root_id,
                sql_body=self.sql_body,
                main_class=self.main_class,
                execution_graph=None,
                update_time=self.update_time_ms,
                job_config=self._job_config(with_cu=False),
            )
        return body

    def _job_config(self, *, with_cu: bool) -> dict[str, Any]:
        config: dict[str, Any] = {
            "checkpoint_enabled": self.checkpoint_enabled,
            "checkpoint_mode": "exactly_once",
            "checkpoint_interval": self.checkpoint_interval,
            "log_enabled": True,
            "obs_bucket": "dli-job-logs",
            "smn_topic": None,
            "root_id": self.root_id,
            "manager_cu_number": self.manager_cu_number,
            "restart_when_exception": True,
            "resume_checkpoint": False,
            "resume_max_num": -1,
            "idle_state_retention": 3600,
            "dirty_data_strategy": "0",
            "tm_cus": self.tm_cus,
            "tm_slot_num": self.tm_slot_num,
            "flink_version": self.flink_version,
            "real_cu_number": self.real_cu_number,
        }
        if self.job_type == "flink_jar_job":
            config["executor_number"] = self.executor_number
            config["executor_cu_number"] = self.executor_cu_number
        if with_cu:
            config["cu_number"] = self.cu_number
            config["parallel_number"] = self.parallel_number
        return config

    def execute_graph(self, now_ms: int) -> dict[str, Any]:
        """The ``execute_graph`` object (camelCase and hyphenated keys, as Flink names them)."""
        return {
            "jid": self.jid,
            "name": self.name,
            "isStoppable": self.is_stoppable,
            "state": self.flink_state,
            "start-time": self.start_time_ms,
            "end-time": -1,
            "duration": self.duration_ms(now_ms),
        }


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded from ``parts`` (stable across runs; for simulation, not secrets)."""
    return random.Random(":".join(map(str, parts)))  # noqa: S311


def user_id_for(user_name: str) -> str:
    """A stable 32-hex user id for a user name."""
    return hashlib.sha256(user_name.encode()).hexdigest()[:32]


def new_jid(rng: random.Random) -> str:
    """A Flink job id: 32 hex digits."""
    return f"{rng.getrandbits(128):032x}"


def random_job(
    rng: random.Random, *, job_id: int, project_id: str, status: str, now_ms: int
) -> SimJob:
    """A plausible job of a random type, size and age, in ``status``."""
    job_type = rng.choices(JOB_TYPES, weights=(55, 30, 15))[0]
    queue_name, run_mode = rng.choice(_QUEUES)
    user_name = rng.choice(_USERS)
    parallel = rng.choice((1, 1, 2, 2, 4, 8, 16))
    slots = rng.choice((1, 2, 2, 4))
    tm_cus = rng.choice((1, 1, 2))
    manager_cu = 2 if parallel >= 8 else 1
    cu_number = manager_cu + tm_cus * math.ceil(parallel / slots)
    job = SimJob(
        job_id=job_id,
        name=f"{rng.choice(_SUBJECTS)}_{rng.choice(_ACTIONS)}_{job_id % 1000:03d}",
        project_id=project_id,
        job_type=job_type,
        desc=rng.choice(("", "", "Streaming pipeline", "Owned by the data platform team")),
        queue_name=queue_name,
        user_name=user_name,
        user_id=user_id_for(user_name),
        run_mode=run_mode,
        create_time_ms=now_ms - rng.randrange(3_600_000, 90 * _DAY_MS),
        cu_number=cu_number,
        manager_cu_number=manager_cu,
        parallel_number=parallel,
        tm_cus=tm_cus,
        tm_slot_num=slots,
        real_cu_number=rng.choice((0, 0, 0, cu_number)),
        flink_version=rng.choice(_FLINK_VERSIONS[job_type]),
        is_stoppable=rng.random() < 0.3,
        jid=new_jid(rng),
        checkpoint_interval=rng.choice((30, 60, 60, 300)),
        has_savepoint=rng.random() < 0.2,
    )
    if job_type == "flink_jar_job":
        job.main_class = f"com.example.streaming.{job.name.title().replace('_', '')}"
        job.entrypoint_args = rng.choice(("", "--env prod", "--checkpoint-dir obs://ckpt"))
        job.executor_number = parallel
        job.executor_cu_number = tm_cus
    else:
        # Made-up SQL text shown in the job list, never executed.
        job.sql_body = f"INSERT INTO sink_{job_id} SELECT * FROM source_{job_id};"  # noqa: S608
    _place_in_status(job, status, now_ms, rng)
    return job


def _place_in_status(job: SimJob, status: str, now_ms: int, rng: random.Random) -> None:
    """Fill the time and state fields consistently with a job found in ``status``."""
    job.status = status
    job.status_desc = STATUS_DESC.get(status, "")
    ran = status not in ("job_init", "job_submitting", "job_submit_fail")
    if ran:
        job.start_time_ms = rng.randrange(job.create_time_ms, now_ms - 60_000)
        job.restart_times = min(rng.getrandbits(3), rng.getrandbits(3))
    if status == RUNNING:
        job.flink_state = rng.choices(("RUNNING", "RESTARTING", "CREATED"), (90, 6, 4))[0]
    elif status in LIVE_STATUSES:
        job.flink_state = STOPPED_FLINK_STATE.get(status, "RUNNING")
    elif ran:
        job.end_time_ms = rng.randrange(job.start_time_ms, now_ms - 30_000)
        job.flink_state = STOPPED_FLINK_STATE.get(status, "RUNNING")
    job.update_time_ms = job.end_time_ms or job.start_time_ms or job.create_time_ms


def populate_statuses(rng: random.Random, count: int, running_fraction: float | None) -> list[str]:
    """Initial statuses for ``count`` jobs: running ones plus a realistic mix of the others."""
    names = [status for status, _ in _IDLE_MIX]
    weights = [weight for _, weight in _IDLE_MIX]
    if running_fraction is None:
        return [
            RUNNING if rng.random() < DEFAULT_RUNNING_FRACTION else rng.choices(names, weights)[0]
            for _ in range(count)
        ]
    if not 0.0 <= running_fraction <= 1.0:
        raise ValueError("running_fraction must be between 0 and 1")
    running = round(count * running_fraction)
    statuses = [RUNNING] * running + rng.choices(names, weights, k=count - running)
    rng.shuffle(statuses)
    return statuses
