"""``tls_server_config`` of the web config, and the HTTPS server's TLS context built from it.

The context is built once when the web config is checked (so that a key not matching its
certificate is a config problem) and again when it is put in force (start-up or a reload), from
the files as they are then. Every PEM file is read through :func:`exporter.files.read_bounded`
first, so a FIFO or a device is a problem, not a hang.

Client certificates follow exporter-toolkit's ``client_auth_type`` (Go's ``tls.ClientAuthType``)
as far as Python's ``ssl`` can do exactly the same (see `CLIENT_AUTH_TYPES`).
"""

from __future__ import annotations

import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import PlainValidator, ValidationInfo

from exporter.config.problems import show, type_name
from exporter.config.section import Issue, Section
from exporter.config.types import Context, context_of, fail, resolve
from exporter.files import FileReadError, read_bounded

__all__ = [
    "CLIENT_AUTH_TYPES",
    "MAX_PEM_FILE_SIZE",
    "TLS_VERSIONS",
    "TlsConfig",
    "TlsFileError",
    "TlsServerSection",
    "server_context",
]

#: Certificate, key and client CA files are read with this limit (`exporter.files`).
MAX_PEM_FILE_SIZE: Final = 1024 * 1024
#: Names accepted by ``min_version`` / ``max_version``, as exporter-toolkit spells them.
TLS_VERSIONS: Final = MappingProxyType(
    {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
)
#: ``client_auth_type`` values (exporter-toolkit ``web/tls_config.go``) and Python's mode.
CLIENT_AUTH_TYPES: Final = MappingProxyType(
    {
        "NoClientCert": ssl.CERT_NONE,
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }
)
#: Toolkit values Python's ``ssl`` cannot honour exactly: a server context verifies every
#: certificate it asks for, so "ask (or require) but do not verify" is refused, not weakened.
_UNVERIFIED: Final = "Python's ssl cannot {what} a client certificate without verifying it"
_REFUSED_CLIENT_AUTH: Final = MappingProxyType(
    {
        "RequestClientCert": _UNVERIFIED.format(what="request")
        + "; use VerifyClientCertIfGiven with client_ca_file",
        "RequireAnyClientCert": _UNVERIFIED.format(what="require")
        + "; use RequireAndVerifyClientCert with client_ca_file",
        "RequireClientCert": _UNVERIFIED.format(what="require")
        + "; use RequireAndVerifyClientCert with client_ca_file",
    }
)
_NOT_SUPPORTED: Final = "is not supported by dli-exporter"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Server certificate and key (absolute paths), TLS versions and client certificates."""

    cert_file: Path
    key_file: Path
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    client_ca_file: Path | None = None


class TlsFileError(Exception):
    """A file named by ``tls_server_config`` cannot be used; ``key`` names its key.

    The message never contains any of the file's content (key material included).
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """A server-side context for ``tls`` (blocking: reads files); raises :class:`TlsFileError`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; the operator asked for them explicitly.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = tls.min_version
        if tls.max_version is not None:
            context.maximum_version = tls.max_version
    try:
        # An encrypted key must fail here, never prompt on the terminal for a passphrase.
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_passphrase)
    except OSError as exc:  # ssl.SSLError included
        raise TlsFileError("key_file", _load_error(exc)) from None
    if tls.client_ca_file is not None:
        data = _read_pem(tls.client_ca_file, "client_ca_file")
        _load_certificates(context, data, "client_ca_file")
    context.verify_mode = tls.client_auth
    return context


def _no_passphrase() -> bytes:
    return b""


def _load_error(exc: OSError) -> str:
    """The problem with ``key_file`` that made ``load_cert_chain`` raise ``exc``."""
    if isinstance(exc, ssl.SSLError) and exc.reason == "KEY_VALUES_MISMATCH":
        return "does not match the certificate in cert_file"
    if isinstance(exc, ssl.SSLError):
        return f"cannot load the key with cert_file: {exc.reason or exc.library or 'TLS error'}"
    return f"cannot load the key with cert_file: {exc.strerror or type(exc).__name__}"


def _read_pem(path: Path, key: str) -> bytes:
    try:
        return read_bounded(path, MAX_PEM_FILE_SIZE)
    except FileReadError as exc:
        raise TlsFileError(key, f"cannot read {str(path)!r}: {exc.reason}") from None


def _load_certificates(context: ssl.SSLContext, data: bytes, key: str) -> None:
    """Trust the PEM certificates in ``data``; at least one must be there."""
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise TlsFileError(key, "does not contain a PEM certificate")
    try:
        context.load_verify_locations(cadata=data.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        raise TlsFileError(key, "does not contain a PEM certificate") from None


# --------------------------------------------------------------------------- the section


def _version(value: Any) -> ssl.TLSVersion | None:
    return TLS_VERSIONS[value] if isinstance(value, str) and value in TLS_VERSIONS else None


def _tls_version(value: Any) -> ssl.TLSVersion:
    version = _version(value)
    if version is None:
        shown = show(value) if isinstance(value, str) else type_name(value)
        fail(f"must be one of {', '.join(TLS_VERSIONS)}, not {shown}")
    return version


def _client_auth(value: Any) -> ssl.VerifyMode:
    if isinstance(value, str) and value in CLIENT_AUTH_TYPES:
        return CLIENT_AUTH_TYPES[value]
    if isinstance(value, str) and value in _REFUSED_CLIENT_AUTH:
        fail(f"{value} is not supported: {_REFUSED_CLIENT_AUTH[value]}")
    shown = show(value) if isinstance(value, str) else type_name(value)
    fail(f"must be one of {', '.join(CLIENT_AUTH_TYPES)}, not {shown}")


def _file_name(value: Any, info: ValidationInfo) -> Path:
    if value is None:
        fail("is required")
    return _optional_file_name(value, info)


def _optional_file_name(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str):
        fail(f"must be a file name, not {type_name(value)}")
    if not value.strip():
        fail("must not be empty")
    return resolve(value, context_of(info).base_dir)


TlsVersion = Annotated[ssl.TLSVersion, PlainValidator(_tls_version)]
FileName = Annotated[Path, PlainValidator(_file_name)]


class TlsServerSection(Section):
    """``tls_server_config``: certificate and key files, TLS versions, client certificates."""

    key_hints = dict.fromkeys(
        (
            "cert",
            "key",
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
    client_auth_type: Annotated[ssl.VerifyMode, PlainValidator(_client_auth)] = ssl.CERT_NONE
    client_ca_file: Annotated[Path | None, PlainValidator(_optional_file_name)] = None

    @classmethod
    def postcheck(cls, data: dict[Any, Any], failed: set[str], context: Context) -> list[Issue]:
        minimum = _version(data.get("min_version")) or ssl.TLSVersion.TLSv1_2
        maximum = _version(data.get("max_version"))
        issues: list[Issue] = []
        if maximum is not None and maximum < minimum:
            issues.append((("max_version",), "must not be lower than min_version"))
        issues += _client_ca_issues(data, failed, context)
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
            except TlsFileError as exc:
                file_issues.append(((exc.key,), exc.message))
        return issues + file_issues

    def build(self) -> TlsConfig:
        return TlsConfig(
            self.cert_file,
            self.key_file,
            self.min_version,
            self.max_version,
            self.client_auth_type,
            self.client_ca_file,
        )


def _client_ca_issues(data: dict[Any, Any], failed: set[str], context: Context) -> list[Issue]:
    """client_ca_file and client_auth_type must agree; a given CA file must load."""
    if failed & {"client_auth_type", "client_ca_file"}:
        return []
    name = data.get("client_auth_type", "NoClientCert")
    ca_file = data.get("client_ca_file")
    if ca_file is None and name != "NoClientCert":
        return [(("client_ca_file",), f"is required with client_auth_type {name}")]
    if ca_file is None:
        return []
    if name == "NoClientCert":
        message = (
            "has no effect with client_auth_type NoClientCert (the default); "
            "set VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )
        return [(("client_ca_file",), message)]
    try:
        pem = _read_pem(resolve(ca_file, context.base_dir), "client_ca_file")
        _load_certificates(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), pem, "client_ca_file")
    except TlsFileError as exc:
        return [(("client_ca_file",), exc.message)]
    return []


def _check_pem_files(tls: TlsConfig) -> list[Issue]:
    """A missing, unreadable or wrong-content certificate or key file, per key."""
    issues: list[Issue] = []
    try:
        cert = _read_pem(tls.cert_file, "cert_file")
        _load_certificates(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), cert, "cert_file")
    except TlsFileError as exc:
        issues.append(((exc.key,), exc.message))
    try:
        key = _read_pem(tls.key_file, "key_file")
    except TlsFileError as exc:
        issues.append(((exc.key,), exc.message))
        return issues
    if b"PRIVATE KEY-----" not in key:
        issues.append((("key_file",), "does not contain a PEM private key"))
    elif b"ENCRYPTED" in key:
        message = "is encrypted; passphrase-protected keys are not supported"
        issues.append((("key_file",), message))
    return issues
