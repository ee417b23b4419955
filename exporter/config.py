"""YAML configuration: strict parsing and validation into frozen dataclasses.

The file shape (plain YAML data) is kept apart from the runtime model (the dataclasses below):
YAML is parsed (:mod:`exporter.yamlfile`: bounded, so alias bombs and recursive aliases are
refused), ``${VAR}`` references in string scalars are expanded (bounded too), every key is
checked, and only then are the dataclasses built. Every problem found is collected and raised
together in one :class:`ConfigError`, each with the key path it concerns
(``targets[1].auth.secret_key``). Messages never contain secret values. Every file is read with
:func:`exporter.files.read_bounded` (regular files only, size-limited, never blocks on a FIFO)
and every number is bounded.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

from exporter.files import FileReadError, format_size, read_bounded
from exporter.problems import ConfigProblem, Problems
from exporter.problems import index_key as _index
from exporter.problems import join_key as _join
from exporter.secret import Secret
from exporter.yamlfile import INVALID as _INVALID
from exporter.yamlfile import Invalid as _Invalid
from exporter.yamlfile import load_yaml

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_TIMEOUT",
    "JOB_TYPES",
    "MAX_CA_FILE_SIZE",
    "MAX_CONCURRENCY",
    "MAX_CONFIG_FILE_SIZE",
    "MAX_POLL_INTERVAL",
    "MAX_RATE_LIMIT",
    "MAX_SECRET_FILE_SIZE",
    "MAX_TIMEOUT",
    "MIN_POLL_INTERVAL",
    "MIN_RATE_LIMIT",
    "STATE_SET_MODES",
    "AkSkAuth",
    "Auth",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Filters",
    "MetricOptions",
    "PasswordAuth",
    "Problems",
    "TargetConfig",
    "TlsClientConfig",
    "load_config",
    "parse_config",
    "parse_duration",
]

DEFAULT_POLL_INTERVAL: Final = 60.0
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_CONCURRENCY: Final = 8
DEFAULT_RATE_LIMIT: Final = 20.0
MIN_POLL_INTERVAL: Final = 1.0

# Upper bounds keep every number usable later: asyncio.sleep/call_at overflow on huge delays,
# a semaphore of 10**30 or a rate of 1e308 tokens per second means nothing.
MAX_POLL_INTERVAL: Final = 86400.0  # 1d
MAX_TIMEOUT: Final = 600.0  # 10m
MAX_CONCURRENCY: Final = 1000
MIN_RATE_LIMIT: Final = 0.01  # one request per 100 s
MAX_RATE_LIMIT: Final = 10000.0

# Files are read with these limits (exporter.files.read_bounded).
MAX_CONFIG_FILE_SIZE: Final = 4 * 1024 * 1024
MAX_SECRET_FILE_SIZE: Final = 64 * 1024
MAX_CA_FILE_SIZE: Final = 1024 * 1024
#: ``${VAR}`` references may add at most this many characters to a file, in all.
MAX_EXPANSION: Final = 1024 * 1024

JOB_TYPES: Final = frozenset(
    {"flink_sql_job", "flink_opensource_sql_job", "flink_jar_job", "flink_sql_edge_job"}
)

ENV_AK: Final = "HUAWEICLOUD_SDK_AK"
ENV_SK: Final = "HUAWEICLOUD_SDK_SK"
ENV_SECURITY_TOKEN: Final = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105 - a name


# --------------------------------------------------------------------------- runtime model


@dataclass(frozen=True, slots=True)
class Filters:
    """Server-side filters for the job listing; empty means "all"."""

    job_types: tuple[str, ...] = ()
    queue_names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AkSkAuth:
    """Permanent or temporary (with ``security_token``) access key / secret key."""

    access_key: str
    secret_key: Secret
    security_token: Secret | None = None


@dataclass(frozen=True, slots=True)
class PasswordAuth:
    """IAM user password, exchanged for an IAM token at ``iam_endpoint``."""

    username: str
    password: Secret
    domain_name: str
    iam_endpoint: str


Auth: TypeAlias = AkSkAuth | PasswordAuth


@dataclass(frozen=True, slots=True)
class TlsClientConfig:
    """How a target's API endpoints' certificates are checked (section ``tls`` of a target).

    ``ca_file`` is the resolved path; ``ca_pem`` its PEM certificates (read and checked when the
    config is loaded; comments and anything but certificates dropped; not in ``repr``), trusted
    instead of the system's CA bundle. ``insecure_skip_verify`` turns certificate checks off
    (logged as a warning at start). At most one of the two is set.
    """

    ca_file: str | None = None
    ca_pem: str | None = field(default=None, repr=False)
    insecure_skip_verify: bool = False


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One DLI project in one region to poll."""

    name: str
    region: str
    project_id: str
    endpoint: str
    auth: Auth
    poll_interval: float = DEFAULT_POLL_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    rate_limit: float = DEFAULT_RATE_LIMIT
    filters: Filters = field(default_factory=Filters)
    tls: TlsClientConfig = TlsClientConfig()


