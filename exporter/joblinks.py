"""Links from the status page to Grafana's job-detail dashboard (``--web.grafana-url``)."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode, urlsplit

__all__ = ["JOB_DASHBOARD_UID", "job_dashboard_url", "parse_grafana_url"]

#: The uid of ``grafana/dashboards/dli-job-detail.json`` (variables ``target`` and ``job``).
JOB_DASHBOARD_UID: Final = "dli-job-detail"


def parse_grafana_url(text: str) -> str:
    """``--web.grafana-url``: an absolute http(s) URL without query or fragment; no trailing
    slash. Raises `ValueError` naming the flag."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"--web.grafana-url: {text!r} is not an http(s) URL like https://grafana.example.com"
        )
    return text.strip().rstrip("/")


def job_dashboard_url(grafana_url: str, target: str, job_id: int) -> str:
    """The job-detail dashboard of one job (not HTML-escaped: the page escapes it)."""
    query = urlencode({"var-target": target, "var-job": str(job_id)})
    return f"{grafana_url}/d/{JOB_DASHBOARD_UID}?{query}"
