"""AK/SK signing: byte-for-byte agreement with the official SDK's Signer, and verification."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote, urlsplit

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.signing import (
    QueryValue,
    SignatureError,
    canonical_query_string,
    format_sdk_date,
    parse_sdk_date,
    sign_request,
    verify_request,
)

AK = "HPUAEXAMPLEACCESSKEY"
SK = "sk-Very-Secret-0123456789abcdefghij"
NOW = datetime(2024, 5, 17, 8, 30, 12, tzinfo=UTC)
SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies ---------------------------------------------------------------------------

ODD_CHARS = " ~+%:/@!$&'()*,;=?#é中😀-._\t"
odd_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(ODD_CHARS),
        st.characters(codec="utf-8"),
    ),
    max_size=10,
)
# Query values as the SDK accepts them; the sequences are lists (the SDK only expands lists).
query_value: st.SearchStrategy[QueryValue] = st.one_of(
    odd_text,
    st.integers(min_value=-(10**6), max_value=10**6),
    st.booleans(),
    st.lists(odd_text, max_size=3),
)
query_params = st.dictionaries(odd_text, query_value, max_size=5)

# (netloc in the URL, scheme, expected Host header)
HOSTS = [
    ("dli.cn-north-4.myhuaweicloud.com", "https", "dli.cn-north-4.myhuaweicloud.com"),
    ("dli.cn-north-4.myhuaweicloud.com:443", "https", "dli.cn-north-4.myhuaweicloud.com"),
    ("127.0.0.1:8080", "http", "127.0.0.1:8080"),
    ("localhost:80", "http", "localhost"),
    ("[::1]:9443", "https", "[::1]:9443"),
]
RESERVED_HEADERS = {
    "host",
    "x-sdk-date",
    "authorization",
    "x-security-token",
    "content-type",
    "x-sdk-content-sha256",
}
header_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
header_value = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


@st.composite
def mixed_case(draw: st.DrawFn, name: str) -> str:
    """The same name with a random upper/lower pattern."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if flip else c for c, flip in zip(name, flips, strict=True))


@st.composite
def extra_headers(draw: st.DrawFn) -> dict[str, str]:
    """Headers with case-insensitively unique, mixed-case names (some containing ``_``)."""
    names = draw(
        st.lists(header_name.filter(lambda n: n not in RESERVED_HEADERS), max_size=5, unique=True)
    )
    return {draw(mixed_case(name)): draw(header_value) for name in names}


def encode_path(segments: list[str], safe: str) -> str:
    return "/" + "/".join(quote(segment, safe=safe) for segment in segments)


@dataclass(frozen=True)
class Case:
    """One generated request, in the shapes both signers need."""

    method: str
    netloc: str
    scheme: str
    host: str
    segments: list[str]
    trailing_slash: bool
    params: dict[str, QueryValue]
    headers: dict[str, str]
    body: bytes
    when: datetime
    date_in_headers: bool
    token: str | None

    @property
    def resource_path(self) -> str:
        """The path as the SDK client builds it (each segment quoted with safe='')."""
        return self.path(safe="")

    def path(self, safe: str) -> str:
        path = encode_path(self.segments, safe=safe)
        return path + "/" if self.trailing_slash and path != "/" else path

    def url(self, query: str) -> str:
        return f"{self.scheme}://{self.netloc}{self.resource_path}" + (f"?{query}" if query else "")


