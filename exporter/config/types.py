"""Field types for the config schemas: strict, bounded, each with today's exact messages.

Each type is an ``Annotated`` pydantic type whose validator raises :func:`fail` with the whole
message (``must be a string, not integer (quote it)``); nothing is coerced (``yes`` is not a
string, ``30`` is not a duration). Values whose problem was already reported (``INVALID``, an
unset ``${VAR}``) are dropped by the formatter. Secrets come out as :class:`Secret`, and no
message shows one: only non-secret values are shown, cut short.
"""

from __future__ import annotations

import configparser
import difflib
import math
import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn
from urllib.parse import urlsplit

from pydantic import BeforeValidator, PlainValidator, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from exporter.config.model import (
    DEFAULT_CREDENTIALS_FILE,
    ENV_CREDENTIALS_FILE,
    JOB_TYPES,
    MAX_CA_FILE_SIZE,
    MAX_CLOUD_EYE_MAX_AGE,
    MAX_CONCURRENCY,
    MAX_POLL_INTERVAL,
    MAX_RATE_LIMIT,
    MAX_SECRET_FILE_SIZE,
    MAX_TIMEOUT,
    MIN_CLOUD_EYE_MAX_AGE,
    MIN_POLL_INTERVAL,
    MIN_RATE_LIMIT,
    STATE_SET_MODES,
    ProfileAuth,
)
from exporter.config.problems import show, type_name
from exporter.files import FileReadError, read_bounded
from exporter.secret import Secret

__all__ = [
    "CaFile",
    "Concurrency",
    "Context",
    "Flag",
    "Item",
    "JobType",
    "PollInterval",
    "ProfileFile",
    "RateLimit",
    "Region",
    "SecretFile",
    "SecretText",
    "StateSets",
    "Text",
    "Timeout",
    "Url",
    "context_of",
    "fail",
    "fail_many",
    "format_duration",
    "format_seconds",
    "list_of",
    "parse_duration",
    "profile_path",
    "read_file",
    "read_profile",
    "resolve",
    "text",
]


@dataclass(frozen=True, slots=True)
class Context:
    """What validators may need beyond the value: ``${VAR}``/AK-SK values, the file's dir."""

    environ: Mapping[str, str] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path)


def fail(message: str, *, late: bool = False) -> NoReturn:
    """Report ``message`` (complete, and never containing a secret) at the value's key.

    ``late``: sort it after the problems of the value's siblings (a list's type problems).
    """
    raise PydanticCustomError("late" if late else "config", message)


def fail_many(problems: Iterable[tuple[str | int, str]]) -> NoReturn:
    """Report several problems at once, each at ``(key inside the value, message)``."""
    details = [
        InitErrorDetails(type=PydanticCustomError("config", message), loc=(key,), input=None)
        for key, message in problems
    ]
    raise ValidationError.from_exception_data("config", details, hide_input=True)


def context_of(info: ValidationInfo) -> Context:
    """The :class:`Context` a parse passed to pydantic (an empty one if none)."""
    return info.context if isinstance(info.context, Context) else Context()


# --------------------------------------------------------------------------- strings


def text(value: Any, *, item: bool = False) -> str:
    """A non-blank string; ``item``: one in a list (null is a type problem, no quoting hint)."""
    if value is None:
        fail("must be a string, not null" if item else "is required")
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, int | float | bool) and not item else ""
        fail(f"must be a string, not {type_name(value)}{hint}")
    if not value.strip():
        fail("must not be empty")
    return value


_REGION_RE: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _region(value: Any) -> str:
    region = text(value)
    if not _REGION_RE.fullmatch(region):
        fail("must be lowercase letters, digits and '-' (e.g. cn-north-4)")
    return region


