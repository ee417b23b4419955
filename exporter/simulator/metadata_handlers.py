"""The metadata service's endpoints (``PUT`` a session token, ``GET`` the agency's security key)
CCE pod identity's (``POST`` with the pod's token) and STS's OIDC exchange."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime

from aiohttp import web

from exporter.dli.api import METADATA_TOKEN_HEADER, METADATA_TOKEN_TTL_HEADER
from exporter.simulator.iam import Iam
from exporter.simulator.metadata import MAX_METADATA_TOKEN_TTL, Metadata

__all__ = ["MetadataHandlers"]

_NO_AGENCY = "Please configure Cloud Service Agency first"


class MetadataHandlers:
    """Request handlers over ``metadata``'s state (and ``iam``'s, which issues the keys)."""

    def __init__(self, metadata: Metadata, iam: Iam) -> None:
        self._metadata = metadata
        self._iam = iam

    async def token(self, request: web.Request) -> web.Response:
        """``PUT /meta-data/latest/api/token``: a session token for the asked TTL."""
        metadata = self._metadata
        if metadata.token_status is not None:
            return web.Response(status=metadata.token_status, text="not supported")
        raw = request.headers.get(METADATA_TOKEN_TTL_HEADER, "")
        ttl = int(raw) if raw.isdigit() else 0
        if not 1 <= ttl <= MAX_METADATA_TOKEN_TTL:
            return web.Response(status=400, text=f"invalid {METADATA_TOKEN_TTL_HEADER}")
        return web.Response(text=metadata.issue_token(ttl))

    async def security_key(self, request: web.Request) -> web.Response:
        """``GET /openstack/latest/securitykey``: the agency's temporary AK/SK."""
        metadata = self._metadata
        tokens_issued = metadata.token_status is None
        token = request.headers.get(METADATA_TOKEN_HEADER)
        if tokens_issued and metadata.require_token and not metadata.token_valid(token):
            return web.Response(status=401, text="Unauthorized: invalid metadata token")
        if not metadata.agency:
            return web.Response(status=401, text=_NO_AGENCY)
        credential = metadata.credential()
        body = {
            "credential": {
                "access": credential.access,
                "secret": credential.secret,
                "securitytoken": credential.security_token,
                "expires_at": _iso(credential.expires_at),
            }
        }
        return web.json_response(body)

    async def pod_identity(self, request: web.Request) -> web.Response:
        """Pod identity: the pod's temporary AK/SK for its ``Authorization`` token."""
        expected = self._metadata.pod_token
        sent = request.headers.get("Authorization", "")
        if expected is None or not hmac.compare_digest(sent.encode(), expected.encode()):
            return web.json_response(
                {"error_code": "CCE.0401", "error_msg": "invalid pod identity token"}, status=401
            )
        credential = self._metadata.credential()
        body = {
            "access_key_id": credential.access,
            "secret_access_key": credential.secret,
            "security_token": credential.security_token,
            "expiration": _iso(credential.expires_at),
        }
        return web.json_response(body)

    async def assume_with_oidc(self, request: web.Request) -> web.Response:
        """STS ``POST /v5/agencies/assume-with-oidc``: an id token for an agency's keys."""
        try:
            payload = json.loads(await request.read())
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _sts_error(400, "STS.0001", "the body must be a JSON object")
        duration = payload.get("duration_seconds", 3600)
        if not isinstance(duration, int) or not 900 <= duration <= 43_200:
            return _sts_error(400, "STS.0002", "invalid duration_seconds")
        sent = tuple(str(payload.get(k, "")) for k in ("provider_urn", "agency_urn", "id_token"))
        expected = self._metadata.oidc_identity
        if expected is None or not all(
            hmac.compare_digest(a.encode(), b.encode()) for a, b in zip(sent, expected, strict=True)
        ):
            return _sts_error(403, "STS.0403", "the id token is not trusted for this agency")
        credential = self._iam.issue_temporary(float(duration))
        body = {
            "credentials": {
                "access_key_id": credential.access,
                "secret_access_key": credential.secret,
                "security_token": credential.security_token,
                "expiration": _iso(credential.expires_at),
            }
        }
        return web.json_response(body, status=201)


def _sts_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error_code": code, "error_msg": message}, status=status)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
