"""Huawei Cloud API-gateway AK/SK signing (``SDK-HMAC-SHA256``), as the official SDK signs.

Pure functions: the caller supplies the clock (``now``) and does all I/O. ``sign_request`` is
the client side; ``verify_request`` is the gateway side, used by the DLI simulator.

Percent-decoding of paths and queries is RFC 3986 style: ``+`` is a literal plus, not a space
(the SDK always sends spaces as ``%20`` and plus signs as ``%2B``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "ALGORITHM",
    "QueryValue",
    "SignatureError",
    "canonical_query_string",
    "format_sdk_date",
    "parse_sdk_date",
    "sign_request",
    "verify_request",
]

QueryValue = str | int | bool | Sequence[str]

ALGORITHM: Final = "SDK-HMAC-SHA256"

_SDK_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_SDK_DATE_RE: Final = re.compile(r"\d{8}T\d{6}Z")
_EMPTY_BODY_SHA256: Final = hashlib.sha256(b"").hexdigest()
_UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
_HASHED_CONTENT_TYPES: Final = ("application/json", "application/bson")
_DEFAULT_PORTS: Final = MappingProxyType({"http": 80, "https": 443})

_DATE_HEADER: Final = "X-Sdk-Date"
_HOST_HEADER: Final = "Host"
_TOKEN_HEADER: Final = "X-Security-Token"  # noqa: S105 (a header name)
_CONTENT_SHA256_HEADER: Final = "X-Sdk-Content-Sha256"
_AUTHORIZATION_HEADER: Final = "Authorization"
_REQUIRED_SIGNED: Final = ("host", "x-sdk-date")

_AUTH_ERROR_CODE: Final = "APIG.0301"
_AUTH_ERROR_PREFIX: Final = "Incorrect IAM authentication information: "


class SignatureError(Exception):
    """A request failed AK/SK verification.

    ``error_code``/``error_msg`` mirror the gateway's JSON error body and ``status`` its HTTP
    status. Messages never carry the secret key or the expected signature.
    """

    def __init__(self, error_msg: str, error_code: str = _AUTH_ERROR_CODE, status: int = 401):
        super().__init__(error_code, error_msg)
        self.error_code = error_code
        self.error_msg = error_msg
        self.status = status

    def __str__(self) -> str:
        return f"{self.error_code}: {self.error_msg}"


def _auth_error(detail: str) -> SignatureError:
    return SignatureError(_AUTH_ERROR_PREFIX + detail)


# --- encoding -----------------------------------------------------------------------------


def _encode(text: str) -> str:
    """Percent-encode UTF-8, leaving only RFC 3986 unreserved characters (incl. ``~``)."""
    return quote(text, safe="")


def _canonical_uri(path: str) -> str:
    """Decode the path, re-encode every segment, and make sure it ends in ``/``."""
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def _query_pairs(params: Mapping[str, QueryValue]) -> list[tuple[str, str]]:
    """Flatten typed query parameters into (key, value) string pairs."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, item) for item in value)
    return pairs


def _parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Split a wire query string into decoded (key, value) pairs; empty pieces are skipped."""
    pairs: list[tuple[str, str]] = []
    for piece in raw_query.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def _canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sort decoded pairs by key then value and encode each as ``key=value``."""
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in sorted(pairs))


def canonical_query_string(params: Mapping[str, QueryValue]) -> str:
    """Encoded, sorted query (no leading ``?``), exactly what the signer signs.

    Booleans become ``true``/``false``; a sequence gives one pair per item. Send the request
    with this query string verbatim (no re-encoding by the HTTP client).
    """
    return _canonical_query(_query_pairs(params))


# --- dates ----------------------------------------------------------------------------------


def format_sdk_date(moment: datetime) -> str:
    """Format an aware datetime as an ``X-Sdk-Date`` value (``YYYYMMDDTHHMMSSZ``, UTC)."""
    if moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).strftime(_SDK_DATE_FORMAT)


def parse_sdk_date(value: str) -> datetime:
    """Parse an ``X-Sdk-Date`` value into an aware UTC datetime; ``ValueError`` if malformed."""
    if not _SDK_DATE_RE.fullmatch(value):
        raise ValueError("X-Sdk-Date must look like YYYYMMDDTHHMMSSZ")
    return datetime.strptime(value, _SDK_DATE_FORMAT).replace(tzinfo=UTC)


# --- the signature itself -------------------------------------------------------------------


def _payload_hash(body: bytes, content_sha256: str | None) -> str:
    """Hex SHA-256 of the body, or the ``X-Sdk-Content-Sha256`` value when one is given."""
    if not body:
        return _EMPTY_BODY_SHA256
    if content_sha256:
        return content_sha256
    return hashlib.sha256(body).hexdigest()


