"""Template variables: data source, target, queue, job and the exporter's scrape job."""

from __future__ import annotations

from grafana.schema import Json, datasource

#: Grafana's query variable types.
LABEL_VALUES = 1
QUERY_RESULT = 3


def datasource_variable() -> Json:
    """The ``datasource`` variable: any Prometheus datasource, the default one first."""
    return {
        "current": {},
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


def query_variable(
    name: str,
    label: str,
    definition: str,
    description: str,
    *,
    multi: bool = True,
    regex: str = "",
    query_type: int = LABEL_VALUES,
) -> Json:
    """A query variable (``query_type`` label_values or query_result); multi adds All."""
    variable: Json = {
        "current": ({"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {}),
        "datasource": datasource(),
        "definition": definition,
        "description": description,
        "hide": 0,
        "includeAll": multi,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": {
            "qryType": query_type,
            "query": definition,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "regex": regex,
        "skipUrlSync": False,
        "sort": 5 if query_type == QUERY_RESULT else 1,
        "type": "query",
    }
    if multi:
        # ".*" rather than a list of the values: it also matches jobs without a queue (the
        # label is then empty and label_values cannot offer it).
        variable["allValue"] = ".*"
    return variable


def target_variable() -> Json:
    """``target``: the exporter's configured targets."""
    return query_variable(
        "target",
        "Target",
        "label_values(dli_up, target)",
        "DLI targets (config `targets[].name`) of the exporter.",
    )


def queue_variable() -> Json:
    """``queue``: the queues of the selected targets' jobs."""
    return query_variable(
        "queue",
        "Queue",
        'label_values(dli_job_info{target=~"$target"}, queue_name)',
        "DLI queues of the jobs. Jobs whose queue is unknown only appear under All.",
    )


def job_variable() -> Json:
    """``job``: one job id, shown as "name #id"."""
    expr = (
        'label_join(dli_job_info{target=~"$target", queue_name=~"$queue"}, '
        '"job_display", " #", "job_name", "job_id")'
    )
    return query_variable(
        "job",
        "Job",
        f"query_result({expr})",
        "The DLI job to show (value: job_id; text: job name #job_id).",
        multi=False,
        # Lookaheads so the order of the labels in the result does not matter.
        regex='/^(?=.*job_display="(?<text>[^"]*)")(?=.*job_id="(?<value>[^"]+)")/',
        query_type=QUERY_RESULT,
    )


def scrape_job_variable() -> Json:
    """``scrape_job``: Prometheus' job name for the exporter (only the exporter's own series)."""
    return {
        "current": {"text": "dli", "value": "dli"},
        "description": "Prometheus scrape job name of the exporter (`up{job=...}`); regex.",
        "hide": 0,
        "label": "Scrape job",
        "name": "scrape_job",
        "options": [{"selected": True, "text": "dli", "value": "dli"}],
        "query": "dli",
        "skipUrlSync": False,
        "type": "textbox",
    }