@st.composite
def cases(draw: st.DrawFn) -> Case:
    netloc, scheme, host = draw(st.sampled_from(HOSTS))
    headers = draw(extra_headers())
    content_type = draw(
        st.sampled_from(
            [None, "application/json", "application/json;charset=UTF-8", "text/plain", "a/b"]
        )
    )
    if content_type is not None:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers[draw(mixed_case("x-project-id"))] = draw(st.text("0123456789abcdef", max_size=32))
    if draw(st.integers(0, 4)) == 0:
        headers[draw(mixed_case("host"))] = "explicit.example.com:1234"
    body = draw(
        st.one_of(
            st.just(b""),
            st.dictionaries(odd_text, odd_text, max_size=3).map(lambda d: json.dumps(d).encode()),
            st.binary(min_size=1, max_size=20),
        )
    )
    when = draw(
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))
    ).replace(tzinfo=UTC)
    return Case(
        method=draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get"])),
        netloc=netloc,
        scheme=scheme,
        host=host,
        segments=draw(st.lists(odd_text, min_size=1, max_size=5)),
        trailing_slash=draw(st.booleans()),
        params=draw(query_params),
        headers=headers,
        body=body,
        when=when,
        date_in_headers=draw(st.booleans()),
        token=draw(st.none() | st.text(alphabet=st.characters(codec="ascii"), min_size=1)),
    )


def sdk_sign(case: Case) -> tuple[str, str]:
    """Sign with the official SDK; return (Authorization, request.uri)."""
    credentials = BasicCredentials(AK, SK)
    if case.token is not None:
        credentials.with_security_token(case.token)
    headers = dict(case.headers)
    headers["X-Sdk-Date"] = format_sdk_date(case.when)  # else the SDK reads the clock
    request = SdkRequest(
        method=case.method,
        schema=case.scheme,
        host=case.host,
        resource_path=case.resource_path,
        query_params=[(k, list(v) if isinstance(v, list) else v) for k, v in case.params.items()],
        header_params=headers,
        body=case.body,
    )
    signed = credentials.sign_request(request)
    return str(signed.header_params["Authorization"]), str(signed.uri)


def our_sign(case: Case, url: str) -> dict[str, str]:
    headers = dict(case.headers)
    if case.date_in_headers:
        headers["x-SDK-date"] = format_sdk_date(case.when)
    return sign_request(
        case.method,
        url,
        headers,
        case.body,
        access_key=AK,
        secret_key=SK,
        now=case.when if not case.date_in_headers else NOW,
        security_token=case.token,
    )


def lookup(secrets: Mapping[str, str]) -> Callable[[str], str | None]:
    return secrets.get


# --- agreement with the SDK ---------------------------------------------------------------


@SETTINGS
@given(cases())
def test_authorization_matches_sdk(case: Case) -> None:
    sdk_authorization, sdk_uri = sdk_sign(case)
    query = canonical_query_string(case.params)
    headers = our_sign(case, case.url(query))
    assert headers["Authorization"] == sdk_authorization
    assert sdk_uri == case.resource_path + (f"?{query}" if query else "")


@SETTINGS
@given(cases(), st.data())
def test_any_query_encoding_signs_like_the_canonical_one(case: Case, data: st.DataObject) -> None:
    pairs = [(k, v) for k, vs in case.params.items() if isinstance(vs, list) for v in vs]
    pairs += [(k, v) for k, v in case.params.items() if isinstance(v, str)]
    pairs = data.draw(st.permutations(pairs))
    safe = data.draw(st.sampled_from(["", "~", "~:@!$'()*,;/?"]))
    loose_query = "&".join(f"{quote(k, safe=safe)}={quote(v, safe=safe)}" for k, v in pairs)
    loose_path = case.path(safe="~:@!$'()*,;=+&")
    only_strings = {k: v for k, v in case.params.items() if isinstance(v, str | list)}
    canonical = sign_request(
        case.method,
        case.url(canonical_query_string(only_strings)),
        case.headers,
        case.body,
        access_key=AK,
        secret_key=SK,
        now=case.when,
    )
    loose = sign_request(
        case.method,
        f"{case.scheme}://{case.netloc}{loose_path}?{loose_query}",
        case.headers,
        case.body,
        access_key=AK,
        secret_key=SK,
        now=case.when,
    )
    assert loose["Authorization"] == canonical["Authorization"]


