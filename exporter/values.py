"""One reader for every untrusted value: numbers, strings, JSON bodies and response headers.

Everything an upstream API sends passes through here before the exporter keeps it, so one
check covers every call and source: numbers are bounded (nothing later overflows a float or
publishes a negative counter), strings are valid UTF-8 of bounded length (a label value can
always be encoded and never explodes the exposition), headers follow their RFCs and never
raise. A value that fails a check is dropped or repaired and noted in a `ValueIssues`, which
the caller counts and logs; it never fails the whole response.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, Literal

#: Longest label value kept; longer ones are cut and end in `TRUNCATION_MARK`. DLI documents
#: job names of at most 57 characters; queue and user names are shorter still.
MAX_LABEL_CHARS: Final = 128
TRUNCATION_MARK: Final = "\u2026"
#: Largest integer a float holds exactly; no count, time in ms or size the API sends is near.
MAX_SAFE_INT: Final = 2**53
#: Largest id (DLI job ids are int64).
MAX_ID: Final = 2**63 - 1
#: A ``Retry-After`` beyond this is read as this (the poll deadline cuts it shorter anyway).
MAX_RETRY_AFTER: Final = 3600.0
#: JSON integer literals longer than this are not converted (Python refuses >4,300 digits and
#: the conversion is quadratic); they read as infinity, which every bound rejects.
_MAX_INT_DIGITS: Final = 20

#: Why a value was not kept as sent.
Problem = Literal["invalid", "out_of_range", "truncated", "repaired"]
PROBLEMS: Final[tuple[Problem, ...]] = ("invalid", "out_of_range", "truncated", "repaired")

_ASCII_INT: Final = re.compile(r"[+-]?[0-9]{1,19}", re.ASCII)
_DELAY_SECONDS: Final = re.compile(r"[0-9]+", re.ASCII)
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_HEADER_UNSAFE: Final = re.compile(r"[^\x21-\x7e]", re.ASCII)


class ValueIssues:
    """What the parse of one response dropped or repaired, counted by (field, problem).

    Made per response and filled by the readers below; the caller reports it (a counter and a
    log line), so a bad value shows without failing the response.
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, Problem]] = Counter()

    def note(self, field: str, problem: Problem) -> None:
        """Record that ``field`` had ``problem`` once more."""
        self.counts[(field, problem)] += 1

    def __bool__(self) -> bool:
        return bool(self.counts)


def read_int(
    value: object,
    field: str,
    issues: ValueIssues | None,
    *,
    low: int = 0,
    high: int = MAX_SAFE_INT,
) -> int | None:
    """An integer within ``[low, high]``; ``None`` when absent, unreadable or out of range.

    Accepts JSON integers, integral floats and ASCII decimal strings (the API sends some numbers
    as strings). Absent (``None``) is not a problem; anything else that is not kept is noted.
    """
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            _note(issues, field, "out_of_range")
            return None
        number = int(value) if value.is_integer() else None
    elif isinstance(value, str):
        text = value.strip()
        if _ASCII_INT.fullmatch(text):
            number = int(text)
        elif text.lstrip("+-").isdigit() and text.isascii():
            _note(issues, field, "out_of_range")  # more digits than any int64
            return None
    if number is None:
        _note(issues, field, "invalid")
        return None
    if not low <= number <= high:
        _note(issues, field, "out_of_range")
        return None
    return number


def read_float(
    value: object,
    field: str,
    issues: ValueIssues | None,
    *,
    low: float = 0.0,
    high: float = float(MAX_SAFE_INT),
) -> float | None:
    """A finite number within ``[low, high]``; ``None`` when absent, unreadable or out of range.

    Accepts JSON numbers and ASCII decimal strings; absent (``None``) is not a problem.
    """
    if value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value) if not isinstance(value, int) or abs(value) <= high else math.inf
    elif isinstance(value, str) and value.isascii() and len(value) <= _MAX_INT_DIGITS + 12:
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        _note(issues, field, "invalid")
        return None
    if not math.isfinite(number) or not low <= number <= high:
        _note(issues, field, "out_of_range")
        return None
    return number


def parse_natural(text: str, max_digits: int = 9) -> int | None:
    """A command-line count or port: 1 to ``max_digits`` ASCII digits, else ``None``.

    ``str.isdigit()`` accepts ``"²"`` and other digits ``int()`` refuses or reads differently.
    """
    text = text.strip()
    return int(text) if _DELAY_SECONDS.fullmatch(text) and len(text) <= max_digits else None


def read_bool(value: object, field: str, issues: ValueIssues | None) -> bool | None:
    """A boolean (or the strings ``"true"``/``"false"``); ``None`` when absent or unreadable."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    _note(issues, field, "invalid")
    return None


def read_str(
    value: object,
    field: str,
    issues: ValueIssues | None,
    *,
    limit: int = MAX_LABEL_CHARS,
) -> str | None:
    """A string that encodes as UTF-8 and has at most ``limit`` characters.

    Lone surrogates (JSON ``"\\ud800"``) become U+FFFD (noted ``repaired``); a longer string is
    cut to ``limit`` characters ending in `TRUNCATION_MARK` (noted ``truncated``).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        _note(issues, field, "invalid")
        return None
    text = value
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
        _note(issues, field, "repaired")
    if len(text) > limit:
        text = text[: limit - 1] + TRUNCATION_MARK
        _note(issues, field, "truncated")
    return text


def clean_text(text: str, limit: int) -> str:
    """``text`` made safe for a log line or a page: valid UTF-8, one line, at most ``limit``."""
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    if not text.isprintable():
        text = "".join(char if char.isprintable() else " " for char in text)
    return text if len(text) <= limit else text[: limit - 1] + TRUNCATION_MARK


def loads_json(body: bytes, issues: ValueIssues | None = None) -> object:
    """Decode a JSON body that may carry invalid UTF-8 (replaced, noted as field ``body``).

    Integer literals too long to convert read as infinity (rejected by `read_int`); raises
    ``ValueError`` for a body that is not JSON (including one nested too deeply).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        _note(issues, "body", "repaired")
    try:
        return json.loads(text.removeprefix("\ufeff"), parse_int=_parse_int)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def _parse_int(literal: str) -> int | float:
    return int(literal) if len(literal) <= _MAX_INT_DIGITS else math.inf


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` (RFC 9110 10.2.3) as seconds to wait; ``None`` when absent or unusable.

    Either ASCII delay-seconds or an HTTP-date; never raises, whatever the header holds.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return MAX_RETRY_AFTER if len(value) > 6 else min(MAX_RETRY_AFTER, float(value))
    if not value.isascii() or len(value) > 64:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        wait = (when - (now or datetime.now(UTC))).total_seconds()
    except OverflowError:
        return None
    return max(0.0, min(MAX_RETRY_AFTER, wait))


def header_token(value: str | None, limit: int = 128) -> str | None:
    """A header value kept for logs (a request id): visible ASCII only, at most ``limit``."""
    if value is None:
        return None
    token = _HEADER_UNSAFE.sub("?", value.strip())[:limit]
    return token or None


def _note(issues: ValueIssues | None, field: str, problem: Problem) -> None:
    if issues is not None:
        issues.note(field, problem)
