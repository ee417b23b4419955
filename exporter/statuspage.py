"""The status page at ``/``: what needs attention first, then every target, its sources and
the latest poll's API calls.

Plain server-rendered HTML from the latest snapshots, no JavaScript, laid out for a phone too.
Every value from the API or the config is escaped; the templates are in ``exporter/templates/``.
Which jobs need attention is `exporter.attention`'s; at most `MAX_ROWS` are shown per target.
"""

from __future__ import annotations

import html
import re
import string
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Final

from exporter import __version__
from exporter.attention import (
    BACK_PRESSURED,
    FAILED,
    FLINK_NOT_RUNNING,
    RESTART_LOOP,
    STALLED,
    Attention,
    needing_attention,
)
from exporter.joblinks import job_dashboard_url
from exporter.snapshot import Snapshot

__all__ = ["MAX_ROWS", "status_page"]

#: Jobs shown per target in the attention list; the rest are counted ("and N more").
MAX_ROWS: Final = 200
#: The order problems are listed in, the worst first.
_SEVERITY: Final = {
    kind: rank
    for rank, kind in enumerate((FAILED, RESTART_LOOP, FLINK_NOT_RUNNING, STALLED, BACK_PRESSURED))
}


def _template(name: str) -> string.Template:
    """A page template shipped in ``exporter/templates/`` (read once, at import); the file's
    final newline is not part of it (rows are joined by newlines)."""
    text = (resources.files("exporter") / "templates" / name).read_text(encoding="utf-8")
    return string.Template(text.rstrip("\n"))


_PAGE: Final = _template("status.html")
_TARGET_ROW: Final = _template("status_row.html")
_SECTION: Final = _template("status_attention.html")
_TABLE: Final = _template("status_attention_table.html")
_JOB_ROW: Final = _template("status_attention_row.html")
_CALLS: Final = _template("status_calls.html")
_CALL_ROW: Final = _template("status_call_row.html")


def status_page(
    snapshots: Iterable[Snapshot], credentials: Mapping[str, str], grafana_url: str | None = None
) -> str:
    """The whole page; ``credentials``: each target's description of its credential source;
    ``grafana_url``: where the job-detail dashboard links point (none without it)."""
    snapshots = list(snapshots)
    found = {s.target: _worst_first(needing_attention(s)) for s in snapshots}
    troubled = [s for s in snapshots if found[s.target] or _target_notes(s)]
    troubled.sort(key=lambda s: (s.polled and s.up, -len(found[s.target])))
    attention = "\n".join(_section(s, found[s.target], grafana_url) for s in troubled)
    names = {s.target for s in troubled}
    healthy = [s for s in snapshots if s.target not in names]
    # Every piece below is markup built from escaped values; the rest is escaped here.
    return (
        _PAGE.substitute(
            version=html.escape(__version__),
            summary=html.escape(_summary(snapshots, found)),
            attention=attention or "<p>Nothing needs attention.</p>",
            healthy=_healthy(healthy),
            rows="\n".join(_target_row(s, credentials.get(s.target, "")) for s in snapshots),
            calls="\n".join(_calls(s) for s in snapshots) or "<p>No target is configured.</p>",
        )
        + "\n"
    )


def _worst_first(found: Iterable[Attention]) -> list[Attention]:
    return sorted(found, key=lambda a: min(_SEVERITY.get(p.kind, 99) for p in a.problems))


def _summary(snapshots: Sequence[Snapshot], found: Mapping[str, list[Attention]]) -> str:
    jobs = sum(len(rows) for rows in found.values())
    down = sum(1 for s in snapshots if s.polled and not s.up)
    targets = f"{len(snapshots)} target{'s' if len(snapshots) != 1 else ''}"
    if not jobs and not down:
        return f"All is well: {targets}, no job needs attention."
    needs = f"{jobs} job{' needs' if jobs == 1 else 's need'} attention"
    return f"{needs}; {down} of {targets} down."


def _state(snapshot: Snapshot) -> str:
    return ("up" if snapshot.up else "down") if snapshot.polled else "pending"


