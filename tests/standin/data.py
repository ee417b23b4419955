"""The stand-in's job set: hand-picked awkward jobs (``jobs.json``) among an ordinary fleet.

Statuses and Flink states are written out here rather than imported, so the exporter's own lists
are checked too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

Json = dict[str, Any]

DOCUMENTED_STATUSES: Final = (
    "job_init",
    "job_submitting",
    "job_submit_fail",
    "job_running",
    "job_running_exception",
    "job_downloading",
    "job_idle",
    "job_canceling",
    "job_cancel_success",
    "job_cancel_fail",
    "job_savepointing",
    "job_arrearage_stopped",
    "job_arrearage_recovering",
    "job_finish",
)
FLINK_STATES: Final = (
    "INITIALIZING",
    "CREATED",
    "RUNNING",
    "FAILING",
    "FAILED",
    "CANCELLING",
    "CANCELED",
    "FINISHED",
    "RESTARTING",
    "SUSPENDED",
    "RECONCILING",
)
#: What ``jobs.json`` uses for a status and a Flink state DLI may add one day.
UNKNOWN_STATUS: Final = "job_teleporting"
UNKNOWN_FLINK_STATE: Final = "RESCALING"
RUNNING: Final = "job_running"
T0: Final = 1_700_000_000_000  # ms; the special jobs' times are just after it
FLEET_SIZE: Final = 110

#: ``[{"case": why it is there, "job": list entry, "graph": execution graph if running}]``.
SPECIAL_JOBS_FILE: Final = Path(__file__).with_name("jobs.json")


def special_jobs() -> list[tuple[Json, Json | None]]:
    """Hand-picked awkward jobs, each with its execution graph when it is running."""
    entries = json.loads(SPECIAL_JOBS_FILE.read_text(encoding="utf-8"))
    return [(entry["job"], entry.get("graph")) for entry in entries]


def fleet_job(i: int) -> tuple[Json, Json | None]:
    """The i-th ordinary job (half of them running, cycling through statuses and Flink states)."""
    running = i % 2 == 0
    others = [status for status in DOCUMENTED_STATUSES if status != RUNNING]
    status = RUNNING if running else others[(i // 2) % len(others)]
    job_id = 100_000 + 7 * i
    created = T0 + i * 3_600_123
    never_started = status in ("job_init", "job_submitting", "job_submit_fail")
    started = 0 if never_started else created + 60_000 + i
    job = {
        "job_id": job_id,
        "name": f"fleet-{i:03d}",
        "desc": f"job number {i}",
        "user_name": ("alice", "bob", "etl-robot")[i % 3],
        "job_type": ("flink_sql_job", "flink_opensource_sql_job", "flink_jar_job")[i % 3],
        "status": status,
        "status_desc": "",
        "create_time": created,
        "start_time": started,
        "duration": 0 if never_started else i * 61_007,
        "root_id": -1,
        "run_mode": ("shared_cluster", "exclusive_cluster", "edge_node")[i % 3],
        "queue_name": f"queue-{i % 4}",
        "has_savepoint": i % 5 == 0,
        "restart_times": (i * 13) % 7,
        "update_time": created + 1,
        "job_config": {
            "checkpoint_enabled": i % 2 == 1,
            "cu_number": 2 + i % 15,
            "manager_cu_number": 1 + i % 2,
            "parallel_number": 1 + i % 8,
            "tm_cus": 1 + i % 4,
            "tm_slot_num": 1 + i % 6,
            "real_cu_number": 0 if i % 3 == 0 else 3 + i % 20,
            "executor_number": i % 5,
            "executor_cu_number": 1 + i % 3,
            "flink_version": ("1.12", "1.15", "1.17")[i % 3],
        },
    }
    if not running:
        return job, None
    graph = {
        "jid": f"{job_id:032x}",
        "name": job["name"],
        "isStoppable": i % 4 == 0,
        "state": FLINK_STATES[(i // 2) % len(FLINK_STATES)],
        "start-time": started,
        "end-time": -1,
        "duration": i * 61_007 + 12_345,
    }
    return job, graph


def standin_data() -> tuple[list[Json], dict[int, Json]]:
    """A fresh copy of the jobs (a special one in every fifth slot) and running jobs' graphs."""
    fleet = [fleet_job(i) for i in range(FLEET_SIZE)]
    specials = special_jobs()
    ordered: list[tuple[Json, Json | None]] = []
    for index, item in enumerate(fleet):
        if index % 4 == 0 and specials:
            ordered.append(specials.pop(0))
        ordered.append(item)
    ordered.extend(specials)
    jobs = [job for job, _ in ordered]
    graphs = {job["job_id"]: graph for job, graph in ordered if graph is not None}
    return jobs, graphs
