"""The status page at ``/``: every target's state and sources, and the jobs that failed and why.

Plain server-rendered HTML from the latest snapshots. Every value from the API or the config is
escaped; the templates are in ``exporter/templates/``.
"""

from __future__ import annotations

import html
import string
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Final

from exporter import __version__
from exporter.dli.failure import FAILED_STATUSES, failure_reason
from exporter.snapshot import Snapshot

__all__ = ["status_page"]


def _template(name: str) -> string.Template:
    """A page template shipped in ``exporter/templates/`` (read once, at import); the file's
    final newline is not part of it (rows are joined by newlines)."""
    text = (resources.files("exporter") / "templates" / name).read_text(encoding="utf-8")
    return string.Template(text.rstrip("\n"))


_PAGE: Final = _template("status.html")
_TARGET_ROW: Final = _template("status_row.html")
_FAILED_ROW: Final = _template("status_failed_row.html")


def status_page(snapshots: Iterable[Snapshot], credentials: Mapping[str, str]) -> str:
    """The whole page; ``credentials``: each target's description of its credential source."""
    snapshots = list(snapshots)
    rows = "\n".join(_target_row(s, credentials.get(s.target, "")) for s in snapshots)
    failed = "\n".join(_failed_rows(snapshots)) or _NO_FAILED
    # ``rows`` and ``failed`` are markup built from escaped values; the rest is escaped here.
    return _PAGE.substitute(version=html.escape(__version__), rows=rows, failed=failed) + "\n"


_NO_FAILED: Final = '<tr><td colspan="6">No job is in a failed status.</td></tr>'


def _target_row(snapshot: Snapshot, credentials: str) -> str:
    state = ("up" if snapshot.up else "down") if snapshot.polled else "pending"
    cells = {
        "target": snapshot.target,
        "state": state,
        "jobs": str(len(snapshot.jobs)) if snapshot.polled else "",
        "last_success": _format_time(snapshot.last_success_time),
        "poll_duration": (
            f"{snapshot.poll_duration_seconds:.2f}s" if snapshot.poll_duration_seconds else ""
        ),
        "last_error": snapshot.last_error or "",
        "sources": "; ".join(_source_states(snapshot)),
        "credentials": credentials,
    }
    return _TARGET_ROW.substitute({name: html.escape(cell) for name, cell in cells.items()})


def _source_states(snapshot: Snapshot) -> Iterator[str]:
    for name, result in snapshot.sources.items():
        yield f"{name} up" if result.ok else f"{name} down: {result.error or 'failed'}"


def _failed_rows(snapshots: Iterable[Snapshot]) -> Iterator[str]:
    for snapshot in snapshots:
        for state in snapshot.jobs:
            job = state.job
            if job.status in FAILED_STATUSES:
                cells = {
                    "target": snapshot.target,
                    "job_id": str(job.job_id),
                    "job_name": job.name or "",
                    "status": job.status or "",
                    "reason": failure_reason(job.status_desc),
                    "text": job.status_desc or "",
                }
                yield _FAILED_ROW.substitute({k: html.escape(v) for k, v in cells.items()})


def _format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    try:
        stamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # out of datetime's range, or NaN
        return f"invalid time {timestamp!r}"
    age = max(0.0, time.time() - timestamp)
    return f"{stamp} ({age:.0f}s ago)"
