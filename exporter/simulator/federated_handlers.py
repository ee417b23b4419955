"""IAM's federated id-token endpoints (the SDK's ``FederalAccessor``): the exporter's ``federated``.

``POST /v3.0/OS-AUTH/id-token/tokens`` (header ``X-Idp-Id``, body ``auth.id_token.id``) answers
an unscoped token in ``X-Subject-Token``; ``POST /v3.0/OS-CREDENTIAL/securitytokens`` with
``methods: ["token"]`` answers temporary AK/SK for it, issued through `Iam` and expiring on the
simulator's clock. That path is shared with ``assume_role``: other bodies go to its handler.
The accepted ``(idp_id, id_token)`` is `Metadata.federated_identity` (``None``: none).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from exporter.dli.api import AUTH_TOKEN_HEADER, IDP_ID_HEADER, SUBJECT_TOKEN_HEADER
from exporter.simulator.iam import Iam
from exporter.simulator.metadata import Metadata
from exporter.simulator.sts_handlers import MAX_DURATION, MIN_DURATION
from exporter.simulator.wire import iam_error

__all__ = ["FederatedHandlers"]

#: The user the unscoped tokens of a federated identity belong to.
_USER_PREFIX: Final = "federated:"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FederatedHandlers:
    """The id token exchange and the token's temporary AK/SK (else ``other`` answers)."""

    def __init__(self, metadata: Metadata, iam: Iam, other: _Handler) -> None:
        self._metadata = metadata
        self._iam = iam
        self._other = other

    async def id_token(self, request: web.Request) -> web.Response:
        """``POST /v3.0/OS-AUTH/id-token/tokens``: an unscoped token for a trusted id token."""
        try:
            payload = json.loads(await request.read())
            sent = payload["auth"]["id_token"]["id"]
        except (ValueError, KeyError, TypeError):
            return iam_error(400, "The request body must carry auth.id_token.id.")
        idp_id = request.headers.get(IDP_ID_HEADER, "")
        expected = self._metadata.federated_identity
        if (
            expected is None
            or not isinstance(sent, str)
            or not hmac.compare_digest(idp_id.encode(), expected[0].encode())
            or not hmac.compare_digest(sent.encode(), expected[1].encode())
        ):
            return iam_error(401, "The id token is not trusted by this identity provider.")
        token, issued = self._iam.issue_token(_USER_PREFIX + idp_id, "")
        body = {
            "token": {
                "methods": ["mapped"],
                "issued_at": _iso(issued.issued_at),
                "expires_at": _iso(issued.expires_at),
            }
        }
        response = web.json_response(body, status=201)
        response.headers[SUBJECT_TOKEN_HEADER] = token
        return response

    async def security_tokens(self, request: web.Request) -> web.StreamResponse:
        """``POST /v3.0/OS-CREDENTIAL/securitytokens``: ``token`` here, ``assume_role`` there."""
        try:
            identity = json.loads(await request.read())["auth"]["identity"]
            is_token = identity["methods"] == ["token"]
        except (ValueError, KeyError, TypeError):
            is_token = False
        if not is_token:
            return await self._other(request)
        token = identity.get("token")
        token_id = token.get("id") if isinstance(token, dict) else None
        token_id = token_id or request.headers.get(AUTH_TOKEN_HEADER, "")
        issued = self._iam.token_info(token_id) if isinstance(token_id, str) else None
        if issued is None:
            return iam_error(401, "The token is invalid or expired.")
        duration = token.get("duration_seconds", MIN_DURATION) if isinstance(token, dict) else 0
        if not isinstance(duration, int) or not MIN_DURATION <= duration <= MAX_DURATION:
            return iam_error(400, "Invalid auth.identity.token.duration_seconds.")
        credential = self._iam.issue_temporary(float(duration))
        body = {
            "credential": {
                "access": credential.access,
                "secret": credential.secret,
                "securitytoken": credential.security_token,
                "expires_at": _iso(credential.expires_at),
            }
        }
        return web.json_response(body, status=201)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
