"""`Metadata`: the ECS metadata service's and CCE pod identity's state (tokens, agency keys)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Final

from exporter.simulator.iam import Iam, TemporaryCredential

__all__ = ["MAX_METADATA_TOKEN_TTL", "Metadata"]

#: The longest session token the service issues (seconds), as ECS documents: 6 h.
MAX_METADATA_TOKEN_TTL: Final = 21_600


class Metadata:
    """Session tokens and the temporary AK/SK of the instance's agency, on ``clock``.

    Knobs (attributes tests may change): ``token_status`` is what the token endpoint answers
    (``None``: tokens are issued; 404, 405 or 503 plays an older service without tokens);
    ``require_token`` makes the key endpoint demand a valid token while tokens are issued;
    ``agency`` False plays an instance without an agency (401 "Please configure Cloud Service
    Agency first"); ``credential_ttl`` is the lifetime of the temporary AK/SK, handed out
    again until less than half of it remains, then replaced (as ECS rotates them early).

    Pod identity: ``pod_token`` is the ``Authorization`` value it accepts (``None``: it answers
    every request 401); it hands out the same temporary AK/SK as the metadata service.

    STS (workload identity): ``oidc_identity`` is the ``(provider_urn, agency_urn, id_token)``
    it accepts (``None``: none); it issues fresh temporary AK/SK for the asked duration.
    """

    def __init__(self, iam: Iam, clock: Callable[[], float], credential_ttl: float) -> None:
        self._iam = iam
        self.clock = clock
        self.credential_ttl = credential_ttl
        self.token_status: int | None = None
        self.require_token = True
        self.agency = True
        self.pod_token: str | None = None
        self.oidc_identity: tuple[str, str, str] | None = None
        #: The ``(idp_id, id_token)`` IAM's federated id-token endpoint accepts (``None``: none).
        self.federated_identity: tuple[str, str] | None = None
        self._tokens: dict[str, float] = {}
        self._current: TemporaryCredential | None = None

    def issue_token(self, ttl: int) -> str:
        """A new session token valid ``ttl`` seconds."""
        now = self.clock()
        self._tokens = {t: end for t, end in self._tokens.items() if end > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + ttl
        return token

    def token_valid(self, token: str | None) -> bool:
        """True when ``token`` was issued and has not expired or been revoked."""
        end = self._tokens.get(token) if token is not None else None
        return end is not None and end > self.clock()

    def tokens(self) -> list[str]:
        """Every session token issued and not yet forgotten (for leak checks)."""
        return list(self._tokens)

    def revoke_tokens(self) -> None:
        """Invalidate every session token issued so far."""
        self._tokens.clear()

    def credential(self) -> TemporaryCredential:
        """The agency's current temporary AK/SK, replaced when less than half its TTL is left."""
        now = self.clock()
        current = self._current
        live = {c.access for c in self._iam.temporary_credentials()}
        if (
            current is None
            or current.access not in live
            or current.expires_at - now < self.credential_ttl / 2
        ):
            current = self._iam.issue_temporary(self.credential_ttl)
            self._current = current
        return current
