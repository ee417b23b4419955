"""Generate the Grafana dashboards in ``grafana/dashboards/`` (one JSON file per dashboard).

The JSON is committed; this script is its source, so the three dashboards share one style (units,
descriptions, variables, colours) and a review sees a readable diff. Run from the repository root::

    .venv/bin/python grafana/build_dashboards.py          # rewrite the JSON files
    .venv/bin/python grafana/build_dashboards.py --check  # exit 1 when they are out of date

Every query goes through the ``${datasource}`` variable and filters by ``target=~"$target"``.
Metric names are the exporter's (README "Metrics") and the recording rules of prometheus/rules.yml.
Each dashboard is a module ``grafana/dashboard_*.py``, built from the panel library (``panels``,
``presets``, ``targets``, ``variables``, ``styles``, ``promql``, ``board``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

if not __package__:  # run as a script: import the package from the repository root instead
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from grafana.dashboard_exporter_health import DEFAULT_POLL_INTERVAL_SECONDS, exporter_health
from grafana.dashboard_job_detail import job_detail
from grafana.dashboard_overview import overview
from grafana.promql import BAD_STATUSES
from grafana.schema import Json
from grafana.styles import FLINK_STATE_COLORS, STATUS_COLORS
from grafana.variables import job_variable

__all__ = [
    "BAD_STATUSES",
    "DASHBOARD_DIR",
    "DEFAULT_POLL_INTERVAL_SECONDS",
    "FLINK_STATE_COLORS",
    "STATUS_COLORS",
    "Json",
    "build_all",
    "exporter_health",
    "job_detail",
    "job_variable",
    "main",
    "overview",
    "render",
]

DASHBOARD_DIR: Final = Path(__file__).resolve().parent / "dashboards"


def build_all() -> dict[str, Json]:
    """Every dashboard by file name."""
    return {
        f"{board['uid']}.json": board for board in (overview(), job_detail(), exporter_health())
    }


def render(board: Json) -> str:
    """The dashboard as committed: 2-space indented JSON, key order as built, final newline."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` report the ones that differ (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a diff")
    args = parser.parse_args(argv)
    stale = []
    for name, board in build_all().items():
        path = DASHBOARD_DIR / name
        text = render(board)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {DASHBOARD_DIR / name}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
