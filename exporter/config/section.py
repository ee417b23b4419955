"""The base of every config section model: strict pydantic settings plus cross-key checks.

A section is a pydantic model with ``extra="forbid"``, frozen, whose input never appears in
errors. Checks that span keys (``secret_key`` and ``secret_key_file`` both set) run on the raw
mapping before and after the fields are validated, and their problems join the fields' own, so
that one run reports every problem (pydantic skips ``after`` validators once a field failed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from exporter.config.types import Context, context_of

__all__ = ["SECTION_CONFIG", "Issue", "PlacedIssue", "Section"]

#: The pydantic settings of every section.
SECTION_CONFIG: Final = ConfigDict(
    extra="forbid", frozen=True, hide_input_in_errors=True, arbitrary_types_allowed=True
)
#: A problem found by a cross-key check: (key path inside the section, message).
Issue = tuple[tuple[str | int, ...], str]
#: An issue reported at its first key path but ordered as if at the second.
PlacedIssue = tuple[tuple[str | int, ...], str, tuple[str | int, ...]]
#: Our error types: a problem, a problem found after the fields' (sorted after them), and a
#: value whose problem was reported before (left out).
_CUSTOM_TYPES: Final = frozenset({"config", "late", "reported"})


class Section(BaseModel):
    """A mapping in a config file; subclasses declare one field per key."""

    model_config = SECTION_CONFIG

    #: Keys that are wrong here for a known reason: key -> the whole problem.
    key_hints: ClassVar[Mapping[str, str]] = {}
    #: This section's tag in a discriminated union (``auth``'s ``type``), else empty.
    tag: ClassVar[str] = ""

    @classmethod
    def precheck(cls, data: dict[Any, Any], context: Context) -> tuple[dict[Any, Any], list[Issue]]:
        """Check ``data`` across keys before its fields are validated; may drop keys."""
        return data, []

    @classmethod
    def postcheck(cls, data: dict[Any, Any], failed: set[str], context: Context) -> list[Issue]:
        """Check ``data`` across keys after validation; ``failed``: keys with a problem.

        These problems come after the section's field problems.
        """
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _cross_checks(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo
    ) -> Self:
        if not isinstance(data, dict):
            return handler(data)
        context = context_of(info)
        data, issues = cls.precheck(dict(data), context)
        errors: list[ErrorDetails] = []
        try:
            model = handler(data)
        except ValidationError as exc:
            errors = exc.errors()
        failed = {str(e["loc"][0]) for e in errors if e["loc"]}
        late = cls.postcheck(data, failed, context)
        if not errors and not issues and not late:
            return model
        details = [_again(e) for e in errors]
        details += [_issue("config", loc, message) for loc, message in issues]
        details += [_issue("late", loc, message) for loc, message in late]
        raise ValidationError.from_exception_data(cls.__name__, details, hide_input=True)


def _issue(kind: str, loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)


def _again(error: ErrorDetails) -> InitErrorDetails:
    """``error`` in the form :meth:`ValidationError.from_exception_data` takes."""
    kind = error["type"]
    details = InitErrorDetails(
        type=PydanticCustomError(kind, error["msg"]) if kind in _CUSTOM_TYPES else kind,
        loc=error["loc"],
        input=error["input"],
    )
    if "ctx" in error and kind not in _CUSTOM_TYPES:
        details["ctx"] = error["ctx"]
    return details
