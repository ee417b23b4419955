"""``--web.config.file``: TLS and basic auth, in the Prometheus exporter-toolkit format.

The file has the shape documented for exporter-toolkit
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)::

    tls_server_config:
      cert_file: server.crt   # PEM; relative paths resolve against this file's directory
      key_file: server.key    # PEM, unencrypted
      min_version: TLS12      # TLS10 | TLS11 | TLS12 | TLS13; default TLS12
      max_version: TLS13      # optional; default: the highest OpenSSL offers
    basic_auth_users:         # user: bcrypt hash ($2a$, $2b$ or $2y$)
      prometheus: $2b$12$...  # e.g. htpasswd -nBC 12 "" | tr -d ':\\n'
    unauthenticated_paths:    # dli-exporter extension, see below
      - /-/healthy

Supported: ``cert_file``, ``key_file``, ``min_version``, ``max_version`` and
``basic_auth_users``. The rest of the toolkit format (``cert``/``key`` inline, client
certificates: ``client_auth_type``, ``client_ca_file``, ``client_allowed_sans``;
``cipher_suites``, ``prefer_server_cipher_suites``, ``curve_preferences``,
``http_server_config``, ``rate_limit``, ``auth_excluded_paths``) is rejected as "not supported"
rather than ignored, and unknown keys are errors. Every problem is reported at once, each as
``<file>: <key>: <problem>``; messages never contain a hash or a password.

Extension: ``unauthenticated_paths`` lists paths served without credentials when
``basic_auth_users`` is set, so a kubelet or load balancer can probe health without a password.
Only ``/-/healthy`` and ``/-/ready`` may be listed (``/metrics`` and ``/`` always need
credentials); the default is none, i.e. every path needs credentials. Matching is exact on the
decoded request path, as the toolkit's own ``auth_excluded_paths`` does.

Parsing shares the main config's strict loader (:mod:`exporter.config.loader`), section base
and formatter; the HTTPS context is built by :mod:`exporter.config.servertls`, the basic-auth
middleware for ``basic_auth_users`` lives in :mod:`exporter.basicauth`.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final

import bcrypt
from pydantic import BeforeValidator, Field, PlainValidator, ValidationError, ValidationInfo
from pydantic_core import ErrorDetails

from exporter.config.loader import load_yaml
from exporter.config.problems import Problems, WebConfigError, show, type_name
from exporter.config.report import report
from exporter.config.section import Issue, Section
from exporter.config.servertls import TLS_VERSIONS, TlsConfig, load_error, server_context
from exporter.config.types import Context, context_of, fail, fail_many, resolve
from exporter.files import FileReadError, read_bounded

__all__ = [
    "MAX_PEM_FILE_SIZE",
    "MAX_WEB_CONFIG_SIZE",
    "OPTIONAL_AUTH_PATHS",
    "WebConfig",
    "load_web_config",
    "ssl_context",
]

#: The only paths ``unauthenticated_paths`` may list.
OPTIONAL_AUTH_PATHS: Final = frozenset({"/-/healthy", "/-/ready"})
#: The web config file and its PEM files are read with these limits (`exporter.files`).
MAX_WEB_CONFIG_SIZE: Final = 1024 * 1024
MAX_PEM_FILE_SIZE: Final = 1024 * 1024

_NOT_SUPPORTED: Final = "is not supported by dli-exporter"
_BCRYPT_RE: Final = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_HASH_HINT: Final = "create one with: htpasswd -nBC 12 \"\" | tr -d ':\\n'"
_ALLOWED_PATHS: Final = " or ".join(sorted(OPTIONAL_AUTH_PATHS))


@dataclass(frozen=True, repr=False)
class WebConfig:
    """A validated web config; ``users`` maps user names to bcrypt hashes (never in ``repr``).

    Build it with :func:`load_web_config`, which checks the hashes the middleware relies on.
    """

    tls: TlsConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict, hash=False)
    unauthenticated_paths: frozenset[str] = frozenset()
    source: str = "<web config>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", MappingProxyType(dict(self.users)))

    def __repr__(self) -> str:
        return (
            f"WebConfig(tls={self.tls!r}, users={sorted(self.users)!r}, "
            f"unauthenticated_paths={sorted(self.unauthenticated_paths)!r}, source={self.source!r})"
        )


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and validate a web config file, including its certificate and key files.

    Blocking (file reads, a cheap bcrypt call per user): call it at start-up or in a thread.
    Raises :class:`WebConfigError` listing every problem found.
    """
    problems = Problems(os.fspath(path))
    try:
        text = read_bounded(path, MAX_WEB_CONFIG_SIZE)
    except FileReadError as exc:
        problems.add("", f"cannot read: {exc.reason}")
        raise WebConfigError(problems.items) from None
    data = load_yaml(text, problems)
    if not problems.items and data is None:
        problems.add("", "is empty: set tls_server_config and/or basic_auth_users")
    elif not problems.items and not isinstance(data, dict):
        problems.add("", f"must be a mapping of settings, not {type_name(data)}")
    if problems.items:
        raise WebConfigError(problems.items)
    errors: list[ErrorDetails] = []
    section = None
    try:
        context = Context(base_dir=Path(path).absolute().parent)
        section = WebFile.model_validate(data, context=context)
    except ValidationError as exc:
        errors = exc.errors()
    report(WebFile, errors, (), problems)
    if problems.items or section is None:
        raise WebConfigError(problems.items)
    return section.build(problems.source)


