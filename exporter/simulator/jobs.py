"""Simulated DLI Flink jobs: the mutable record and its JSON as the API sends it.

Nothing here reads a clock or a global random source: times and random generators come from the
caller, so a seeded simulation replays exactly. Random jobs are `population`'s.
"""

from __future__ import annotations

import hashlib
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
    #: Seconds between checkpoints.
    checkpoint_interval: int = 60
    restart_when_exception: bool = True
    #: Restarts allowed on exceptions (-1: unlimited).
    resume_max_num: int = -1
    # Cloud Eye overrides (`cloudeye.cloud_eye_value`): a stalled job reads and writes nothing
    # and its totals stop at ``stalled_since_ms`` (``None``: its start); backpressure 0/50/100.
    stalled: bool = False
    stalled_since_ms: int | None = None
    backpressure_level: int = 0
    #: The ``flink_max_op_latency`` reported (``None``: derived from the profile and level).
    max_op_latency_ms: float | None = None

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
            "restart_when_exception": self.restart_when_exception,
            "resume_checkpoint": False,
            "resume_max_num": self.resume_max_num,
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
