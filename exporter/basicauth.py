"""Basic auth for the exporter's endpoints (``basic_auth_users`` of ``--web.config.file``).

Passwords are checked with bcrypt in a worker thread, one check at a time, and the work a
flood of wrong passwords can cause is bounded:

- a user's successful check is remembered (a SHA-256 digest of user, hash and password, one per
  user), so a scraper pays bcrypt once, not on every scrape, and never queues;
- recent failures are remembered the same way (the last ``FAILURE_CACHE_SIZE``), so repeating
  a wrong password costs no bcrypt; identical attempts in flight share one check;
- at most ``max_pending`` checks wait or run at once, at most ``max_pending_per_client`` per
  client address; beyond that the answer is 429 with ``Retry-After: 1``, at once.

An unknown user costs a bcrypt check against a dummy hash of the highest configured cost, and
is cached and bounded exactly like a known one, so timing does not tell which users exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import hmac
import logging
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import bcrypt
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge

from exporter.config.web import WebConfig

__all__ = [
    "DEFAULT_MAX_PENDING",
    "DEFAULT_MAX_PENDING_PER_CLIENT",
    "FAILURE_CACHE_SIZE",
    "REALM",
    "BasicAuth",
    "basic_auth_middleware",
]

log = logging.getLogger(__name__)

#: The basic-auth realm sent in ``WWW-Authenticate``.
REALM: Final = "dli-exporter"
DEFAULT_MAX_PENDING: Final = 4
DEFAULT_MAX_PENDING_PER_CLIENT: Final = 1
FAILURE_CACHE_SIZE: Final = 1024
_BCRYPT_MAX_PASSWORD: Final = 72  # bytes; bcrypt (and Go's x/crypto/bcrypt) refuse longer ones
RESULTS: Final = ("success", "failure", "cached_success", "cached_failure", "throttled")

#: ``bcrypt.checkpw``'s shape: (password, hash) -> matches.
PasswordCheck = Callable[[bytes, bytes], bool]


class Verdict(enum.Enum):
    """What a credentials check concluded."""

    OK = "ok"
    DENIED = "denied"
    THROTTLED = "throttled"


def basic_auth_middleware(
    config: WebConfig,
    *,
    registry: CollectorRegistry | None = None,
    max_pending: int = DEFAULT_MAX_PENDING,
    max_pending_per_client: int = DEFAULT_MAX_PENDING_PER_CLIENT,
    checkpw: PasswordCheck = bcrypt.checkpw,
) -> Middleware | None:
    """The middleware of a fixed ``BasicAuth(config, ...)``; ``None`` without users."""
    if not config.users:
        return None
    auth = BasicAuth(
        config,
        registry=registry,
        max_pending=max_pending,
        max_pending_per_client=max_pending_per_client,
        checkpw=checkpw,
    )
    return auth.middleware


class BasicAuth:
    """Basic auth for ``config.users``, replaceable by :meth:`update` (a reload).

    Missing, malformed or wrong credentials get 401 with a ``Basic`` challenge; too many checks
    in flight get 429. Paths in ``config.unauthenticated_paths`` are served without
    credentials; without users every request passes. ``registry`` receives
    ``dli_exporter_http_auth_checks_total`` and ``dli_exporter_http_auth_checks_in_flight``
    once there are users.
    """

    def __init__(
        self,
        config: WebConfig,
        *,
        registry: CollectorRegistry | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_pending_per_client: int = DEFAULT_MAX_PENDING_PER_CLIENT,
        checkpw: PasswordCheck = bcrypt.checkpw,
    ) -> None:
        self._registry = registry
        self._limits = (max_pending, max_pending_per_client)
        self._checkpw = checkpw
        self._checker: _PasswordChecker | None = None
        self._config = WebConfig()
        self.update(config)

    def update(self, config: WebConfig) -> None:
        """Use ``config``'s users and paths from the next request on.

        A removed user's (or changed hash's) cached login goes at once; failures are forgotten.
        """
        self._config = config
        if not config.users:
            if self._checker is not None:
                self._checker.update({})
            return
        if self._checker is None:
            self._checker = _PasswordChecker(
                config.users,
                metrics=AuthMetrics(self._registry),
                max_pending=self._limits[0],
                max_pending_per_client=self._limits[1],
                checkpw=self._checkpw,
            )
        else:
            self._checker.update(config.users)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The aiohttp middleware."""
        config, checker = self._config, self._checker
        if not config.users or checker is None or request.path in config.unauthenticated_paths:
            return await handler(request)
        headers = request.headers.getall(hdrs.AUTHORIZATION, [])
        credentials = _basic_credentials(headers[0]) if len(headers) == 1 else None
        if credentials is None:
            log.debug("basic auth: missing or malformed credentials", extra=_fields(request))
            return _unauthorized()
        verdict = await checker.check(*credentials, client=request.remote or "")
        if verdict is Verdict.THROTTLED:
            log.debug("basic auth: too many checks in flight", extra=_fields(request))
            return web.Response(
                status=429, text="Too Many Requests\n", headers={hdrs.RETRY_AFTER: "1"}
            )
        if verdict is Verdict.DENIED:
            log.debug("basic auth: invalid credentials", extra=_fields(request))
            return _unauthorized()
        return await handler(request)


