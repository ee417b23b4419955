"""What the simulated gateway, DLI and IAM share on the wire: query decoding and error bodies."""

from __future__ import annotations

from http import HTTPStatus
from typing import Final
from urllib.parse import unquote

from aiohttp import web
from multidict import MultiDict, MultiMapping

__all__ = [
    "USER",
    "BadRequest",
    "apig_error",
    "dli_error",
    "iam_error",
    "iam_error_body",
    "int_param",
    "parse_query",
    "project_not_found",
]

#: The IAM user a request authenticated as (or asked a token for), for the request log.
USER: Final = web.RequestKey("user", str)


class BadRequest(Exception):
    """A query parameter DLI (or a body IAM) would reject: answered as 400."""


def parse_query(request: web.Request) -> MultiDict[str]:
    """The request's query decoded as the signature check decodes it (``+`` stays a plus)."""
    pairs = MultiDict[str]()
    for piece in request.raw_path.partition("?")[2].split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.add(unquote(key), unquote(value))
    return pairs


def dli_error(status: int, error_code: str, message: str) -> web.Response:
    """An error as DLI answers it."""
    body = {
        "is_success": "false",
        "message": message,
        "error_code": error_code,
        "error_msg": message,
    }
    return web.json_response(body, status=status)


def iam_error(status: int, message: str) -> web.Response:
    """An error as IAM answers it."""
    return web.json_response(iam_error_body(status, message), status=status)


def iam_error_body(status: int, message: str) -> dict[str, object]:
    """The JSON body of an IAM error."""
    return {"error": {"code": status, "message": message, "title": HTTPStatus(status).phrase}}


def apig_error(status: int, error_code: str, message: str, request_id: str) -> web.Response:
    """An error as the API gateway answers it, before the request reaches DLI."""
    body = {"error_code": error_code, "error_msg": message, "request_id": request_id}
    return web.json_response(body, status=status)


def int_param(
    query: MultiMapping[str], key: str, default: int, *, low: int, high: int | None
) -> int:
    """An integer query parameter within bounds, given at most once; else `BadRequest`."""
    values = query.getall(key, [])
    if len(values) > 1:
        raise BadRequest(f"The parameter {key} is given more than once.")
    if not values:
        return default
    try:
        value = int(values[0])
    except ValueError:
        raise BadRequest(f"The parameter {key} must be an integer.") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"The parameter {key} must be {bounds}.")
    return value


def project_not_found(project_id: str) -> web.Response:
    """DLI's answer for a project it does not know."""
    return dli_error(404, "DLI.0023", f"The project {project_id[:64]} does not exist.")