def test_canonical_query_string_examples() -> None:
    params: dict[str, QueryValue] = {
        "show_detail": True,
        "limit": 100,
        "b": ["y", "x y", "x"],
        "a": "a b~+=&/é",
        "empty": [],
        "off": False,
    }
    assert canonical_query_string(params) == (
        "a=a%20b~%2B%3D%26%2F%C3%A9&b=x&b=x%20y&b=y&limit=100&off=false&show_detail=true"
    )
    assert canonical_query_string({}) == ""
    assert canonical_query_string({"t": ("b", "a")}) == "t=a&t=b"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dli.example.com/v1.0/p/streaming/jobs", "dli.example.com"),
        ("https://dli.example.com:443/", "dli.example.com"),
        ("http://dli.example.com:80/", "dli.example.com"),
        ("http://dli.example.com:443/", "dli.example.com:443"),
        ("https://127.0.0.1:8443/x", "127.0.0.1:8443"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("https://user:pw@DLI.Example.com/", "dli.example.com"),
    ],
)
def test_host_header(url: str, host: str) -> None:
    assert sign_request("GET", url, {}, b"", access_key=AK, secret_key=SK, now=NOW)["Host"] == host


def test_added_headers() -> None:
    headers = sign_request(
        "GET",
        "https://dli.example.com/v1.0/p/streaming/jobs?limit=10",
        {"Content-Type": "application/json", "X_Trace": "1"},
        b"",
        access_key=AK,
        secret_key=SK,
        now=datetime(2024, 5, 17, 10, 30, 12, tzinfo=UTC),
        security_token="tok",
    )
    assert headers["X-Sdk-Date"] == "20240517T103012Z"
    assert headers["X-Security-Token"] == "tok"
    assert headers["X_Trace"] == "1"
    assert headers["Authorization"].startswith(
        f"SDK-HMAC-SHA256 Access={AK}, "
        "SignedHeaders=content-type;host;x-sdk-date;x-security-token, Signature="
    )


def test_now_is_converted_to_utc() -> None:
    beijing = datetime(2024, 5, 17, 16, 30, 12, tzinfo=timezone(timedelta(hours=8)))
    headers = sign_request("GET", "https://h/", {}, b"", access_key=AK, secret_key=SK, now=beijing)
    assert headers["X-Sdk-Date"] == "20240517T083012Z"


def test_existing_authorization_is_replaced() -> None:
    headers = sign_request(
        "GET", "https://h/", {"authorization": "old"}, b"", access_key=AK, secret_key=SK, now=NOW
    )
    assert "authorization" not in headers
    assert "authorization" not in headers["Authorization"].split("SignedHeaders=")[1]


@pytest.mark.parametrize(
    ("url", "headers", "now"),
    [
        ("/relative/path", {}, NOW),
        ("https://h/", {}, datetime(2024, 1, 1)),  # naive
        ("https://h/", {"X-Sdk-Date": "2024-01-01T00:00:00Z"}, NOW),
        ("https://h/", {"Foo": "1", "foo": "2"}, NOW),
    ],
)
def test_sign_request_rejects_bad_input(url: str, headers: dict[str, str], now: datetime) -> None:
    with pytest.raises(ValueError):
        sign_request("GET", url, headers, b"", access_key=AK, secret_key=SK, now=now)


def test_parse_sdk_date() -> None:
    assert parse_sdk_date("20240517T083012Z") == NOW
    assert parse_sdk_date(format_sdk_date(NOW)) == NOW
    for bad in ("", "20240517T083012", "2024-05-17T08:30:12Z", "20241317T083012Z", " 2024"):
        with pytest.raises(ValueError):
            parse_sdk_date(bad)


# --- verification -------------------------------------------------------------------------