def _target_notes(snapshot: Snapshot) -> list[str]:
    """Why a target itself needs attention: it is down, or one of its sources is failing."""
    notes = []
    if snapshot.polled and not snapshot.up:
        notes.append(f"down: {snapshot.last_error or 'the latest poll failed'}")
    notes.extend(
        f"source {name} down: {result.error or 'failed'}"
        for name, result in snapshot.sources.items()
        if not result.ok
    )
    return notes


def _section(snapshot: Snapshot, found: Sequence[Attention], grafana_url: str | None) -> str:
    shown = found[:MAX_ROWS]
    rows = [_job_row(snapshot.target, a, grafana_url) for a in shown]
    if len(found) > len(shown):
        more = len(found) - len(shown)
        rows.append(f'<tr class="more"><td colspan="3">and {more} more</td></tr>')
    notes = "".join(f'<p class="bad">{html.escape(n)}</p>' for n in _target_notes(snapshot))
    count, jobs = len(found), len(snapshot.jobs)
    return _SECTION.substitute(
        anchor=html.escape(_anchor(snapshot.target)),
        target=html.escape(snapshot.target),
        state=_state(snapshot),
        count=html.escape(f"{count} of {jobs} job{' needs' if jobs == 1 else 's need'} attention"),
        notes=notes,
        table=_TABLE.substitute(rows="\n".join(rows)) if rows else "",
    )


def _anchor(target: str) -> str:
    return "target-" + re.sub(r"[^A-Za-z0-9_-]", "_", target)


def _job_row(target: str, attention: Attention, grafana_url: str | None) -> str:
    job, graph = attention.state.job, attention.state.graph
    status = job.status or "unknown status"
    if graph is not None and graph.state:
        status += f", Flink {graph.state}"
    link = ""
    if grafana_url is not None:
        url = html.escape(job_dashboard_url(grafana_url, target, job.job_id))
        link = f'<br><a class="grafana" href="{url}">Grafana dashboard</a>'
    kinds = "<br>".join(
        f'<span class="kind {_css(p.kind)}">{html.escape(p.kind)}</span>'
        for p in attention.problems
    )
    reasons = "".join(
        f'<div class="problem"><span class="reason">{html.escape(p.reason)}</span>'
        + (f'<div class="detail">{html.escape(p.detail)}</div>' if p.detail else "")
        + "</div>"
        for p in attention.problems
    )
    return _JOB_ROW.substitute(
        job_id=html.escape(str(job.job_id)),
        job_name=html.escape(job.name or "(no name)"),
        status=html.escape(status),
        link=link,
        kinds=kinds,
        reasons=reasons,
    )


def _css(kind: str) -> str:
    return re.sub(r"[^a-z]+", "-", kind.lower()).strip("-")


def _healthy(snapshots: Sequence[Snapshot]) -> str:
    if not snapshots:
        return "<p>None.</p>"
    items = []
    for snapshot in snapshots:
        if snapshot.polled:
            jobs = len(snapshot.jobs)
            what = f"up, {jobs} job{'s' if jobs != 1 else ''}, none needs attention"
        else:
            what = "first poll pending"
        items.append(f"<li><b>{html.escape(snapshot.target)}</b>: {html.escape(what)}</li>")
    return '<ul class="good">' + "".join(items) + "</ul>"


def _target_row(snapshot: Snapshot, credentials: str) -> str:
    cells = {
        "target": snapshot.target,
        "state": _state(snapshot),
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


def _calls(snapshot: Snapshot) -> str:
    rows = [
        _CALL_ROW.substitute(
            operation=html.escape(call.operation),
            code=html.escape(call.code),
            count=str(call.count),
            retries=str(call.retries),
            total=f"{call.total_seconds:.3f}s",
            max=f"{call.max_seconds:.3f}s",
        )
        for call in snapshot.calls
    ]
    if not rows:
        none = "not polled yet" if not snapshot.polled else "no calls"
        rows = [f'<tr><td colspan="6">{none}</td></tr>']
    return _CALLS.substitute(target=html.escape(snapshot.target), rows="\n".join(rows))


def _format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    try:
        stamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # out of datetime's range, or NaN
        return f"invalid time {timestamp!r}"
    age = max(0.0, time.time() - timestamp)
    return f"{stamp} ({age:.0f}s ago)"