@dataclass(frozen=True, slots=True)
class MetricOptions:
    """Cardinality controls for the job metrics (section ``metrics``).

    ``job_info_labels``: False drops the descriptive labels (type, queue, user, run mode, Flink
    version) from ``dli_job_info``. ``state_sets``: ``all`` publishes one series per known state
    (0 or 1) for ``dli_job_status`` and ``dli_job_flink_state``; ``current`` only the current
    state's series (1), which cuts those series 14-fold and 11-fold but makes "== 0" queries and
    absent-state alerts harder.
    """

    job_info_labels: bool = True
    state_sets: str = "all"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    targets: tuple[TargetConfig, ...]
    source: str
    metrics: MetricOptions = MetricOptions()


class ConfigError(Exception):
    """Every problem found in a config file; ``str()`` gives one line per problem."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- durations

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


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _format_duration(seconds: float) -> str:
    """``86400`` -> ``1d``, ``600`` -> ``10m``, ``1.5`` -> ``1.5s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return _format_seconds(seconds)


# --------------------------------------------------------------------------- problem collection


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    names |= {list: "list", dict: "mapping"}
    return names.get(type(value), type(value).__name__)


_SHOWN_CHARS: Final = 40


def _show(value: object) -> str:
    """A bad (non-secret) value for a message, cut short: it may be megabytes long."""
    if isinstance(value, str):
        cut = value[:_SHOWN_CHARS]
        return repr(cut) + ("..." if len(value) > _SHOWN_CHARS else "")
    if isinstance(value, bool | int | float):
        text = str(value)
        return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
    return _type_name(value)


# --------------------------------------------------------------------------- ${VAR} expansion

_VAR_RE: Final = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")


class _Expander:
    """Replaces ``${VAR}`` in every string scalar; the values may add ``MAX_EXPANSION`` chars.

    The bound matters because a value is copied into every string that names it, and through
    YAML aliases every string may be repeated many times.
    """

    def __init__(self, environ: Mapping[str, str], problems: Problems) -> None:
        self._environ = environ
        self._problems = problems
        self._room = MAX_EXPANSION
        self._too_much = False

    def data(self, data: Any, key: str) -> Any:
        """Return ``data`` with ``${VAR}`` replaced in every string scalar (not in keys)."""
        if isinstance(data, str):
            return self.string(data, key)
        if isinstance(data, dict):
            return {k: self.data(v, _join(key, str(k))) for k, v in data.items()}
        if isinstance(data, list):
            return [self.data(v, _index(key, i)) for i, v in enumerate(data)]
        return data

    def string(self, text: str, key: str) -> str | _Invalid:
        """``text`` expanded, or ``_INVALID`` once a problem with it was reported."""
        ok = True

        def replace(match: re.Match[str]) -> str:
            nonlocal ok
            found = match.group(0)
            if found == "$${":
                return "${"
            name = match.group(1)
            if name is None:
                self._problems.add(
                    key, "invalid ${...} reference: use ${NAME}, or $${ for a literal ${"
                )
                ok = False
                return ""
            value = self._environ.get(name)
            if value is None:
                self._problems.add(key, f"environment variable {name} is not set")
                ok = False
                return ""
            if len(value) > self._room:
                if not self._too_much:  # once: the rest of the file is as suspect
                    self._problems.add(
                        key,
                        f"${{VAR}} values would add more than {format_size(MAX_EXPANSION)}"
                        " of text to the file",
                    )
                    self._too_much = True
                ok = False
                return ""
            self._room -= len(value)
            return value

        result = _VAR_RE.sub(replace, text)
        return result if ok else _INVALID


