"""`Iam`: who may call the simulated cloud (AK/SK pairs, IAM users) and the tokens it issued."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from exporter.dli.api import SECURITY_TOKEN_HEADER
from exporter.signing import SignatureError, verify_request

__all__ = ["Iam", "IssuedToken", "TemporaryCredential"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What the simulated IAM knows about a token it issued (times on the simulator's clock)."""

    user: str
    project_id: str
    issued_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class TemporaryCredential:
    """Temporary AK/SK with their security token (times on the simulator's clock)."""

    access: str
    secret: str
    security_token: str
    issued_at: float
    expires_at: float


class Iam:
    """Credentials and tokens, checked on ``clock`` (unix seconds).

    ``credentials`` maps access keys to secret keys; ``iam_users`` maps user names to
    ``(password, domain_name)``. A token is valid for ``token_ttl`` seconds (an attribute tests
    may change) and scoped to one project.
    """

    def __init__(
        self,
        *,
        credentials: Mapping[str, str],
        clock: Callable[[], float],
        iam_users: Mapping[str, tuple[str, str]] | None = None,
        token_ttl: float = 86_400.0,
    ) -> None:
        self.clock = clock
        self.token_ttl = token_ttl
        self._credentials = dict(credentials)
        self._users = dict(iam_users or {})
        self._tokens: dict[str, IssuedToken] = {}
        self._temporary: dict[str, TemporaryCredential] = {}

    def secret_for(self, access_key: str) -> str | None:
        """The secret key of ``access_key``, or ``None`` when it is unknown."""
        return self._credentials.get(access_key)

    def verify_signature(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> str:
        """The access key of a correctly AK/SK-signed request; `SignatureError` otherwise.

        Temporary AK/SK are accepted only until they expire (or are revoked) and only with
        their own security token in ``X-Security-Token``.
        """
        access_key = verify_request(
            method,
            raw_path,
            raw_query,
            headers,
            body,
            lookup_secret=self._any_secret,
            now=datetime.fromtimestamp(self.clock(), tz=UTC),
        )
        temporary = self._temporary.get(access_key)
        if temporary is not None:
            sent = next(
                (v for k, v in headers.items() if k.lower() == SECURITY_TOKEN_HEADER.lower()),
                None,
            )
            if sent is None:
                raise SignatureError("Incorrect IAM authentication information: token missing")
            if not secrets.compare_digest(sent.encode(), temporary.security_token.encode()):
                raise SignatureError("Incorrect IAM authentication information: token mismatch")
            if temporary.expires_at <= self.clock():
                raise SignatureError("Incorrect IAM authentication information: token expired")
        return access_key

    def _any_secret(self, access_key: str) -> str | None:
        temporary = self._temporary.get(access_key)
        return temporary.secret if temporary is not None else self.secret_for(access_key)

    def issue_temporary(self, ttl: float) -> TemporaryCredential:
        """New temporary AK/SK valid ``ttl`` seconds (expired ones are forgotten an hour later)."""
        now = self.clock()
        self._temporary = {a: c for a, c in self._temporary.items() if c.expires_at > now - 3600}
        credential = TemporaryCredential(
            access="TMP" + secrets.token_hex(8).upper(),
            secret=secrets.token_urlsafe(30),
            security_token="gQpjbi1ub3J0aC00" + secrets.token_urlsafe(120),
            issued_at=now,
            expires_at=now + ttl,
        )
        self._temporary[credential.access] = credential
        return credential

    def temporary_credentials(self) -> list[TemporaryCredential]:
        """Every temporary credential issued and not revoked, oldest first."""
        return list(self._temporary.values())

    def revoke_temporary(self, access_keys: Iterable[str] | None = None) -> None:
        """Invalidate the temporary AK/SK ``access_keys`` (default: every one issued so far, as
        detaching the agency does)."""
        if access_keys is None:
            self._temporary.clear()
        for access_key in access_keys or ():
            self._temporary.pop(access_key, None)

    def check_password(self, user: str, password: str, domain_name: str) -> bool:
        """True when ``user`` exists in ``domain_name`` with this password."""
        return self._users.get(user) == (password, domain_name)

    def issue_token(self, user: str, project_id: str) -> tuple[str, IssuedToken]:
        """A new token for ``user`` scoped to ``project_id``, valid ``token_ttl`` seconds."""
        now = self.clock()
        self._tokens = {t: issued for t, issued in self._tokens.items() if issued.expires_at > now}
        token = "MII" + secrets.token_urlsafe(96)
        issued = IssuedToken(user, project_id, now, now + self.token_ttl)
        self._tokens[token] = issued
        return token, issued

    def token_info(self, token: str) -> IssuedToken | None:
        """The issued token, or ``None`` when it is unknown, revoked or expired."""
        issued = self._tokens.get(token)
        if issued is None or issued.expires_at <= self.clock():
            return None
        return issued

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (as a password change does)."""
        self._tokens.clear()
