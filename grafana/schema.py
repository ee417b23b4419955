"""What every dashboard shares: the JSON type, schema version, tags, uids and data source."""

from __future__ import annotations

from typing import Any, Final

#: A JSON object as Grafana stores it.
Json = dict[str, Any]

SCHEMA_VERSION: Final = 39
TAGS: Final = ("dli",)
OVERVIEW_UID: Final = "dli-overview"
JOB_DETAIL_UID: Final = "dli-job-detail"
EXPORTER_HEALTH_UID: Final = "dli-exporter-health"


def datasource() -> Json:
    """The datasource reference every panel and query uses: the ``datasource`` variable."""
    return {"type": "prometheus", "uid": "${datasource}"}