def _url(value: Any) -> str:
    """An http(s) URL with a host, no credentials, query or fragment; no trailing '/'."""
    url = text(value)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        fail("is not a valid URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        fail("must not contain credentials")
    if parts.query or parts.fragment:
        fail("must not have a query or fragment")
    return url.rstrip("/")


def _job_type(value: Any) -> str:
    job_type = text(value, item=True)
    if job_type not in JOB_TYPES:
        close = difflib.get_close_matches(job_type, sorted(JOB_TYPES), n=1)
        hint = (
            f' (did you mean "{close[0]}"?)'
            if close
            else f"; expected one of {', '.join(sorted(JOB_TYPES))}"
        )
        fail(f"unknown job type {show(job_type)}{hint}", late=True)
    return job_type


def _state_sets(value: Any) -> str:
    if not isinstance(value, str) or value not in STATE_SET_MODES:
        fail(f"must be one of {', '.join(STATE_SET_MODES)}, not {show(value)}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        fail(f"must be true or false, not {type_name(value)}")
    return value


def list_of(what: str) -> BeforeValidator:
    """Null is an empty list; anything but a list is ``must be a list of <what>, not <type>``."""

    def check(value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            fail(f"must be a list of {what}, not {type_name(value)}")
        return value

    return BeforeValidator(check)


Text = Annotated[str, PlainValidator(text)]
Item = Annotated[str, PlainValidator(lambda value: text(value, item=True))]
Region = Annotated[str, PlainValidator(_region)]
Url = Annotated[str, PlainValidator(_url)]
JobType = Annotated[str, PlainValidator(_job_type)]
StateSets = Annotated[str, PlainValidator(_state_sets)]
Flag = Annotated[bool, PlainValidator(_flag)]
SecretText = Annotated[Secret, PlainValidator(lambda value: Secret(text(value)))]


# --------------------------------------------------------------------------- files


def resolve(file_name: str, base_dir: Path) -> Path:
    """``file_name`` with ``~`` expanded, relative to ``base_dir`` unless absolute."""
    path = Path(file_name).expanduser()
    return path if path.is_absolute() else base_dir / path


def read_file(path: Path, limit: int) -> bytes:
    """Read a file the config names, bounded (never blocks on a FIFO, never reads a device)."""
    try:
        return read_bounded(path, limit)
    except FileReadError as exc:
        fail(f"cannot read {str(path)!r}: {exc.reason}")


def _secret_file(value: Any, info: ValidationInfo) -> Secret:
    """A secret read from a file; problems name the path, never the content."""
    path = resolve(text(value), context_of(info).base_dir)
    try:
        content = read_file(path, MAX_SECRET_FILE_SIZE).decode("utf-8").rstrip()
    except UnicodeDecodeError:
        fail(f"{str(path)!r} is not valid UTF-8")
    if not content:
        fail(f"{str(path)!r} is empty")
    return Secret(content)


_PEM_CERT_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"
_PEM_CERT_RE: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*-----END CERTIFICATE-----"
)


def _ca_file(value: Any, info: ValidationInfo) -> tuple[str, str]:
    """``(resolved path, its PEM certificates)``; only the certificate blocks are kept.

    A bundle's comments, or a key put there by mistake, are dropped; the certificates must load
    as CA certificates.
    """
    path = resolve(text(value), context_of(info).base_dir)
    content = read_file(path, MAX_CA_FILE_SIZE)
    blocks = _PEM_CERT_RE.findall(content)
    if not blocks:
        fail(f"{str(path)!r} does not contain a PEM certificate")
    if len(blocks) != content.count(_PEM_CERT_BEGIN):
        fail(f"{str(path)!r} contains a malformed PEM certificate")
    pem = b"\n".join(blocks).decode("ascii") + "\n"
    try:
        ssl.create_default_context(cadata=pem)
    except ssl.SSLError as exc:
        reason = exc.reason or exc.library or "invalid"
        fail(f"{str(path)!r} contains a certificate that cannot be used: {reason}")
    return str(path), pem


def read_profile(path: Path) -> ProfileAuth:
    """The ``[basic]`` AK/SK of an SDK profile file (INI: ``ak``, ``sk``, ``security_token``).

    Problems name the path and the key, never a value (``configparser``'s own messages quote
    lines, so they are not passed on).
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_file(path, MAX_SECRET_FILE_SIZE).decode("utf-8"))
    except (UnicodeDecodeError, configparser.Error):
        fail(f"{str(path)!r} is not a valid INI profile file")
    if not parser.has_section("basic"):
        fail(f"{str(path)!r} has no [basic] section")
    basic = parser["basic"]
    if basic.get("idp_id") or basic.get("id_token_file"):
        fail(f"{str(path)!r}: federated profiles (idp_id, id_token_file) are not supported")
    ak, sk = basic.get("ak", "").strip(), basic.get("sk", "").strip()
    if not ak or not sk:
        fail(f"{str(path)!r}: [basic] needs both ak and sk")
    token = basic.get("security_token", "").strip()
    return ProfileAuth(str(path), ak, Secret(sk), Secret(token) if token else None)


def profile_path(environ: Mapping[str, str]) -> str:
    """Where the SDK looks for its profile: ``HUAWEICLOUD_SDK_CREDENTIALS_FILE``, else
    ``~/.huaweicloud/credentials`` (``~`` from ``HOME`` in ``environ`` when set)."""
    explicit = environ.get(ENV_CREDENTIALS_FILE, "")
    if explicit:
        return explicit
    home = environ.get("HOME")
    if home:
        return str(Path(home) / DEFAULT_CREDENTIALS_FILE.removeprefix("~/"))
    return str(Path(DEFAULT_CREDENTIALS_FILE).expanduser())


def _profile_file(value: Any, info: ValidationInfo) -> ProfileAuth:
    return read_profile(resolve(text(value), context_of(info).base_dir))


SecretFile = Annotated[Secret, PlainValidator(_secret_file)]
ProfileFile = Annotated[ProfileAuth, PlainValidator(_profile_file)]
CaFile = Annotated[tuple[str, str], PlainValidator(_ca_file)]


# --------------------------------------------------------------------------- numbers

_DURATION_RE: Final = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?"
    r"(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?"
)
_DURATION_UNITS_MS: Final = (
    365 * 86_400_000,
    7 * 86_400_000,
    86_400_000,
    3_600_000,
    60_000,
    1000,
    1,
)
_MAX_DURATION_CHARS: Final = 32


def parse_duration(text: str) -> float:
    """Parse a Prometheus-style duration (``30s``, ``5m``, ``1h30m``, ``500ms``) into seconds.

    Units ``y w d h m s ms``, each at most once and in that order, integer amounts; ``0`` alone
    is accepted; at most 32 characters. Raises :class:`ValueError` for anything else.
    """
    if text == "0":
        return 0.0
    if len(text) > _MAX_DURATION_CHARS:
        raise ValueError(f"invalid duration: longer than {_MAX_DURATION_CHARS} characters")
    match = _DURATION_RE.fullmatch(text) if text else None
    if match is None or not any(match.groups()):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h30m, 500ms")
    milliseconds = sum(
        int(amount) * unit
        for amount, unit in zip(match.groups(), _DURATION_UNITS_MS, strict=True)
        if amount
    )
    return milliseconds / 1000  # exact integers first: no float overflow, no rounding drift


def format_seconds(seconds: float) -> str:
    """``1.5`` -> ``1.5s``, ``120`` -> ``120s``."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def format_duration(seconds: float) -> str:
    """``86400`` -> ``1d``, ``600`` -> ``10m``, ``1.5`` -> ``1.5s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return format_seconds(seconds)


def _duration(minimum: float | None, maximum: float) -> PlainValidator:
    """A duration string of at most ``maximum`` seconds, at least ``minimum`` (None: > 0)."""

    def check(value: Any) -> float:
        if not isinstance(value, str):
            fail(f'must be a duration string like "30s", not {type_name(value)}')
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            fail(str(exc))
        if minimum is not None and seconds < minimum:
            fail(f"must be at least {format_seconds(minimum)}, not {value}")
        if minimum is None and seconds <= 0:
            fail("must be greater than 0")
        if seconds > maximum:
            fail(f"must be at most {format_duration(maximum)}, not {value}")
        return seconds

    return PlainValidator(check)


def _concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(f"must be an integer, not {type_name(value)}")
    if value < 1:
        fail(f"must be at least 1, not {show(value)}")
    if value > MAX_CONCURRENCY:
        fail(f"must be at most {MAX_CONCURRENCY}, not {show(value)}")
    return value


def _rate_limit(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(f"must be a number of requests per second, not {type_name(value)}")
    # Compare before converting: float() of a huge integer overflows.
    if (isinstance(value, float) and not math.isfinite(value)) or value <= 0:
        fail(f"must be a finite number greater than 0, not {show(value)}")
    if value < MIN_RATE_LIMIT:
        fail(f"must be at least {MIN_RATE_LIMIT:g} per second, not {show(value)}")
    if value > MAX_RATE_LIMIT:
        fail(f"must be at most {MAX_RATE_LIMIT:g} per second, not {show(value)}")
    return float(value)


PollInterval = Annotated[float, _duration(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL)]
CloudEyeMaxAge = Annotated[float, _duration(MIN_CLOUD_EYE_MAX_AGE, MAX_CLOUD_EYE_MAX_AGE)]
Timeout = Annotated[float, _duration(None, MAX_TIMEOUT)]
Concurrency = Annotated[int, PlainValidator(_concurrency)]
RateLimit = Annotated[float, PlainValidator(_rate_limit)]
