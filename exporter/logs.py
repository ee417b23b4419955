"""Log formatting: logfmt or JSON lines, one event per line, structured fields included.

Modules log through ``logging.getLogger(__name__)`` and pass structured fields as
``extra={"fields": {...}}``; only the CLI configures handlers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final, TextIO

LEVELS: Final = ("debug", "info", "warning", "error")
FORMATS: Final = ("logfmt", "json")


def _event(record: logging.LogRecord) -> dict[str, object]:
    event: dict[str, object] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        event.update(fields)
    if record.exc_info and record.exc_info[0] is not None:
        event["exception"] = logging.Formatter().formatException(record.exc_info)
    return event


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_event(record), ensure_ascii=False, default=str)


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs, values quoted when they need it."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in _event(record).items())


def _logfmt_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and not any(char in text for char in ' "=\\\n\t') and text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False)


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """Send the root logger's records to ``stream`` (stderr) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would log every scrape at info; keep it for debug runs only.
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if level == "debug" else "WARNING")