class AuthMetrics:
    """The middleware's metrics (into ``registry``; a private one when ``None``)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.checks = Counter(
            "dli_exporter_http_auth_checks_total",
            "Basic-auth credential checks by result: success and failure ran bcrypt, "
            "cached_success and cached_failure were answered from memory (or a check in "
            "flight), throttled got 429 because too many checks were in flight.",
            ("result",),
            registry=registry,
        )
        for result in RESULTS:
            self.checks.labels(result)
        self.in_flight = Gauge(
            "dli_exporter_http_auth_checks_in_flight",
            "Basic-auth bcrypt checks waiting or running now.",
            registry=registry,
        )


def _fields(request: web.Request) -> dict[str, dict[str, str]]:
    return {"fields": {"remote": request.remote or "", "path": request.path}}


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="Unauthorized\n",
        headers={hdrs.WWW_AUTHENTICATE: f'Basic realm="{REALM}"'},
    )


def _basic_credentials(header: str) -> tuple[str, bytes] | None:
    """``(user, password)`` from an ``Authorization: Basic`` header; ``None`` if unusable."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    # User names are compared as UTF-8; other bytes can only name an unknown user.
    return user.decode("utf-8", "surrogateescape"), password


class _PasswordChecker:
    """bcrypt checks off the event loop, one at a time, bounded, with caches (module docstring).

    The caches hold SHA-256 digests of (user, hash, password), never a password.
    """

    def __init__(
        self,
        users: Mapping[str, bytes],
        *,
        metrics: AuthMetrics,
        max_pending: int,
        max_pending_per_client: int,
        checkpw: PasswordCheck,
    ) -> None:
        self._users = users
        self._dummy_hash = _dummy_hash(users.values())
        self._metrics = metrics
        self._checks = metrics.checks
        self._max_pending = max_pending
        self._max_per_client = max_pending_per_client
        self._checkpw = checkpw
        self._verified: dict[str, bytes] = {}
        self._failed: OrderedDict[bytes, None] = OrderedDict()
        #: Checks waiting or running, by digest (identical attempts share one).
        self._in_flight: dict[bytes, asyncio.Task[bool]] = {}
        self._per_client: Tally[str] = Tally()
        self._bcrypt_lock = asyncio.Lock()

    def update(self, users: Mapping[str, bytes]) -> None:
        """Check against ``users`` from now on, forgetting what no longer applies."""
        old, self._users = self._users, users
        if users:
            self._dummy_hash = _dummy_hash(users.values())
        self._verified = {
            user: digest
            for user, digest in self._verified.items()
            if user in users and users[user] == old.get(user)
        }
        self._failed.clear()

    async def check(self, user: str, password: bytes, *, client: str) -> Verdict:
        """Whether ``password`` is ``user``'s, or that too many checks are in flight."""
        hashed = self._users.get(user)
        known = hashed is not None
        if hashed is None:
            hashed = self._dummy_hash  # no user-enumeration timing difference
        digest = _cache_digest(user, hashed, password)
        if known and self._is_verified(user, digest):
            self._checks.labels("cached_success").inc()
            return Verdict.OK
        if digest in self._failed:
            self._failed.move_to_end(digest)
            self._checks.labels("cached_failure").inc()
            return Verdict.DENIED
        task = self._in_flight.get(digest)
        if task is not None:
            ok = await asyncio.shield(task)
            self._checks.labels("cached_success" if ok else "cached_failure").inc()
            return Verdict.OK if ok else Verdict.DENIED
        if (
            len(self._in_flight) >= self._max_pending
            or self._per_client[client] >= self._max_per_client
        ):
            self._checks.labels("throttled").inc()
            return Verdict.THROTTLED
        task = asyncio.create_task(self._verify(user, hashed, password, digest, known))
        self._in_flight[digest] = task
        self._per_client[client] += 1
        self._metrics.in_flight.inc()

        def release(done: asyncio.Task[bool]) -> None:
            self._metrics.in_flight.dec()
            del self._in_flight[digest]
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]
            if not done.cancelled():
                done.exception()  # retrieved: a waiter that went away must not leave it unseen

        task.add_done_callback(release)
        return Verdict.OK if await asyncio.shield(task) else Verdict.DENIED

    async def _verify(
        self, user: str, hashed: bytes, password: bytes, digest: bytes, known: bool
    ) -> bool:
        async with self._bcrypt_lock:
            matches = await asyncio.to_thread(_checkpw, self._checkpw, password, hashed)
        ok = matches and known
        self._checks.labels("success" if ok else "failure").inc()
        if ok and self._users.get(user) == hashed:  # not removed or changed meanwhile
            self._verified[user] = digest
        else:
            self._failed[digest] = None
            if len(self._failed) > FAILURE_CACHE_SIZE:
                self._failed.popitem(last=False)
        return ok

    def _is_verified(self, user: str, digest: bytes) -> bool:
        cached = self._verified.get(user)
        return cached is not None and hmac.compare_digest(cached, digest)


def _dummy_hash(hashes: Iterable[bytes]) -> bytes:
    """A well-formed hash no password matches, at the highest configured cost."""
    cost = max(int(h[4:6]) for h in hashes)
    return b"$2b$%02d$" % cost + b"." * 53


def _cache_digest(user: str, hashed: bytes, password: bytes) -> bytes:
    parts = (user.encode("utf-8", "surrogateescape"), hashed, password)
    return hashlib.sha256(b":".join(part.hex().encode() for part in parts)).digest()


def _checkpw(checkpw: PasswordCheck, password: bytes, hashed: bytes) -> bool:
    """``checkpw``, refusing (after the same work) passwords bcrypt cannot hash."""
    if len(password) > _BCRYPT_MAX_PASSWORD:
        checkpw(b"", hashed)
        return False
    return checkpw(password, hashed)