# --------------------------------------------------------------------------- field readers

_TOP_KEYS: Final = (
    "poll_interval",
    "timeout",
    "concurrency",
    "rate_limit",
    "metrics",
    "targets",
)
_METRICS_KEYS: Final = ("job_info_labels", "state_sets")
STATE_SET_MODES: Final = ("all", "current")
_TARGET_KEYS: Final = (
    "name",
    "region",
    "project_id",
    "endpoint",
    "auth",
    "poll_interval",
    "timeout",
    "concurrency",
    "rate_limit",
    "filters",
    "tls",
)
_FILTER_KEYS: Final = ("job_types", "queue_names", "tags")
_TLS_KEYS: Final = ("ca_file", "insecure_skip_verify")
# Keys of Prometheus' tls_config that a target's tls section does not support.
_TLS_UNSUPPORTED: Final = (
    "ca",
    "cert",
    "cert_file",
    "key",
    "key_file",
    "server_name",
    "min_version",
    "max_version",
)
_PEM_CERT_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"
_PEM_CERT_RE: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*-----END CERTIFICATE-----"
)
_AKSK_KEYS: Final = (
    "type",
    "access_key",
    "secret_key",
    "secret_key_file",
    "security_token",
    "security_token_file",
)
_PASSWORD_KEYS: Final = (
    "type",
    "username",
    "password",
    "password_file",
    "domain_name",
    "iam_endpoint",
)
_AUTH_KEYS: Final = tuple(dict.fromkeys(_AKSK_KEYS + _PASSWORD_KEYS))
_REGION_RE: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _check_keys(
    mapping: Mapping[Any, Any],
    allowed: Sequence[str],
    path: str,
    problems: Problems,
    elsewhere: Mapping[str, str] | None = None,
) -> None:
    """Report non-string and unknown keys, with a hint for likely typos.

    ``elsewhere`` explains keys that exist, but not here; it wins over a similar allowed key.
    """
    for key in mapping:
        if not isinstance(key, str):
            problems.add(_join(path, _show(key)), f"keys must be strings, not {_type_name(key)}")
            continue
        if key in allowed:
            continue
        message = "unknown key"
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if elsewhere and key in elsewhere:
            message += f" ({elsewhere[key]})"
        elif close:
            message += f' (did you mean "{close[0]}"?)'
        problems.add(_join(path, key), message)


def _mapping(value: Any, key: str, problems: Problems) -> dict[Any, Any] | None:
    if isinstance(value, dict):
        return value
    if value is not _INVALID:
        problems.add(key, f"must be a mapping, not {_type_name(value)}")
    return None


def _string(
    mapping: Mapping[Any, Any], name: str, path: str, problems: Problems, *, required: bool
) -> str | None:
    """Read a string field; ``None`` when absent (reported if required) or invalid."""
    key = _join(path, name)
    value = mapping.get(name)
    if value is _INVALID:
        return None
    if value is None:
        if required:
            problems.add(key, "is required")
        return None
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, int | float | bool) else ""
        problems.add(key, f"must be a string, not {_type_name(value)}{hint}")
        return None
    if not value.strip():
        problems.add(key, "must not be empty")
        return None
    return value


def _duration(mapping: Mapping[Any, Any], name: str, path: str, problems: Problems) -> float | None:
    key = _join(path, name)
    value = mapping.get(name)
    if value is None or value is _INVALID:
        return None
    if not isinstance(value, str):
        problems.add(key, f'must be a duration string like "30s", not {_type_name(value)}')
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        problems.add(key, str(exc))
        return None
    if name == "poll_interval" and seconds < MIN_POLL_INTERVAL:
        problems.add(key, f"must be at least {_format_seconds(MIN_POLL_INTERVAL)}, not {value}")
        return None
    if name == "timeout" and seconds <= 0:
        problems.add(key, "must be greater than 0")
        return None
    highest = MAX_POLL_INTERVAL if name == "poll_interval" else MAX_TIMEOUT
    if seconds > highest:
        problems.add(key, f"must be at most {_format_duration(highest)}, not {value}")
        return None
    return seconds


