"""What the exporter's exposition must say about each job the stand-in reported."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.standin.data import DOCUMENTED_STATUSES, FLINK_STATES, RUNNING, Json

#: The name of the exporter target that polls the stand-in.
TARGET: Final = "standin"


def seconds(ms: Any) -> float | None:
    """Milliseconds as the exporter publishes them (seconds); ``None`` stays ``None``."""
    return None if ms is None else float(ms) / 1000


def number(value: Any) -> float | None:
    """A reported number or flag as a sample value; ``None`` stays ``None``."""
    return None if value is None else float(value)


def expected_scalars(job: Json, graph: Json | None) -> dict[str, float | None]:
    """Sample name -> the value the stand-in reported for it (``None``: no sample)."""
    config = job.get("job_config") or {}
    graph = graph or {}
    real_cu = config.get("real_cu_number")
    start = job.get("start_time")
    return {
        "dli_job_duration_seconds": seconds(graph.get("duration", job.get("duration"))),
        "dli_job_restarts_total": number(job.get("restart_times")),
        "dli_job_create_time_seconds": seconds(job.get("create_time")),
        "dli_job_start_time_seconds": seconds(start) if start else None,
        "dli_job_has_savepoint": number(job.get("has_savepoint")),
        "dli_job_stoppable": number(graph.get("isStoppable")),
        "dli_job_compute_units": number(config.get("cu_number")),
        "dli_job_manager_compute_units": number(config.get("manager_cu_number")),
        "dli_job_actual_compute_units": number(
            config.get("cu_number") if real_cu == 0 else real_cu
        ),
        "dli_job_parallelism": number(config.get("parallel_number")),
        "dli_job_taskmanager_compute_units": number(config.get("tm_cus")),
        "dli_job_taskmanager_slots": number(config.get("tm_slot_num")),
        "dli_job_executors": number(config.get("executor_number")),
        "dli_job_executor_compute_units": number(config.get("executor_cu_number")),
    }


def expected_state_set(current: str | None, known: Iterable[str]) -> dict[str, float]:
    """A state set: every known state, 1 for ``current``, plus ``current`` if unknown."""
    if current is None:
        return {}
    states = {state: float(state == current) for state in known}
    return {**states, current: 1.0}


def expected_info(job: Json) -> dict[str, str]:
    """The ``dli_job_info`` labels the job should get (empty when not reported)."""
    config = job.get("job_config") or {}
    return {
        "job_type": job.get("job_type") or "",
        "queue_name": job.get("queue_name") or "",
        "user_name": job.get("user_name") or "",
        "run_mode": job.get("run_mode") or "",
        "flink_version": config.get("flink_version") or "",
    }


def job_samples(exposition: str) -> dict[str, dict[str, list[Sample]]]:
    """job_id -> sample name -> the samples carrying that job id."""
    index: dict[str, dict[str, list[Sample]]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if "job_id" in sample.labels:
                index.setdefault(sample.labels["job_id"], {}).setdefault(sample.name, [])
                index[sample.labels["job_id"]][sample.name].append(sample)
    return index


def state_set_problems(
    job_id: str, name: str, label: str, samples: list[Sample], want: dict[str, float]
) -> list[str]:
    """A mismatch message when a state-set's samples are not exactly ``want``."""
    got = {sample.labels[label]: sample.value for sample in samples}
    if got != want or len(samples) != len(got):
        return [f"job {job_id} {name}: got {sorted(got.items())}, want {sorted(want.items())}"]
    return []


def job_problems(job: Json, graph: Json | None, samples: Mapping[str, list[Sample]]) -> list[str]:
    """Every way the job's series differ from what the stand-in reported."""
    job_id = str(job["job_id"])
    problems = []
    for name, value in expected_scalars(job, graph).items():
        got = [sample.value for sample in samples.get(name, [])]
        want = [] if value is None else [value]
        if got != want:
            problems.append(f"job {job_id} {name}: got {got}, want {want}")
    want_status = expected_state_set(job.get("status"), DOCUMENTED_STATUSES)
    problems += state_set_problems(
        job_id, "status", "status", samples.get("dli_job_status", []), want_status
    )
    want_flink = expected_state_set((graph or {}).get("state"), FLINK_STATES)
    problems += state_set_problems(
        job_id, "flink state", "state", samples.get("dli_job_flink_state", []), want_flink
    )
    info = samples.get("dli_job_info", [])
    want_info = expected_info(job)
    if [(s.value, {k: s.labels[k] for k in want_info}) for s in info] != [(1.0, want_info)]:
        problems.append(f"job {job_id} info: got {info}, want {want_info}")
    labels = {(s.labels["target"], s.labels["job_name"]) for ss in samples.values() for s in ss}
    if labels != {(TARGET, job.get("name") or "")}:
        problems.append(f"job {job_id} target/job_name labels: {labels}")
    return problems


def exposition_problems(exposition: str, jobs: list[Json], graphs: dict[int, Json]) -> list[str]:
    """Every difference between the exposition and the stand-in's jobs, for all jobs at once."""
    index = job_samples(exposition)
    problems = [
        f"unknown job {job_id} exported"
        for job_id in index.keys() - {str(job["job_id"]) for job in jobs}
    ]
    for job in jobs:
        graph = graphs.get(job["job_id"]) if job.get("status") == RUNNING else None
        problems += job_problems(job, graph, index.get(str(job["job_id"]), {}))
    return problems
