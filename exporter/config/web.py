"""``--web.config.file``: TLS and basic auth, in the Prometheus exporter-toolkit format.

The file has the shape documented for exporter-toolkit
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)::

    tls_server_config:
      cert_file: server.crt   # PEM; relative paths resolve against this file's directory
      key_file: server.key    # PEM, unencrypted
      min_version: TLS12      # TLS10 | TLS11 | TLS12 | TLS13; default TLS12
      max_version: TLS13      # optional; default: the highest OpenSSL offers
      client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven;
      client_ca_file: clients.crt                    # default NoClientCert
    basic_auth_users:         # user: bcrypt hash ($2a$, $2b$ or $2y$)
      prometheus: $2b$12$...  # e.g. htpasswd -nBC 12 "" | tr -d ':\\n'
    unauthenticated_paths:    # dli-exporter extension, see below
      - /-/healthy

Supported: ``cert_file``, ``key_file``, ``min_version``, ``max_version``, ``client_auth_type``
(not the values Python cannot honour exactly, see :mod:`exporter.config.servertls`),
``client_ca_file`` and ``basic_auth_users``. The rest of the toolkit format
(``cert``/``key``/``client_ca`` inline, ``client_allowed_sans``,
``cipher_suites``, ``prefer_server_cipher_suites``, ``curve_preferences``,
``http_server_config``, ``rate_limit``, ``auth_excluded_paths``) is rejected as "not supported"
rather than ignored, and unknown keys are errors. Every problem is reported at once, each as
``<file>: <key>: <problem>``; messages never contain a hash or a password.

Extension: ``unauthenticated_paths`` lists paths served without credentials when
``basic_auth_users`` is set, so a kubelet or load balancer can probe health without a password.
Only ``/-/healthy`` and ``/-/ready`` may be listed (``/metrics`` and ``/`` always need
credentials); the default is none, i.e. every path needs credentials. Matching is exact on the
decoded request path, as the toolkit's own ``auth_excluded_paths`` does.

:func:`load_web_settings` also builds the TLS context, for start-up and for every reload (which
refuses to turn TLS on or off: the scheme a running exporter serves is fixed at start-up).

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
from pydantic import BeforeValidator, Field, PlainValidator, ValidationError
from pydantic_core import ErrorDetails

from exporter.config.loader import load_yaml
from exporter.config.problems import Problems, WebConfigError, show, type_name
from exporter.config.report import report
from exporter.config.section import Issue, Section
from exporter.config.servertls import (
    MAX_PEM_FILE_SIZE,
    TlsConfig,
    TlsFileError,
    TlsServerSection,
    server_context,
)
from exporter.config.types import Context, fail, fail_many
from exporter.files import FileReadError, read_bounded

__all__ = [
    "MAX_PEM_FILE_SIZE",
    "MAX_WEB_CONFIG_SIZE",
    "OPTIONAL_AUTH_PATHS",
    "WebConfig",
    "WebSettings",
    "load_web_config",
    "load_web_settings",
    "ssl_context",
]

#: The only paths ``unauthenticated_paths`` may list.
OPTIONAL_AUTH_PATHS: Final = frozenset({"/-/healthy", "/-/ready"})
#: The web config file is read with this limit (`exporter.files`); its PEM files with
#: `MAX_PEM_FILE_SIZE`.
MAX_WEB_CONFIG_SIZE: Final = 1024 * 1024

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


# --------------------------------------------------------------------------- users and paths


def _mapping(value: Any) -> Any:
    if value is None:
        fail("must be a mapping, not null")
    return value


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

    Blocking. Raises :class:`WebConfigError` if the files changed into something unusable since
    loading (the problem names the key; never any of the files' content).
    """
    if config.tls is None:
        return None
    try:
        return server_context(config.tls)
    except TlsFileError as exc:
        problems = Problems(config.source)
        problems.add(f"tls_server_config.{exc.key}", exc.message)
        raise WebConfigError(problems.items) from None


@dataclass(frozen=True, slots=True)
class WebSettings:
    """A web config and the TLS context built from its files (``None`` without TLS)."""

    config: WebConfig = field(default_factory=WebConfig)
    tls: ssl.SSLContext | None = None


def load_web_settings(
    path: str | os.PathLike[str], running: WebConfig | None = None
) -> WebSettings:
    """Load the web config at ``path`` and build its TLS context (blocking).

    With ``running`` (a reload), a file that would turn TLS on or off is refused: the
    listener's scheme is fixed at start-up, and turning TLS off would send basic-auth passwords
    in clear text. Raises :class:`WebConfigError`.
    """
    config = load_web_config(path)
    if running is not None and (running.tls is None) != (config.tls is None):
        problems = Problems(config.source)
        if config.tls is None:
            message = (
                "cannot be removed by a reload: the exporter serves HTTPS until restarted "
                "(plain HTTP would carry passwords in clear text)"
            )
        else:
            message = "cannot be added by a reload: the exporter serves plain HTTP until restarted"
        problems.add("tls_server_config", message)
        raise WebConfigError(problems.items)
    return WebSettings(config, ssl_context(config))
