"""Why a job failed: a bounded reason label taken from the free text of ``status_desc``.

The text (a message, often a Java stack trace) would make a label of unbounded values, so the
label is what identifies the failure's kind: the root cause's exception class (the last
``Caused by:``), else the first exception class named, else an API error code (``DLI.0005``),
else `UNRECOGNIZED`. The text is kept, its middle cut out when long, for the status page.
"""

from __future__ import annotations

import re
from typing import Final

from exporter.values import clean_text

__all__ = [
    "FAILED_STATUSES",
    "MAX_REASON_CHARS",
    "MAX_REASON_TEXT_CHARS",
    "NO_REASON",
    "UNRECOGNIZED",
    "failure_reason",
    "failure_text",
]

#: The DLI statuses of a job that failed (and is not just stopped or finished).
FAILED_STATUSES: Final = frozenset(
    {"job_submit_fail", "job_running_exception", "job_cancel_fail", "job_arrearage_stopped"}
)
#: The longest ``reason`` label value.
MAX_REASON_CHARS: Final = 64
#: How much of ``status_desc`` is kept for the status page.
MAX_REASON_TEXT_CHARS: Final = 2000
#: The reason when the text names nothing recognisable.
UNRECOGNIZED: Final = "unrecognized"
#: The reason when DLI gave no text at all.
NO_REASON: Final = "none"

_CUT: Final = " … "
_EXCEPTION: Final = re.compile(
    r"(?<![\w$.])(?:[a-z_$][\w$]*\.)*([A-Z][\w$]*(?:Exception|Error|Throwable|Failure))(?![\w$])"
)
_CAUSED_BY: Final = re.compile(r"Caused by:\s*")
_ERROR_CODE: Final = re.compile(r"(?<![\w.])([A-Z][A-Za-z]{1,15}\.\d{3,5})(?![\w.])")


def failure_text(raw: object) -> str | None:
    """``status_desc`` as kept: one clean line of at most `MAX_REASON_TEXT_CHARS`; else ``None``.

    A longer text keeps its start (the message) and its end (a stack trace's root cause).
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = clean_text(raw.strip(), len(raw))
    if len(text) <= MAX_REASON_TEXT_CHARS:
        return text
    half = (MAX_REASON_TEXT_CHARS - len(_CUT)) // 2
    return text[:half] + _CUT + text[-half:]


def failure_reason(text: str | None) -> str:
    """The bounded reason label for a failure described by ``text`` (see the module)."""
    if not text:
        return NO_REASON
    causes = _CAUSED_BY.split(text)
    for part in (causes[-1], text) if len(causes) > 1 else (text,):
        match = _EXCEPTION.search(part)
        if match:
            return match.group(1)[:MAX_REASON_CHARS]
    code = _ERROR_CODE.search(text)
    return code.group(1)[:MAX_REASON_CHARS] if code else UNRECOGNIZED