# --------------------------------------------------------------------------- TLS


def _version(value: Any) -> ssl.TLSVersion | None:
    return TLS_VERSIONS[value] if isinstance(value, str) and value in TLS_VERSIONS else None


def _tls_version(value: Any) -> ssl.TLSVersion:
    version = _version(value)
    if version is None:
        shown = show(value) if isinstance(value, str) else type_name(value)
        fail(f"must be one of {', '.join(TLS_VERSIONS)}, not {shown}")
    return version


def _file_name(value: Any, info: ValidationInfo) -> Path:
    if value is None:
        fail("is required")
    if not isinstance(value, str):
        fail(f"must be a file name, not {type_name(value)}")
    if not value.strip():
        fail("must not be empty")
    return resolve(value, context_of(info).base_dir)


def _mapping(value: Any) -> Any:
    if value is None:
        fail("must be a mapping, not null")
    return value


TlsVersion = Annotated[ssl.TLSVersion, PlainValidator(_tls_version)]
FileName = Annotated[Path, PlainValidator(_file_name)]


class TlsServerSection(Section):
    """``tls_server_config``: certificate and key files, TLS versions."""

    key_hints = dict.fromkeys(
        (
            "cert",
            "key",
            "client_auth_type",
            "client_ca_file",
            "client_ca",
            "client_allowed_sans",
            "cipher_suites",
            "prefer_server_cipher_suites",
            "curve_preferences",
        ),
        _NOT_SUPPORTED,
    )

    cert_file: FileName
    key_file: FileName
    min_version: TlsVersion = ssl.TLSVersion.TLSv1_2
    max_version: Annotated[ssl.TLSVersion | None, PlainValidator(_tls_version)] = None

    @classmethod
    def postcheck(cls, data: dict[Any, Any], failed: set[str], context: Context) -> list[Issue]:
        minimum = _version(data.get("min_version")) or ssl.TLSVersion.TLSv1_2
        maximum = _version(data.get("max_version"))
        issues: list[Issue] = []
        if maximum is not None and maximum < minimum:
            issues.append((("max_version",), "must not be lower than min_version"))
        if failed & {"cert_file", "key_file"} or not {"cert_file", "key_file"} <= data.keys():
            return issues
        tls = TlsConfig(
            resolve(data["cert_file"], context.base_dir),
            resolve(data["key_file"], context.base_dir),
            minimum,
            maximum,
        )
        file_issues = _check_pem_files(tls)
        if not file_issues:
            try:
                server_context(tls)
            except OSError as exc:  # ssl.SSLError included
                file_issues.append((("key_file",), load_error(exc)))
        return issues + file_issues

    def build(self) -> TlsConfig:
        return TlsConfig(self.cert_file, self.key_file, self.min_version, self.max_version)


def _check_pem_files(tls: TlsConfig) -> list[Issue]:
    """A missing, unreadable or wrong-content certificate or key file, per key."""
    issues: list[Issue] = []
    cert = _read(tls.cert_file, "cert_file", issues)
    if cert is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
                cadata=cert.decode("ascii", "replace")
            )
        except (ssl.SSLError, ValueError):
            issues.append((("cert_file",), "does not contain a PEM certificate"))
    key = _read(tls.key_file, "key_file", issues)
    if key is not None and b"PRIVATE KEY-----" not in key:
        issues.append((("key_file",), "does not contain a PEM private key"))
    elif key is not None and b"ENCRYPTED" in key:
        message = "is encrypted; passphrase-protected keys are not supported"
        issues.append((("key_file",), message))
    return issues