def _concurrency(mapping: Mapping[Any, Any], path: str, problems: Problems) -> int | None:
    key = _join(path, "concurrency")
    value = mapping.get("concurrency")
    if value is None or value is _INVALID:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(key, f"must be an integer, not {_type_name(value)}")
        return None
    if value < 1:
        problems.add(key, f"must be at least 1, not {_show(value)}")
        return None
    if value > MAX_CONCURRENCY:
        problems.add(key, f"must be at most {MAX_CONCURRENCY}, not {_show(value)}")
        return None
    return value


def _rate_limit(mapping: Mapping[Any, Any], path: str, problems: Problems) -> float | None:
    key = _join(path, "rate_limit")
    value = mapping.get("rate_limit")
    if value is None or value is _INVALID:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(key, f"must be a number of requests per second, not {_type_name(value)}")
        return None
    # Compare before converting: float() of a huge integer overflows.
    if (isinstance(value, float) and not math.isfinite(value)) or value <= 0:
        problems.add(key, f"must be a finite number greater than 0, not {_show(value)}")
        return None
    if value < MIN_RATE_LIMIT:
        problems.add(key, f"must be at least {MIN_RATE_LIMIT:g} per second, not {_show(value)}")
        return None
    if value > MAX_RATE_LIMIT:
        problems.add(key, f"must be at most {MAX_RATE_LIMIT:g} per second, not {_show(value)}")
        return None
    return float(value)


def _url(
    mapping: Mapping[Any, Any], name: str, path: str, problems: Problems
) -> str | _Invalid | None:
    """Read an optional http(s) URL without a trailing '/'; ``_INVALID`` when reported."""
    key = _join(path, name)
    if mapping.get(name) is None:
        return None
    text = _string(mapping, name, path, problems, required=False)
    if text is None:
        return _INVALID
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        problems.add(key, "is not a valid URL")
        return _INVALID
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.add(key, "must be an http:// or https:// URL with a host")
        return _INVALID
    if parts.username is not None or parts.password is not None:
        problems.add(key, "must not contain credentials")
        return _INVALID
    if parts.query or parts.fragment:
        problems.add(key, "must not have a query or fragment")
        return _INVALID
    return text.rstrip("/")


def _string_list(
    mapping: Mapping[Any, Any], name: str, path: str, problems: Problems
) -> tuple[str, ...]:
    key = _join(path, name)
    value = mapping.get(name)
    if value is None or value is _INVALID:
        return ()
    if not isinstance(value, list):
        problems.add(key, f"must be a list of strings, not {_type_name(value)}")
        return ()
    items: list[str] = []
    for index, item in enumerate(value):
        item_key = _index(key, index)
        if item is _INVALID:
            continue
        if not isinstance(item, str):
            problems.add(item_key, f"must be a string, not {_type_name(item)}")
        elif not item.strip():
            problems.add(item_key, "must not be empty")
        else:
            items.append(item)
    return tuple(items)


# --------------------------------------------------------------------------- sections


def _job_type_message(job_type: str) -> str:
    close = difflib.get_close_matches(job_type, sorted(JOB_TYPES), n=1)
    if close:
        return f'unknown job type {_show(job_type)} (did you mean "{close[0]}"?)'
    return f"unknown job type {_show(job_type)}; expected one of {', '.join(sorted(JOB_TYPES))}"


def _filters(value: Any, path: str, problems: Problems) -> Filters:
    if value is None:
        return Filters()
    mapping = _mapping(value, path, problems)
    if mapping is None:
        return Filters()
    _check_keys(mapping, _FILTER_KEYS, path, problems)
    job_types = _string_list(mapping, "job_types", path, problems)
    raw_types = mapping.get("job_types")
    for index, job_type in enumerate(raw_types if isinstance(raw_types, list) else ()):
        if isinstance(job_type, str) and job_type.strip() and job_type not in JOB_TYPES:
            problems.add(_index(_join(path, "job_types"), index), _job_type_message(job_type))
    return Filters(
        job_types=tuple(t for t in job_types if t in JOB_TYPES),
        queue_names=_string_list(mapping, "queue_names", path, problems),
        tags=_string_list(mapping, "tags", path, problems),
    )


def _resolve(file_name: str, base_dir: Path) -> Path:
    path = Path(file_name).expanduser()
    return path if path.is_absolute() else base_dir / path