def _signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    signed: Sequence[tuple[str, str]],
    payload_hash: str,
    sdk_date: str,
) -> str:
    """Hex HMAC-SHA256 over the string to sign; ``signed`` is (name, value) per signed header."""
    canonical_headers = "".join(f"{name}:{value.strip()}\n" for name, value in signed)
    canonical_request = "\n".join(
        (
            method.upper(),
            _canonical_uri(path),
            query,
            canonical_headers,
            ";".join(name for name, _ in signed),
            payload_hash,
        )
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{digest}"
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def _lower_index(headers: Mapping[str, str]) -> dict[str, str]:
    """Map lower-cased header names to the names as given; reject case-only duplicates."""
    index: dict[str, str] = {}
    for name in headers:
        lower = name.lower()
        if lower in index:
            raise ValueError(f"duplicate header name (case-insensitive): {name!r}")
        index[lower] = name
    return index


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set a header, replacing any existing header of that name in another case."""
    for existing in [key for key in headers if key.lower() == name.lower()]:
        del headers[existing]
    headers[name] = value


def _host_header(url: str) -> str:
    """``host[:port]`` from an absolute URL, the port only when not the scheme's default."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise ValueError("url must be absolute (scheme://host/...)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    now: datetime,
    security_token: str | None = None,
) -> dict[str, str]:
    """Return the headers to send: ``headers`` plus the signing headers and ``Authorization``.

    Adds ``X-Sdk-Date`` (from the aware ``now``, unless present), ``Host`` (unless present),
    ``X-Security-Token`` (when given) and, like the SDK, ``X-Sdk-Content-Sha256:
    UNSIGNED-PAYLOAD`` for a non-JSON ``Content-Type``. ``url`` is absolute; its query may be
    in any percent-encoding: it is decoded and re-canonicalised, so send the query as
    ``canonical_query_string`` gives it. Header names containing ``_`` are sent but not signed.
    """
    if not access_key or not secret_key:
        raise ValueError("access key and secret key are required")
    default_date = format_sdk_date(now)
    default_host = _host_header(url)
    out = {k: v for k, v in headers.items() if k.lower() != _AUTHORIZATION_HEADER.lower()}
    index = _lower_index(out)
    if "x-sdk-date" not in index:
        out[_DATE_HEADER] = default_date
    if "host" not in index:
        out[_HOST_HEADER] = default_host
    if security_token is not None:
        _set_header(out, _TOKEN_HEADER, security_token)
    content_type = out[index["content-type"]] if "content-type" in index else ""
    if content_type and not content_type.startswith(_HASHED_CONTENT_TYPES):
        _set_header(out, _CONTENT_SHA256_HEADER, _UNSIGNED_PAYLOAD)

    lowered = {name.lower(): value for name, value in out.items()}
    sdk_date = lowered["x-sdk-date"].strip()
    parse_sdk_date(sdk_date)  # a caller-supplied X-Sdk-Date must be well-formed
    parts = urlsplit(url)
    signed = sorted((name, value) for name, value in lowered.items() if "_" not in name)
    signature = _signature(
        secret_key,
        method=method,
        path=parts.path,
        query=_canonical_query(_parse_query(parts.query)),
        signed=signed,
        payload_hash=_payload_hash(body, lowered.get("x-sdk-content-sha256", "").strip()),
        sdk_date=sdk_date,
    )
    signed_names = ";".join(name for name, _ in signed)
    out[_AUTHORIZATION_HEADER] = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={signed_names}, Signature={signature}"
    )
    return out


# --- verification (gateway side) ------------------------------------------------------------


def _parse_authorization(value: str) -> tuple[str, list[str], str]:
    """Split an ``Authorization`` value into (access key, signed header names, signature)."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _auth_error(f"unsupported signing algorithm, expected {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, field = part.strip().partition("=")
        if not eq:
            raise _auth_error("malformed Authorization header")
        fields[key] = field
    access_key = fields.get("Access", "")
    signed = fields.get("SignedHeaders", "").split(";")
    signature = fields.get("Signature", "")
    if not access_key or not signature or not all(signed):
        raise _auth_error("Authorization header needs Access, SignedHeaders and Signature")
    return access_key, signed, signature


def _check_date(value: str | None, now: datetime, max_skew: timedelta) -> str:
    """Validate ``X-Sdk-Date`` against ``now``; return the stripped value."""
    if value is None:
        raise _auth_error("X-Sdk-Date header is missing")
    value = value.strip()
    try:
        moment = parse_sdk_date(value)
    except ValueError:
        raise _auth_error("X-Sdk-Date header is malformed") from None
    if now.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    if abs(now - moment) > max_skew:
        raise _auth_error(
            f"clock skew: request time {value} differs from server time "
            f"{format_sdk_date(now)} by more than {int(max_skew.total_seconds())} s"
        )
    return value


def verify_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    max_skew: timedelta = timedelta(minutes=15),
) -> str:
    """Check a received request's ``Authorization`` header; return the access key.

    ``raw_path``/``raw_query`` are as received (percent-encoded); header lookups ignore case.
    Raises ``SignatureError`` for a missing or malformed header, an unknown access key, a
    signed-header list without ``host`` and ``x-sdk-date``, a missing or skewed ``X-Sdk-Date``
    and a wrong signature.
    """
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lowered.setdefault(name.lower(), value)
    authorization = lowered.get("authorization")
    if authorization is None:
        raise _auth_error("Authorization header is missing")
    access_key, signed_names, signature = _parse_authorization(authorization)
    secret_key = lookup_secret(access_key)
    if not secret_key:
        raise _auth_error("unknown access key")
    lower_names = [name.lower() for name in signed_names]
    for required in _REQUIRED_SIGNED:
        if required not in lower_names:
            raise _auth_error(f"SignedHeaders must include {required}")
    sdk_date = _check_date(lowered.get("x-sdk-date"), now, max_skew)
    missing = [name for name in lower_names if name not in lowered]
    if missing:
        raise _auth_error(f"signed header(s) not in request: {', '.join(missing)}")
    # An unsigned X-Sdk-Content-Sha256 could be forged, so only a signed one replaces the hash.
    signed_sha256 = "x-sdk-content-sha256" in lower_names
    content_sha256 = lowered.get("x-sdk-content-sha256", "") if signed_sha256 else ""
    expected = _signature(
        secret_key,
        method=method,
        path=raw_path,
        query=_canonical_query(_parse_query(raw_query)),
        signed=[(name, lowered[name.lower()]) for name in signed_names],
        payload_hash=_payload_hash(body, content_sha256.strip()),
        sdk_date=sdk_date,
    )
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise _auth_error("verify aksk signature fail")
    return access_key
