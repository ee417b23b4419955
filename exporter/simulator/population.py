"""Random population: plausible jobs of random types, sizes, ages and statuses.

Every draw comes from the caller's generator, so a seeded simulation replays exactly; fields added
after the first version draw from a generator of their own (`randomize_job_config`), so the
original stream, and the jobs it makes, stay as they were.
"""

from __future__ import annotations

import math
import random
from typing import Final

from exporter.simulator.jobs import (
    JOB_TYPES,
    LIVE_STATUSES,
    RUNNING,
    STATUS_DESC,
    STOPPED_FLINK_STATE,
    SimJob,
    new_jid,
    user_id_for,
)

__all__ = ["DEFAULT_RUNNING_FRACTION", "populate_statuses", "random_job", "randomize_job_config"]

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


def randomize_job_config(job: SimJob, rng: random.Random) -> None:
    """Checkpoint and restart settings for a populated job (from its own generator)."""
    job.checkpoint_enabled = rng.random() < 0.85
    job.restart_when_exception = rng.random() < 0.8
    job.resume_max_num = rng.choice((-1, -1, 3, 5, 10))


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