def _read_file(path: Path, limit: int, key: str, problems: Problems) -> bytes | None:
    """Read a file the config names, bounded (never blocks on a FIFO, never reads a device)."""
    try:
        return read_bounded(path, limit)
    except FileReadError as exc:
        problems.add(key, f"cannot read {str(path)!r}: {exc.reason}")
        return None


def _read_secret_file(file_name: str, key: str, base_dir: Path, problems: Problems) -> str | None:
    """Read a secret from a file; problems name the key and path, never the content."""
    path = _resolve(file_name, base_dir)
    content = _read_file(path, MAX_SECRET_FILE_SIZE, key, problems)
    if content is None:
        return None
    try:
        text = content.decode("utf-8").rstrip()
    except UnicodeDecodeError:
        problems.add(key, f"{str(path)!r} is not valid UTF-8")
        return None
    if not text:
        problems.add(key, f"{str(path)!r} is empty")
        return None
    return text


@dataclass(frozen=True, slots=True)
class _Context:
    problems: Problems
    environ: Mapping[str, str]
    base_dir: Path


def _ca_pem(file_name: str, key: str, ctx: _Context) -> tuple[str, str] | None:
    """Read ``ca_file``: ``(resolved path, its PEM certificates)``, or ``None`` when reported.

    Only the certificate blocks are kept (a bundle's comments, or a key put there by mistake,
    are dropped); they must load as CA certificates.
    """
    path = _resolve(file_name, ctx.base_dir)
    content = _read_file(path, MAX_CA_FILE_SIZE, key, ctx.problems)
    if content is None:
        return None
    blocks = _PEM_CERT_RE.findall(content)
    if not blocks:
        ctx.problems.add(key, f"{str(path)!r} does not contain a PEM certificate")
        return None
    if len(blocks) != content.count(_PEM_CERT_BEGIN):
        ctx.problems.add(key, f"{str(path)!r} contains a malformed PEM certificate")
        return None
    pem = b"\n".join(blocks).decode("ascii") + "\n"
    try:
        ssl.create_default_context(cadata=pem)
    except ssl.SSLError as exc:
        reason = exc.reason or exc.library or "invalid"
        ctx.problems.add(key, f"{str(path)!r} contains a certificate that cannot be used: {reason}")
        return None
    return str(path), pem


def _tls(value: Any, path: str, ctx: _Context) -> TlsClientConfig | None:
    """Read a target's ``tls`` section; ``None`` when a problem was reported."""
    if value is None:
        return TlsClientConfig()
    mapping = _mapping(value, path, ctx.problems)
    if mapping is None:
        return None
    unsupported = "not supported: only ca_file and insecure_skip_verify are"
    _check_keys(
        mapping, _TLS_KEYS, path, ctx.problems, dict.fromkeys(_TLS_UNSUPPORTED, unsupported)
    )
    ok = True
    insecure = mapping.get("insecure_skip_verify")
    if insecure is None:
        insecure = False
    elif insecure is _INVALID:
        ok = False
    elif not isinstance(insecure, bool):
        key = _join(path, "insecure_skip_verify")
        ctx.problems.add(key, f"must be true or false, not {_type_name(insecure)}")
        ok = False
    ca: tuple[str, str] | None = None
    if mapping.get("ca_file") is not None:
        file_name = _string(mapping, "ca_file", path, ctx.problems, required=True)
        if file_name is not None and insecure is True:
            ctx.problems.add(path, "set only one of ca_file and insecure_skip_verify: true")
            return None
        if file_name is not None:
            ca = _ca_pem(file_name, _join(path, "ca_file"), ctx)
        ok = ok and ca is not None
    if not ok:
        return None
    if ca is None:
        return TlsClientConfig(insecure_skip_verify=insecure is True)
    return TlsClientConfig(ca_file=ca[0], ca_pem=ca[1])