def signed_request(
    path: str = "/v1.0/p/streaming/jobs",
    params: Mapping[str, QueryValue] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    method: str = "GET",
) -> tuple[str, str, dict[str, str]]:
    """(raw path, raw query, headers) as a server would receive them from sign_request."""
    query = canonical_query_string(params or {"limit": 100, "show_detail": True})
    sent = sign_request(
        method,
        f"https://dli.example.com{path}?{query}",
        {"X-Project-Id": "p", "X_Unsigned": "u", **(headers or {})},
        body,
        access_key=AK,
        secret_key=SK,
        now=NOW,
    )
    return path, query, sent


def verify(
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes = b"",
    *,
    method: str = "GET",
    secrets: Mapping[str, str] | None = None,
    now: datetime = NOW,
) -> str:
    return verify_request(
        method,
        path,
        query,
        headers,
        body,
        lookup_secret=lookup({AK: SK} if secrets is None else secrets),
        now=now,
    )


@SETTINGS
@given(cases(), st.data())
def test_verify_accepts_what_sign_request_produces(case: Case, data: st.DataObject) -> None:
    query = canonical_query_string(case.params)
    headers = our_sign(case, case.url(query))
    received = {data.draw(mixed_case(k.lower())): v for k, v in headers.items()}
    skew = timedelta(seconds=data.draw(st.integers(-900, 900)))
    sdk_date = next(v for k, v in headers.items() if k.lower() == "x-sdk-date")
    when = parse_sdk_date(sdk_date) + skew
    path = urlsplit(case.url(query)).path
    assert verify(path, query, received, case.body, method=case.method, now=when) == AK


def test_verify_accepts_odd_paths_and_loose_query_encoding() -> None:
    segments = ["v1.0", "p q", "~a+b", "100%", "x:y", "中文", "a/b", ""]
    params: dict[str, QueryValue] = {"name": "a b+c=d&e~é", "tags": ["z", "a"], "ok": True}
    path = encode_path(segments, safe="")
    _, query, headers = signed_request(path, params)
    assert verify(path, query, headers) == AK
    loose_query = "tags=z&ok=true&name=a%20b%2Bc%3Dd%26e%7E%C3%A9&tags=a"
    assert verify(encode_path(segments, safe="~:+"), loose_query, headers) == AK


def test_verify_with_body_and_security_token() -> None:
    body = json.dumps({"job_ids": [1, 2]}).encode()
    sent = sign_request(
        "POST",
        "https://dli.example.com/v1.0/p/streaming/jobs/metrics",
        {"Content-Type": "application/json"},
        body,
        access_key=AK,
        secret_key=SK,
        now=NOW,
        security_token="temporary-token",
    )
    path = "/v1.0/p/streaming/jobs/metrics"
    assert verify(path, "", sent, body, method="POST") == AK
    with pytest.raises(SignatureError):
        verify(path, "", sent, body + b" ", method="POST")
    with pytest.raises(SignatureError):
        verify(path, "", {**sent, "X-Security-Token": "other"}, body, method="POST")


