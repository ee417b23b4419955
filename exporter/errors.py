"""`DliApiError`: every way a DLI or IAM call can fail, in one type, built from any error body."""

from __future__ import annotations

import aiohttp

from exporter.values import clean_text, loads_json


class DliApiError(Exception):
    """A DLI call failed: an HTTP error status, a timeout, a broken connection or a bad body."""

    #: Seconds the server asked us to wait (``Retry-After``), when it did.
    retry_after: float | None = None

    def __init__(
        self,
        operation: str,
        code: str,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.operation = operation
        #: What ``dli_api_requests_total`` counts: the HTTP status, "timeout" or "error".
        self.code = code
        self.status = status
        # Parts of these come from the upstream's answer: kept printable and short.
        self.error_code = None if error_code is None else clean_text(error_code, 64)
        self.error_msg = clean_text(message, 300)
        self.request_id = None if request_id is None else clean_text(request_id, 128)
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for logs and the status page (never carries credentials)."""
        parts = [f"{self.operation} failed", f"code={self.code}"]
        if self.error_code:
            parts.append(f"error_code={self.error_code}")
        parts.append(f"error_msg={self.error_msg!r}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


def describe_client_error(exc: aiohttp.ClientError) -> str:
    """A short description of a transport failure (no headers, so no credentials)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def error_from_body(
    operation: str, status: int, body: bytes, request_id: str | None
) -> DliApiError:
    """Build the error from any of the error-body shapes DLI, APIG, IAM or a proxy send."""
    error_code: str | None = None
    message: str | None = None
    try:
        payload = loads_json(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error_code, message = _code_and_message(payload)
        nested = payload.get("error")
        if isinstance(nested, dict):  # IAM: {"error": {"code": 401, "message", "title"}}
            nested_code, nested_message = _code_and_message(nested)
            if error_code is None and nested_code != str(status):
                error_code = nested_code
            if message is None:
                message = nested_message
    if message is None:
        message = _plain_text(body) or f"HTTP {status}"
    return DliApiError(
        operation,
        str(status),
        message[:300],
        status=status,
        error_code=error_code,
        request_id=request_id,
    )


def _code_and_message(payload: dict[str, object]) -> tuple[str | None, str | None]:
    """The error code and message of one JSON object, whichever key spelling it uses."""
    error_code: str | None = None
    message: str | None = None
    for code_key, msg_key in (
        ("error_code", "error_msg"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ):
        code_value, msg_value = payload.get(code_key), payload.get(msg_key)
        if error_code is None and isinstance(code_value, str | int) and code_value != "":
            error_code = str(code_value)
        if message is None and isinstance(msg_value, str) and msg_value.strip():
            message = msg_value
    title = payload.get("title")
    if message is None and isinstance(title, str) and title.strip():
        message = title
    return error_code, message


def _plain_text(body: bytes) -> str:
    """A short, single-line rendering of a non-JSON body (an HTML error page from a proxy)."""
    text = body[:2000].decode("utf-8", errors="replace")
    inside_tag = False
    chars: list[str] = []
    for char in text:
        if char == "<":
            inside_tag = True
        elif char == ">":
            inside_tag = False
            chars.append(" ")
        elif not inside_tag:
            chars.append(char)
    return " ".join("".join(chars).split())[:200]
