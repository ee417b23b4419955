"""`Iam`: who may call the simulated cloud (AK/SK pairs, IAM users) and the tokens it issued."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from exporter.signing import verify_request

__all__ = ["Iam", "IssuedToken"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What the simulated IAM knows about a token it issued (times on the simulator's clock)."""

    user: str
    project_id: str
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
        """The access key of a correctly AK/SK-signed request; `SignatureError` otherwise."""
        return verify_request(
            method,
            raw_path,
            raw_query,
            headers,
            body,
            lookup_secret=self.secret_for,
            now=datetime.fromtimestamp(self.clock(), tz=UTC),
        )

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