def test_unsigned_payload_for_non_json_content() -> None:
    sent = sign_request(
        "PUT",
        "https://dli.example.com/upload",
        {"Content-Type": "application/octet-stream"},
        b"\x00\x01",
        access_key=AK,
        secret_key=SK,
        now=NOW,
    )
    assert sent["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    assert verify("/upload", "", sent, b"any other bytes", method="PUT") == AK


def test_unsigned_headers_may_change() -> None:
    path, query, headers = signed_request()
    assert verify(path, query, {**headers, "X_Unsigned": "changed", "Other": "new"}) == AK


def rejection(
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes = b"",
    *,
    method: str = "GET",
    secrets: Mapping[str, str] | None = None,
    now: datetime = NOW,
) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        verify(path, query, headers, body, method=method, secrets=secrets, now=now)
    error = info.value
    for text in (str(error), repr(error), error.error_msg, *map(str, error.args)):
        assert SK not in text
        assert not SIGNATURE_RE.search(text), "no signature (expected or given) in messages"
    assert error.error_code == "APIG.0301"
    assert error.status == 401
    return error


def replace_signature(authorization: str, signature: str) -> str:
    return authorization.rpartition("Signature=")[0] + "Signature=" + signature


def test_rejects_tampered_signature() -> None:
    path, query, headers = signed_request()
    signature = headers["Authorization"].rpartition("=")[2]
    flipped = ("1" if signature[0] == "0" else "0") + signature[1:]
    bad = {**headers, "Authorization": replace_signature(headers["Authorization"], flipped)}
    assert "signature" in rejection(path, query, bad).error_msg
    non_ascii = {**headers, "Authorization": replace_signature(headers["Authorization"], "é")}
    rejection(path, query, non_ascii)


def test_rejects_unknown_access_key_and_wrong_secret() -> None:
    path, query, headers = signed_request()
    assert "access key" in rejection(path, query, headers, secrets={}).error_msg
    rejection(path, query, headers, secrets={AK: SK + "x"})


def test_rejects_changed_request_parts() -> None:
    path, query, headers = signed_request()
    rejection(path, query.replace("limit=100", "limit=101"), headers)
    rejection(path, query + "&extra=1", headers)
    rejection(path, "", headers)
    rejection(path + "x", query, headers)
    rejection(path, query, headers, method="DELETE")
    rejection(path, query, headers, b"{}")
    rejection(path, query, {**headers, "X-Project-Id": "other"})
    rejection(path, query, {**headers, "Host": "evil.example.com"})


def test_clock_skew() -> None:
    path, query, headers = signed_request()
    limit = timedelta(minutes=15)
    assert verify(path, query, headers, now=NOW + limit) == AK
    assert verify(path, query, headers, now=NOW - limit) == AK
    for now in (NOW + limit + timedelta(seconds=1), NOW - limit - timedelta(seconds=1)):
        assert "clock skew" in rejection(path, query, headers, now=now).error_msg


def test_rejects_missing_or_malformed_parts() -> None:
    path, query, headers = signed_request()
    no_auth = {k: v for k, v in headers.items() if k != "Authorization"}
    assert "missing" in rejection(path, query, no_auth).error_msg
    for value in (
        "",
        "garbage",
        "SDK-HMAC-SM3 " + headers["Authorization"].partition(" ")[2],
        "SDK-HMAC-SHA256 Access=AK",
        "SDK-HMAC-SHA256 Access=, SignedHeaders=host;x-sdk-date, Signature=00",
        "SDK-HMAC-SHA256 Access=AK SignedHeaders=host",
        headers["Authorization"].replace("SignedHeaders=", "SignedHeaders=;"),
    ):
        rejection(path, query, {**headers, "Authorization": value})
    no_date = {k: v for k, v in headers.items() if k != "X-Sdk-Date"}
    assert "X-Sdk-Date" in rejection(path, query, no_date).error_msg
    bad_date = {**headers, "X-Sdk-Date": "yesterday"}
    assert "X-Sdk-Date" in rejection(path, query, bad_date).error_msg
    no_host = {k: v for k, v in headers.items() if k != "Host"}
    assert "host" in rejection(path, query, no_host).error_msg


@pytest.mark.parametrize("omitted", ["host", "x-sdk-date"])
def test_rejects_signed_header_list_without_host_or_date(omitted: str) -> None:
    path, query, headers = signed_request()
    authorization = headers["Authorization"].replace(f"{omitted};", "").replace(f";{omitted}", "")
    assert omitted not in authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    error = rejection(path, query, {**headers, "Authorization": authorization})
    assert f"must include {omitted}" in error.error_msg


def test_signature_error_shape() -> None:
    error = SignatureError("nope")
    assert (error.error_code, error.error_msg, error.status) == ("APIG.0301", "nope", 401)
    assert str(error) == "APIG.0301: nope"
    assert "nope" in repr(error)
