"""The shape every DLI answer shares: an object, ``is_success``, and lists that may be null.

The resource parsers read their answers through these, so a wrong shape or a failure reported
in the body is one kind of `ResponseParseError` with one wording, whichever API sent it.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.dli.transport import ResponseParseError
from exporter.values import clean_text, read_bool, read_str

__all__ = ["require_list", "require_mapping", "successful_body"]


def require_mapping(value: object, what: str) -> Mapping[str, object]:
    """``value`` when it is an object; raises naming ``what`` otherwise."""
    if not isinstance(value, Mapping):
        kind = "missing" if value is None else f"a {type(value).__name__}, not an object"
        raise ResponseParseError(f"{what} is {kind}")
    return value


def successful_body(payload: object) -> Mapping[str, object]:
    """The answer's body; raises when it is not an object or says ``is_success: false``.

    ``is_success`` may be a boolean or the string ``"true"``/``"false"``; absent means success.
    """
    body = require_mapping(payload, "response body")
    if read_bool(body.get("is_success", True), "is_success", None) is False:
        message = read_str(body.get("message"), "message", None, limit=200) or "no message"
        raise ResponseParseError(f"is_success is false: {clean_text(message, 200)}")
    return body


def require_list(body: Mapping[str, object], key: str, what: str | None = None) -> list[object]:
    """The list under ``key`` (absent or null: empty); raises when it is something else."""
    items = body.get(key, [])
    if items is None:
        return []
    if not isinstance(items, list):
        raise ResponseParseError(f"{what or key} is {type(items).__name__}, not a list")
    return items
