"""The one formatter: pydantic errors -> ``<file>: <key path>: <problem>`` lines, in order.

Key paths read like the file (``targets[0].auth.secret_key``: union tags left out); unknown
keys get the section's hint or a did-you-mean; pydantic's own error types get today's words.
Problems come in the order a reader meets them: section by section, in each its unknown keys
first, then its fields in declaration order. Values are never shown, so no secret can be:
only their type is named, and the section types' own messages show non-secret values only.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from exporter.config.loader import INVALID
from exporter.config.problems import Problems, index_key, join_key, type_name
from exporter.config.section import Issue, PlacedIssue, Section

__all__ = ["report"]

_Rank = tuple[tuple[int, int], ...]
_MAPPING_ERRORS = frozenset({"model_type", "model_attributes_type", "dict_type"})
_KEY_ERRORS = frozenset({"extra_forbidden", "invalid_key"})


def report(
    root: type[BaseModel],
    errors: Iterable[ErrorDetails],
    issues: Iterable[Issue | PlacedIssue],
    problems: Problems,
) -> None:
    """Add ``errors`` (from validating ``root``) and ``issues`` to ``problems``, sorted.

    An issue ``(loc, message, order_loc)`` is reported at ``loc`` but sorted as if at
    ``order_loc`` (a top-level setting's problem with one target, among that target's).

    Errors about values whose problem was reported before (``INVALID``) are left out.
    """
    found: list[tuple[_Rank, str, str]] = []
    for error in errors:
        if error["type"] == "reported" or (
            error["input"] is INVALID and error["type"] not in _KEY_ERRORS
        ):
            continue
        path, rank, owner = _locate(root, error["loc"])
        if error["type"] == "late" and rank:  # after every field problem of its section
            rank = (*rank[:-1], (2, rank[-1][1]))
        found.append((rank, path, _message(error, owner)))
    for issue in issues:
        path, rank, _ = _locate(root, issue[0])
        if len(issue) == 3:  # reported at issue[0], but in the order of issue[2]
            rank = _locate(root, issue[2])[1]
        found.append((rank, path, issue[1]))
    found.sort(key=lambda item: item[0])  # stable: equal ranks keep their order
    for _, path, message in found:
        problems.add(path, message)


def _message(error: ErrorDetails, owner: type[BaseModel] | None) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(str(error["loc"][-1]), owner)
    if kind == "invalid_key":
        return f"keys must be strings, not {type_name(error['input'])}"
    if kind == "missing":
        return "is required"
    if kind in _MAPPING_ERRORS:
        return f"must be a mapping, not {type_name(error['input'])}"
    return error["msg"]  # ours ("config"), or pydantic's words, which never show the value


def _unknown_key(key: str, owner: type[BaseModel] | None) -> str:
    if owner is None:
        return "unknown key"
    hints = owner.key_hints if issubclass(owner, Section) else {}
    if key in hints:
        return hints[key]
    close = difflib.get_close_matches(key, list(owner.model_fields), n=1, cutoff=0.6)
    return f'unknown key (did you mean "{close[0]}"?)' if close else "unknown key"


def _locate(
    root: type[BaseModel], loc: Sequence[str | int]
) -> tuple[str, _Rank, type[BaseModel] | None]:
    """The key path of ``loc``, its sort rank and the section holding its last key."""
    path, rank = "", []
    current: Any = root
    owner: type[BaseModel] | None = None
    for element in loc:
        kind, inner = _shape(current)
        if kind == "union":  # element is the tag pydantic puts in the path
            current = next((m for m in inner if getattr(m, "tag", None) == element), None)
            continue
        if kind == "list" and isinstance(element, int):
            path = index_key(path, element)
            rank.append((1, element))
            current = inner
            continue
        if kind == "model":
            owner = inner
            names = list(inner.model_fields)
            if element in names:
                rank.append((1, names.index(str(element))))
                current = inner.model_fields[str(element)].annotation
            else:  # an unknown key: before the known ones
                rank.append((0, 0))
                current = None
        else:
            rank.append((1, 0))
            current = inner if kind == "dict" else None
        path = join_key(path, str(element))
    return path, tuple(rank), owner


def _shape(annotation: Any) -> tuple[str, Any]:
    """What a value of ``annotation`` is: a model, a union of models, a list or a dict."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [m for m in get_args(annotation) if m is not type(None)]
        if len(members) == 1:
            return _shape(members[0])
        return "union", [_shape(m)[1] for m in members]
    if origin in (list, tuple):
        return "list", get_args(annotation)[0]
    if origin is dict:
        return "dict", get_args(annotation)[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    return "value", None
