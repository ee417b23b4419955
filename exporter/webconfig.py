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

The basic-auth middleware for ``basic_auth_users`` lives in :mod:`exporter.basicauth`.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import ssl
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import bcrypt

from exporter.config import ConfigProblem, Problems
from exporter.files import FileReadError, read_bounded
from exporter.yamlfile import load_yaml

__all__ = [
    "OPTIONAL_AUTH_PATHS",
    "TLS_VERSIONS",
    "TlsConfig",
    "WebConfig",
    "WebConfigError",
    "load_web_config",
    "ssl_context",
]

log = logging.getLogger(__name__)

#: Names accepted by ``min_version`` / ``max_version``, as exporter-toolkit spells them.
TLS_VERSIONS: Final = MappingProxyType(
    {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
)
#: The only paths ``unauthenticated_paths`` may list.
OPTIONAL_AUTH_PATHS: Final = frozenset({"/-/healthy", "/-/ready"})

_TOP_KEYS: Final = ("tls_server_config", "basic_auth_users", "unauthenticated_paths")
_TLS_KEYS: Final = ("cert_file", "key_file", "min_version", "max_version")
_UNSUPPORTED_TOP: Final = ("http_server_config", "rate_limit", "auth_excluded_paths")
_UNSUPPORTED_TLS: Final = (
    "cert",
    "key",
    "client_auth_type",
    "client_ca_file",
    "client_ca",
    "client_allowed_sans",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
#: The web config file and its PEM files are read with these limits (`exporter.files`).
MAX_WEB_CONFIG_SIZE: Final = 1024 * 1024
MAX_PEM_FILE_SIZE: Final = 1024 * 1024
_BCRYPT_RE: Final = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_HASH_HINT: Final = "create one with: htpasswd -nBC 12 \"\" | tr -d ':\\n'"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Server certificate and key (absolute paths) and the accepted TLS versions."""

    cert_file: Path
    key_file: Path
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None


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


class WebConfigError(Exception):
    """Every problem found in a web config file; ``str()`` gives one line per problem."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Problems(Problems):
    """Collects the problems of one load."""

    def raise_any(self) -> None:
        if self.items:
            raise WebConfigError(self.items)


# --------------------------------------------------------------------------- loading


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and validate a web config file, including its certificate and key files.

    Blocking (file reads, a cheap bcrypt call per user): call it at start-up or in a thread.
    Raises :class:`WebConfigError` listing every problem found.
    """
    problems = _Problems(os.fspath(path))
    try:
        text = read_bounded(path, MAX_WEB_CONFIG_SIZE)
    except FileReadError as exc:
        problems.add("", f"cannot read: {exc.reason}")
        problems.raise_any()
    data = load_yaml(text, problems)
    problems.raise_any()
    config = _build(data, Path(path).absolute().parent, problems)
    problems.raise_any()
    assert config is not None  # no problems means a config was built
    return config


def _build(data: Any, base_dir: Path, problems: _Problems) -> WebConfig | None:
    if data is None:
        problems.add("", "is empty: set tls_server_config and/or basic_auth_users")
        return None
    if not isinstance(data, dict):
        problems.add("", f"must be a mapping of settings, not {_type_name(data)}")
        return None
    _check_keys(data, _TOP_KEYS, _UNSUPPORTED_TOP, "", problems)
    tls = None
    if "tls_server_config" in data:
        tls = _tls(data["tls_server_config"], base_dir, problems)
    users: dict[str, bytes] = {}
    if "basic_auth_users" in data:
        users = _users(data["basic_auth_users"], problems)
    paths: frozenset[str] = frozenset()
    if "unauthenticated_paths" in data:
        paths = _paths(data["unauthenticated_paths"], problems)
        if paths and not data.get("basic_auth_users"):
            problems.add("unauthenticated_paths", "has no effect without basic_auth_users")
    return WebConfig(tls=tls, users=users, unauthenticated_paths=paths, source=problems.source)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return (names | {list: "list", dict: "mapping"}).get(type(value), type(value).__name__)


def _check_keys(
    mapping: Mapping[Any, Any],
    allowed: Sequence[str],
    unsupported: Sequence[str],
    path: str,
    problems: _Problems,
) -> None:
    for key in mapping:
        name = f"{path}.{key}" if path else str(key)
        if key in allowed:
            continue
        if key in unsupported:
            hint = "; use unauthenticated_paths" if key == "auth_excluded_paths" else ""
            problems.add(name, f"is not supported by dli-exporter{hint}")
            continue
        message = "unknown key"
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        if close:
            message += f' (did you mean "{close[0]}"?)'
        problems.add(name, message)


# --------------------------------------------------------------------------- TLS


def _tls(value: Any, base_dir: Path, problems: _Problems) -> TlsConfig | None:
    path = "tls_server_config"
    if not isinstance(value, dict):
        problems.add(path, f"must be a mapping, not {_type_name(value)}")
        return None
    _check_keys(value, _TLS_KEYS, _UNSUPPORTED_TLS, path, problems)
    cert_file = _file_path(value, "cert_file", base_dir, problems)
    key_file = _file_path(value, "key_file", base_dir, problems)
    min_version = _tls_version(value, "min_version", problems) or ssl.TLSVersion.TLSv1_2
    max_version = _tls_version(value, "max_version", problems)
    if max_version is not None and max_version < min_version:
        problems.add(f"{path}.max_version", "must not be lower than min_version")
    if cert_file is None or key_file is None:
        return None
    tls = TlsConfig(cert_file, key_file, min_version, max_version)
    before = len(problems.items)
    _check_pem_files(tls, problems)
    if len(problems.items) == before:
        try:
            _build_ssl_context(tls)
        except OSError as exc:  # ssl.SSLError included
            problems.add(f"{path}.key_file", _load_error(exc))
    return tls


def _file_path(
    mapping: Mapping[Any, Any], name: str, base_dir: Path, problems: _Problems
) -> Path | None:
    key = f"tls_server_config.{name}"
    value = mapping.get(name)
    if value is None:
        problems.add(key, "is required")
        return None
    if not isinstance(value, str):
        problems.add(key, f"must be a file name, not {_type_name(value)}")
        return None
    if not value.strip():
        problems.add(key, "must not be empty")
        return None
    file_path = Path(value).expanduser()
    return file_path if file_path.is_absolute() else base_dir / file_path


def _tls_version(
    mapping: Mapping[Any, Any], name: str, problems: _Problems
) -> ssl.TLSVersion | None:
    """The version named by ``mapping[name]``; ``None`` when absent or invalid (reported)."""
    if name not in mapping:
        return None
    value = mapping[name]
    if isinstance(value, str) and value in TLS_VERSIONS:
        return TLS_VERSIONS[value]
    shown = repr(value) if isinstance(value, str) else _type_name(value)
    problems.add(
        f"tls_server_config.{name}", f"must be one of {', '.join(TLS_VERSIONS)}, not {shown}"
    )
    return None


def _check_pem_files(tls: TlsConfig, problems: _Problems) -> None:
    """Report a missing, unreadable or wrong-content certificate or key file, per key."""
    cert = _read(tls.cert_file, "tls_server_config.cert_file", problems)
    if cert is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
                cadata=cert.decode("ascii", "replace")
            )
        except (ssl.SSLError, ValueError):
            problems.add("tls_server_config.cert_file", "does not contain a PEM certificate")
    key = _read(tls.key_file, "tls_server_config.key_file", problems)
    if key is not None:
        if b"PRIVATE KEY-----" not in key:
            problems.add("tls_server_config.key_file", "does not contain a PEM private key")
        elif b"ENCRYPTED" in key:
            problems.add(
                "tls_server_config.key_file",
                "is encrypted; passphrase-protected keys are not supported",
            )


def _read(file_path: Path, key: str, problems: _Problems) -> bytes | None:
    try:
        return read_bounded(file_path, MAX_PEM_FILE_SIZE)
    except FileReadError as exc:
        problems.add(key, f"cannot read {str(file_path)!r}: {exc.reason}")
        return None


def _load_error(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason == "KEY_VALUES_MISMATCH":
        return "does not match the certificate in cert_file"
    if isinstance(exc, ssl.SSLError):
        return f"cannot load the key with cert_file: {exc.reason or exc.library or 'TLS error'}"
    return f"cannot load the key with cert_file: {exc.strerror or type(exc).__name__}"


def _build_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; the operator asked for them explicitly.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = tls.min_version
        if tls.max_version is not None:
            context.maximum_version = tls.max_version
    # An encrypted key must fail here, never prompt on the terminal for a passphrase.
    context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_passphrase)
    return context


def _no_passphrase() -> bytes:
    return b""


def ssl_context(config: WebConfig) -> ssl.SSLContext | None:
    """A server-side SSL context for ``config.tls`` (``None`` without TLS); reloads the files.

    Raises :class:`WebConfigError` if the files changed into something unusable since loading.
    """
    if config.tls is None:
        return None
    try:
        return _build_ssl_context(config.tls)
    except OSError as exc:  # ssl.SSLError included
        problems = _Problems(config.source)
        problems.add("tls_server_config.key_file", _load_error(exc))
        raise WebConfigError(problems.items) from None


# --------------------------------------------------------------------------- users and paths


def _users(value: Any, problems: _Problems) -> dict[str, bytes]:
    path = "basic_auth_users"
    if not isinstance(value, dict):
        problems.add(
            path, f"must be a mapping of user name to bcrypt hash, not {_type_name(value)}"
        )
        return {}
    users: dict[str, bytes] = {}
    for user, hashed in value.items():
        key = f"{path}.{user}"
        if not isinstance(user, str):
            problems.add(key, f"user names must be strings, not {_type_name(user)} (quote it)")
            continue
        if not user or ":" in user:
            problems.add(key, "user names must be non-empty and must not contain ':'")
            continue
        if not isinstance(hashed, str):
            problems.add(key, f"must be a bcrypt hash string, not {_type_name(hashed)}")
        elif not _is_bcrypt_hash(hashed):
            problems.add(
                key, f"is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31); {_HASH_HINT}"
            )
        else:
            users[user] = hashed.encode("ascii")
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


def _paths(value: Any, problems: _Problems) -> frozenset[str]:
    key = "unauthenticated_paths"
    allowed = " or ".join(sorted(OPTIONAL_AUTH_PATHS))
    if not isinstance(value, list):
        problems.add(key, f"must be a list of paths ({allowed}), not {_type_name(value)}")
        return frozenset()
    paths: set[str] = set()
    for index, item in enumerate(value):
        if item in OPTIONAL_AUTH_PATHS:
            paths.add(item)
        else:
            shown = repr(item) if isinstance(item, str) else _type_name(item)
            problems.add(f"{key}[{index}]", f"must be {allowed}, not {shown}")
    return frozenset(paths)
