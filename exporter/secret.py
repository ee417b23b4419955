"""A string wrapper that keeps credentials out of logs, reprs and tracebacks."""

from __future__ import annotations

from typing import Final

_MASK: Final = "<redacted>"


class Secret:
    """Holds a secret value; only :meth:`reveal` returns it.

    ``str()``, ``repr()`` and formatting all give a fixed mask, so a secret that ends up in a
    log line, an exception message or a dataclass repr shows ``<redacted>`` instead.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret itself; call only where it is used (signing, the IAM request)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
