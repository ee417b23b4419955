"""Property tests: whatever JSON arrives, the parsers return a model or a ResponseParseError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.dli.jobmodel import (
    ExecuteGraph,
    JobListPage,
    parse_execute_graph,
    parse_job_list_page,
)
from exporter.dli.transport import ResponseParseError

# Any JSON value, as json.loads can produce it.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)

JOB_KEYS = (
    "job_id",
    "name",
    "job_type",
    "status",
    "queue_name",
    "user_name",
    "run_mode",
    "create_time",
    "start_time",
    "duration",
    "restart_times",
    "has_savepoint",
    "job_config",
)
CONFIG_KEYS = (
    "cu_number",
    "manager_cu_number",
    "real_cu_number",
    "parallel_number",
    "tm_cus",
    "tm_slot_num",
    "executor_number",
    "executor_cu_number",
    "flink_version",
)
GRAPH_KEYS = ("state", "duration", "start-time", "isStoppable", "jid", "end-time")

# Documented keys with values of any type: the realistic way a response goes wrong.
job_configs = st.fixed_dictionaries({}, optional={key: json_values for key in CONFIG_KEYS})
jobs = st.fixed_dictionaries(
    {}, optional={**{key: json_values for key in JOB_KEYS}, "job_config": job_configs | json_values}
)
list_bodies = st.fixed_dictionaries(
    {},
    optional={
        "is_success": json_values,
        "message": json_values,
        "job_list": st.fixed_dictionaries(
            {}, optional={"total_count": json_values, "jobs": st.lists(jobs | json_values)}
        )
        | json_values,
    },
)
graph_bodies = st.fixed_dictionaries(
    {},
    optional={
        "is_success": json_values,
        "execute_graph": st.fixed_dictionaries(
            {}, optional={key: json_values for key in GRAPH_KEYS}
        )
        | json_values,
    },
)


def through_json(value: Any) -> object:
    """What the client hands the parser: the value after a JSON round trip."""
    return json.loads(json.dumps(value))


@settings(max_examples=400)
@given(list_bodies | json_values)
def test_list_parser_returns_a_page_or_a_parse_error(body: Any) -> None:
    try:
        page = parse_job_list_page(through_json(body))
    except ResponseParseError:
        return
    assert isinstance(page, JobListPage)
    assert all(isinstance(job.job_id, int) for job in page.jobs)
    assert page.total_count is None or isinstance(page.total_count, int)


@settings(max_examples=300)
@given(graph_bodies | json_values)
def test_graph_parser_returns_a_graph_or_a_parse_error(body: Any) -> None:
    try:
        graph = parse_execute_graph(through_json(body))
    except ResponseParseError:
        return
    assert isinstance(graph, ExecuteGraph)
    assert graph.state is None or isinstance(graph.state, str)
    assert graph.duration_ms is None or isinstance(graph.duration_ms, int)


@settings(max_examples=200)
@given(st.lists(jobs, max_size=5))
def test_every_job_with_a_usable_id_is_kept(raw_jobs: list[dict[str, Any]]) -> None:
    body = through_json({"is_success": "true", "job_list": {"total_count": 5, "jobs": raw_jobs}})

    page = parse_job_list_page(body)

    assert len(page.jobs) + page.skipped == len(raw_jobs)
