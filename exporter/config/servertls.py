"""The HTTPS server's TLS context, from the web config's ``tls_server_config``.

Built once when the web config is checked (so that a key not matching its certificate is a
config problem) and again at start-up, from the files as they are then.
"""

from __future__ import annotations

import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

__all__ = ["TLS_VERSIONS", "TlsConfig", "load_error", "server_context"]

#: Names accepted by ``min_version`` / ``max_version``, as exporter-toolkit spells them.
TLS_VERSIONS: Final = MappingProxyType(
    {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
)


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Server certificate and key (absolute paths) and the accepted TLS versions."""

    cert_file: Path
    key_file: Path
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """A server-side context for ``tls``; raises :class:`OSError` (or ``ssl.SSLError``)."""
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


def load_error(exc: OSError) -> str:
    """The problem with ``key_file`` that made :func:`server_context` raise ``exc``."""
    if isinstance(exc, ssl.SSLError) and exc.reason == "KEY_VALUES_MISMATCH":
        return "does not match the certificate in cert_file"
    if isinstance(exc, ssl.SSLError):
        return f"cannot load the key with cert_file: {exc.reason or exc.library or 'TLS error'}"
    return f"cannot load the key with cert_file: {exc.strerror or type(exc).__name__}"
