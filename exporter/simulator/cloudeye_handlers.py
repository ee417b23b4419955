"""Cloud Eye's v1 batch query of metric data, answered for the DLI jobs of `Projects`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from aiohttp import web

from exporter.dli.api import CES_MAX_METRICS_PER_CALL, CES_NAMESPACE
from exporter.simulator.cloudeye import (
    DATAPOINT_STEP_MS,
    UNITS,
    CloudEye,
    cloud_eye_value,
    datapoint_times,
)
from exporter.simulator.jobs import SimJob
from exporter.simulator.projects import Projects
from exporter.simulator.wire import BadRequest

__all__ = ["MAX_DATAPOINTS", "CloudEyeHandlers", "effective_from_ms"]

#: The most datapoints one query answers in all; beyond, Cloud Eye moves ``from`` later.
MAX_DATAPOINTS: Final = 3000
_PERIODS: Final = frozenset({"1", "60", "300", "1200", "3600", "14400", "86400"})
_FILTERS: Final = frozenset({"average", "max", "min", "sum", "variance"})
_MAX_DIMENSIONS: Final = 4
_JOB_DIMENSION: Final = "flink_job_id"
_ERROR_CODE: Final = "ces.0014"


@dataclass(frozen=True, slots=True)
class _Query:
    metrics: list[dict[str, Any]]
    from_ms: int
    to_ms: int
    period: str
    filter: str


class CloudEyeHandlers:
    """``POST /V1.0/{project_id}/batch-query-metric-data`` (the gateway checks signatures)."""

    def __init__(self, projects: Projects, cloud_eye: CloudEye) -> None:
        self._projects = projects
        self._cloud_eye = cloud_eye

    async def batch_query(self, request: web.Request) -> web.Response:
        """One entry per queried metric, in order, with the datapoints the job has."""
        project_id = request.match_info["project_id"]
        try:
            query = _parse(await request.read())
        except BadRequest as err:
            return web.json_response({"error_code": _ERROR_CODE, "error_msg": str(err)}, status=400)
        from_ms = effective_from_ms(query.from_ms, query.to_ms, len(query.metrics))
        step_ms = max(DATAPOINT_STEP_MS, int(query.period) * 1000)
        times = datapoint_times(
            from_ms,
            query.to_ms,
            now_ms=self._projects.now_ms(),
            lag_seconds=self._cloud_eye.lag_seconds,
            step_ms=step_ms,
        )
        entries = []
        for metric in query.metrics:
            name = metric["metric_name"]
            job = self._job(project_id, metric["dimensions"])
            datapoints = []
            if job is not None:
                for timestamp in times:
                    value = cloud_eye_value(job, name, timestamp)
                    if value is not None:
                        datapoints.append({query.filter: value, "timestamp": timestamp})
            self._cloud_eye.datapoints_served += len(datapoints)
            entries.append(
                {
                    "namespace": metric["namespace"],
                    "metric_name": name,
                    "dimensions": metric["dimensions"],
                    "unit": UNITS.get(name, ""),
                    "datapoints": datapoints,
                }
            )
        return web.json_response({"metrics": entries})

    def _job(self, project_id: str, dimensions: list[dict[str, str]]) -> SimJob | None:
        value = next(d["value"] for d in dimensions if d["name"] == _JOB_DIMENSION)
        try:
            job_id = int(value)
        except ValueError:
            return None
        return self._projects.get_job(project_id, job_id)


def effective_from_ms(from_ms: int, to_ms: int, metric_count: int) -> float:
    """``from`` as Cloud Eye applies it: later when the query would exceed 3000 datapoints."""
    if metric_count * (to_ms - from_ms) / DATAPOINT_STEP_MS <= MAX_DATAPOINTS:
        return from_ms
    return to_ms - MAX_DATAPOINTS * DATAPOINT_STEP_MS / metric_count


def _parse(raw: bytes) -> _Query:
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not 1 <= len(metrics) <= CES_MAX_METRICS_PER_CALL:
        raise BadRequest(f"metrics must be a list of 1 to {CES_MAX_METRICS_PER_CALL} metrics.")
    for index, metric in enumerate(metrics):
        _check_metric(index, metric)
    from_ms, to_ms = body.get("from"), body.get("to")
    if not (_is_int(from_ms) and _is_int(to_ms)):
        raise BadRequest("from and to must be integers (epoch milliseconds).")
    if from_ms >= to_ms:
        raise BadRequest("from must be earlier than to.")
    period, filter_ = body.get("period"), body.get("filter")
    if period not in _PERIODS:
        raise BadRequest(f"period must be one of {sorted(_PERIODS, key=int)}.")
    if filter_ not in _FILTERS:
        raise BadRequest(f"filter must be one of {sorted(_FILTERS)}.")
    return _Query(metrics, from_ms, to_ms, str(period), str(filter_))


def _check_metric(index: int, metric: object) -> None:
    where = f"metrics[{index}]"
    if not isinstance(metric, dict):
        raise BadRequest(f"{where} must be an object.")
    if metric.get("namespace") != CES_NAMESPACE:
        raise BadRequest(f"{where}.namespace must be {CES_NAMESPACE}.")
    name = metric.get("metric_name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.metric_name must be a non-empty string.")
    dimensions = metric.get("dimensions")
    if not isinstance(dimensions, list) or not 1 <= len(dimensions) <= _MAX_DIMENSIONS:
        raise BadRequest(f"{where}.dimensions must be a list of 1 to {_MAX_DIMENSIONS}.")
    for dimension in dimensions:
        if not (
            isinstance(dimension, dict)
            and isinstance(dimension.get("name"), str)
            and isinstance(dimension.get("value"), str)
            and dimension["value"]
        ):
            raise BadRequest(f"{where}.dimensions need a string name and value each.")
    if not any(dimension["name"] == _JOB_DIMENSION for dimension in dimensions):
        raise BadRequest(f"{where}.dimensions must include {_JOB_DIMENSION}.")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