def _secret(
    mapping: Mapping[Any, Any], name: str, path: str, ctx: _Context, *, required: bool
) -> Secret | _Invalid | None:
    """Read ``name`` or ``name_file`` (exactly one); ``_INVALID`` when a problem was reported."""
    file_name = f"{name}_file"
    has_value, has_file = mapping.get(name) is not None, mapping.get(file_name) is not None
    if has_value and has_file:
        ctx.problems.add(_join(path, name), f"set only one of {name} and {file_name}")
        return _INVALID
    if has_file:
        file_path = _string(mapping, file_name, path, ctx.problems, required=True)
        if file_path is None:
            return _INVALID
        text = _read_secret_file(file_path, _join(path, file_name), ctx.base_dir, ctx.problems)
        return _INVALID if text is None else Secret(text)
    if not has_value and required:
        if name not in mapping and file_name not in mapping:
            ctx.problems.add(_join(path, name), f"is required (or {file_name})")
        else:
            ctx.problems.add(_join(path, name), "is required")
        return _INVALID
    if not has_value:
        return None
    text = _string(mapping, name, path, ctx.problems, required=True)
    return _INVALID if text is None else Secret(text)


def _env_auth(path: str, ctx: _Context) -> Auth | None:
    access_key = ctx.environ.get(ENV_AK, "")
    secret_key = ctx.environ.get(ENV_SK, "")
    missing = [n for n, v in ((ENV_AK, access_key), (ENV_SK, secret_key)) if not v]
    if missing:
        names = " and ".join(missing)
        verb = "is" if len(missing) == 1 else "are"
        ctx.problems.add(path, f"auth is not set and environment {names} {verb} not set or empty")
        return None
    token = ctx.environ.get(ENV_SECURITY_TOKEN, "")
    return AkSkAuth(access_key, Secret(secret_key), Secret(token) if token else None)


def _aksk_auth(mapping: Mapping[Any, Any], path: str, ctx: _Context) -> Auth | None:
    _check_keys(
        mapping,
        _AKSK_KEYS,
        path,
        ctx.problems,
        {k: "set type: password to use it" for k in _PASSWORD_KEYS},
    )
    access_key = _string(mapping, "access_key", path, ctx.problems, required=True)
    secret_key = _secret(mapping, "secret_key", path, ctx, required=True)
    token = _secret(mapping, "security_token", path, ctx, required=False)
    if access_key is None or not isinstance(secret_key, Secret) or isinstance(token, _Invalid):
        return None
    return AkSkAuth(access_key, secret_key, token)


def _password_auth(
    mapping: Mapping[Any, Any], path: str, region: str | None, ctx: _Context
) -> Auth | None:
    _check_keys(
        mapping, _PASSWORD_KEYS, path, ctx.problems, {k: "only for type: aksk" for k in _AKSK_KEYS}
    )
    username = _string(mapping, "username", path, ctx.problems, required=True)
    password = _secret(mapping, "password", path, ctx, required=True)
    domain_name = _string(mapping, "domain_name", path, ctx.problems, required=True)
    iam_endpoint = _url(mapping, "iam_endpoint", path, ctx.problems)
    if iam_endpoint is None and region is not None:
        iam_endpoint = f"https://iam.{region}.myhuaweicloud.com"
    if (
        username is None
        or not isinstance(password, Secret)
        or domain_name is None
        or not isinstance(iam_endpoint, str)
    ):
        return None
    return PasswordAuth(username, password, domain_name, iam_endpoint)


def _auth(value: Any, path: str, region: str | None, ctx: _Context) -> Auth | None:
    if value is None:
        return _env_auth(path, ctx)
    mapping = _mapping(value, path, ctx.problems)
    if mapping is None:
        return None
    auth_type = mapping.get("type", "aksk")
    if auth_type is _INVALID:
        return None
    if auth_type == "aksk":
        return _aksk_auth(mapping, path, ctx)
    if auth_type == "password":
        return _password_auth(mapping, path, region, ctx)
    if isinstance(auth_type, str):
        message = f'must be "aksk" or "password", not {_show(auth_type)}'
        ctx.problems.add(_join(path, "type"), message)
    else:
        ctx.problems.add(_join(path, "type"), f"must be a string, not {_type_name(auth_type)}")
    return None