def _read(path: Path, key: str, issues: list[Issue]) -> bytes | None:
    try:
        return read_bounded(path, MAX_PEM_FILE_SIZE)
    except FileReadError as exc:
        issues.append(((key,), f"cannot read {str(path)!r}: {exc.reason}"))
        return None


# --------------------------------------------------------------------------- users and paths


def _users(value: Any) -> dict[str, bytes]:
    if not isinstance(value, dict):
        fail(f"must be a mapping of user name to bcrypt hash, not {type_name(value)}")
    users: dict[str, bytes] = {}
    problems: list[tuple[str | int, str]] = []
    for user, hashed in value.items():
        key = user if isinstance(user, str | int) else str(user)
        if not isinstance(user, str):
            problems.append((key, f"user names must be strings, not {type_name(user)} (quote it)"))
        elif not user or ":" in user:
            problems.append((key, "user names must be non-empty and must not contain ':'"))
        elif not isinstance(hashed, str):
            problems.append((key, f"must be a bcrypt hash string, not {type_name(hashed)}"))
        elif not _is_bcrypt_hash(hashed):
            message = f"is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31); {_HASH_HINT}"
            problems.append((key, message))
        else:
            users[user] = hashed.encode("ascii")
    if problems:
        fail_many(problems)
    return users


def _is_bcrypt_hash(text: str) -> bool:
    """Shape check plus a bcrypt run at the lowest cost, which rejects a malformed salt."""
    if _BCRYPT_RE.fullmatch(text) is None:
        return False
    try:
        bcrypt.checkpw(b"", b"$2b$04$" + text[7:].encode("ascii"))
    except ValueError:
        return False
    return True


def _paths(value: Any) -> Any:
    if not isinstance(value, list):
        fail(f"must be a list of paths ({_ALLOWED_PATHS}), not {type_name(value)}")
    return value


def _path(value: Any) -> str:
    if not isinstance(value, str) or value not in OPTIONAL_AUTH_PATHS:
        shown = show(value) if isinstance(value, str) else type_name(value)
        fail(f"must be {_ALLOWED_PATHS}, not {shown}")
    return value


class WebFile(Section):
    """The whole web config file."""

    key_hints = MappingProxyType(
        {
            "http_server_config": _NOT_SUPPORTED,
            "rate_limit": _NOT_SUPPORTED,
            "auth_excluded_paths": f"{_NOT_SUPPORTED}; use unauthenticated_paths",
        }
    )

    tls_server_config: Annotated[TlsServerSection | None, BeforeValidator(_mapping)] = None
    basic_auth_users: Annotated[dict[str, bytes], PlainValidator(_users)] = Field(
        default_factory=dict
    )
    unauthenticated_paths: Annotated[
        tuple[Annotated[str, PlainValidator(_path)], ...], BeforeValidator(_paths)
    ] = ()

    @classmethod
    def postcheck(cls, data: dict[Any, Any], failed: set[str], context: Context) -> list[Issue]:
        paths = data.get("unauthenticated_paths")
        listed = isinstance(paths, list) and any(
            isinstance(p, str) and p in OPTIONAL_AUTH_PATHS for p in paths
        )
        if listed and not data.get("basic_auth_users"):
            return [(("unauthenticated_paths",), "has no effect without basic_auth_users")]
        return []

    def build(self, source: str) -> WebConfig:
        tls = None if self.tls_server_config is None else self.tls_server_config.build()
        paths = frozenset(self.unauthenticated_paths)
        return WebConfig(tls, self.basic_auth_users, paths, source)


def ssl_context(config: WebConfig) -> ssl.SSLContext | None:
    """A server-side SSL context for ``config.tls`` (``None`` without TLS); reloads the files.

    Raises :class:`WebConfigError` if the files changed into something unusable since loading.
    """
    if config.tls is None:
        return None
    try:
        return server_context(config.tls)
    except OSError as exc:  # ssl.SSLError included
        problems = Problems(config.source)
        problems.add("tls_server_config.key_file", load_error(exc))
        raise WebConfigError(problems.items) from None