@dataclass(frozen=True, slots=True)
class _Settings:
    """The tunables a target inherits from the top level; ``None`` = not set here."""

    poll_interval: float | None = None
    timeout: float | None = None
    concurrency: int | None = None
    rate_limit: float | None = None

    @classmethod
    def read(cls, mapping: Mapping[Any, Any], path: str, problems: Problems) -> _Settings:
        return cls(
            poll_interval=_duration(mapping, "poll_interval", path, problems),
            timeout=_duration(mapping, "timeout", path, problems),
            concurrency=_concurrency(mapping, path, problems),
            rate_limit=_rate_limit(mapping, path, problems),
        )

    def over(self, base: _Settings) -> _Settings:
        """These settings, falling back to ``base`` for what is not set."""
        return _Settings(
            poll_interval=_first(self.poll_interval, base.poll_interval),
            timeout=_first(self.timeout, base.timeout),
            concurrency=_first(self.concurrency, base.concurrency),
            rate_limit=_first(self.rate_limit, base.rate_limit),
        )


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value


def _effective_timeout(settings: _Settings) -> float:
    """The timeout a target runs with: the one set for it, else ``min(10s, poll_interval)``.

    This is Prometheus' rule for ``scrape_timeout``, so a short interval needs no timeout set.
    """
    if settings.timeout is not None:
        return settings.timeout
    poll = DEFAULT_POLL_INTERVAL if settings.poll_interval is None else settings.poll_interval
    return min(DEFAULT_TIMEOUT, poll)


def _check_timeout(
    own: _Settings, effective: _Settings, path: str, name: str | None, problems: Problems
) -> bool:
    """Check that an explicitly set timeout is shorter than the target's poll interval.

    ``own`` is what the target itself sets, ``effective`` that with the top level's settings
    under it. The problem is reported where the timeout was set (the target, or the top level
    for an inherited one) and names the target.
    """
    timeout = effective.timeout
    poll = _first(effective.poll_interval, DEFAULT_POLL_INTERVAL)
    if timeout is None or timeout < poll:
        return True
    target = f"target {name!r}" if name else "this target"
    message = (
        f"timeout ({_format_seconds(timeout)}) must be shorter than "
        f"poll_interval ({_format_seconds(poll)})"
    )
    if own.timeout is not None:
        problems.add(_join(path, "timeout"), f"{message} of {target}")
    else:
        problems.add("timeout", f"{message} of {target} ({path}), which inherits this timeout")
    return False


def _target(
    mapping: dict[Any, Any], path: str, inherited: _Settings, ctx: _Context
) -> TargetConfig | None:
    problems = ctx.problems
    elsewhere = {k: "it belongs under filters" for k in _FILTER_KEYS}
    elsewhere |= {k: "it belongs under auth" for k in _AUTH_KEYS}
    elsewhere |= {k: "it belongs under tls" for k in _TLS_KEYS}
    elsewhere["tls_config"] = 'the section is called "tls" here'
    _check_keys(mapping, _TARGET_KEYS, path, problems, elsewhere)
    name = _string(mapping, "name", path, problems, required=True)
    region = _string(mapping, "region", path, problems, required=True)
    if region is not None and not _REGION_RE.fullmatch(region):
        problems.add(
            _join(path, "region"), "must be lowercase letters, digits and '-' (e.g. cn-north-4)"
        )
        region = None
    project_id = _string(mapping, "project_id", path, problems, required=True)
    endpoint = _url(mapping, "endpoint", path, problems)
    if endpoint is None and region is not None:
        endpoint = f"https://dli.{region}.myhuaweicloud.com"
    auth = _auth(mapping.get("auth"), _join(path, "auth"), region, ctx)
    own = _Settings.read(mapping, path, problems)
    settings = own.over(inherited)
    timeout_ok = _check_timeout(own, settings, path, name, problems)
    filters = _filters(mapping.get("filters"), _join(path, "filters"), problems)
    tls = _tls(mapping.get("tls"), _join(path, "tls"), ctx)
    if (
        name is None
        or region is None
        or project_id is None
        or not isinstance(endpoint, str)
        or auth is None
        or not timeout_ok
        or tls is None
    ):
        return None
    return TargetConfig(
        name=name,
        region=region,
        project_id=project_id,
        endpoint=endpoint,
        auth=auth,
        poll_interval=_first(settings.poll_interval, DEFAULT_POLL_INTERVAL),
        timeout=_effective_timeout(settings),
        concurrency=_first(settings.concurrency, DEFAULT_CONCURRENCY),
        rate_limit=_first(settings.rate_limit, DEFAULT_RATE_LIMIT),
        filters=filters,
        tls=tls,
    )


def _targets(value: Any, inherited: _Settings, ctx: _Context) -> list[TargetConfig]:
    problems = ctx.problems
    if value is _INVALID:
        return []
    if value is None:
        problems.add("targets", "is required (a list of targets)")
        return []
    if not isinstance(value, list):
        problems.add("targets", f"must be a list, not {_type_name(value)}")
        return []
    if not value:
        problems.add("targets", "must list at least one target")
        return []
    targets: list[TargetConfig] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(value):
        path = _index("targets", index)
        mapping = _mapping(item, path, problems)
        if mapping is None:
            continue
        name = mapping.get("name")
        if isinstance(name, str) and name.strip():
            if name in first_seen:
                problems.add(
                    _join(path, "name"),
                    f"duplicate target name {name!r} (also targets[{first_seen[name]}])",
                )
            else:
                first_seen[name] = index
        target = _target(mapping, path, inherited, ctx)
        if target is not None:
            targets.append(target)
    return targets


def _config(data: Any, ctx: _Context) -> tuple[list[TargetConfig], MetricOptions]:
    problems = ctx.problems
    if data is None:
        problems.add("", "file is empty (expected a mapping with a targets list)")
        return [], MetricOptions()
    if not isinstance(data, dict):
        problems.add("", f"top level must be a mapping, not {_type_name(data)}")
        return [], MetricOptions()
    elsewhere = {k: "it belongs under an entry of targets" for k in _TARGET_KEYS}
    _check_keys(data, _TOP_KEYS, "", problems, elsewhere)
    # Only each target's effective values are checked: a top-level setting that every target
    # overrides applies to none of them.
    top = _Settings.read(data, "", problems)
    metrics = _metric_options(data.get("metrics"), problems)
    return _targets(data.get("targets"), top, ctx), metrics


def _metric_options(value: Any, problems: Problems) -> MetricOptions:
    if value is None or value is _INVALID:
        return MetricOptions()
    mapping = _mapping(value, "metrics", problems)
    if mapping is None:
        return MetricOptions()
    _check_keys(mapping, _METRICS_KEYS, "metrics", problems)
    options = MetricOptions()
    info = mapping.get("job_info_labels", True)
    if not isinstance(info, bool):
        problems.add("metrics.job_info_labels", f"must be true or false, not {_type_name(info)}")
        info = True
    state_sets = mapping.get("state_sets", options.state_sets)
    if state_sets not in STATE_SET_MODES:
        problems.add(
            "metrics.state_sets",
            f"must be one of {', '.join(STATE_SET_MODES)}, not {_show(state_sets)}",
        )
        state_sets = options.state_sets
    return MetricOptions(job_info_labels=info, state_sets=state_sets)


# --------------------------------------------------------------------------- entry points


def parse_config(
    text: str,
    source: str,
    environ: Mapping[str, str] | None = None,
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Parse and validate config ``text``; ``source`` names it in problems.

    ``environ`` (default :data:`os.environ`) supplies ``${VAR}`` values and the AK/SK fallback.
    Relative ``*_file`` paths are resolved against ``base_dir`` (default: the working directory).
    Raises :class:`ConfigError` listing every problem found.
    """
    problems = Problems(source)
    ctx = _Context(
        problems=problems,
        environ=os.environ if environ is None else environ,
        base_dir=Path(base_dir) if base_dir is not None else Path(),
    )
    data = load_yaml(text, problems)
    targets: list[TargetConfig] = []
    metrics = MetricOptions()
    if data is not _INVALID:
        data = _Expander(ctx.environ, problems).data(data, "")
        targets, metrics = _config(data, ctx)
    if problems.items:
        raise ConfigError(problems.items)
    return Config(targets=tuple(targets), source=source, metrics=metrics)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path`` (blocking I/O: call off the event loop).

    Relative ``*_file`` paths in it are resolved against the file's directory. The file must be
    a regular file (or a symlink to one) of at most ``MAX_CONFIG_FILE_SIZE`` bytes.
    """
    source = os.fspath(path)
    try:
        raw = read_bounded(source, MAX_CONFIG_FILE_SIZE)
    except FileReadError as exc:
        problem = ConfigProblem(source, "", f"cannot read file: {exc.reason}")
        raise ConfigError([problem]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(source, "", "file is not valid UTF-8")]) from None
    return parse_config(text, source, environ, base_dir=Path(source).parent)
