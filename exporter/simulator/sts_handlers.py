"""IAM's ``POST /v3.0/OS-CREDENTIAL/securitytokens``, ``assume_role``: other accounts' agencies.

`Agencies` is the state (which agency of which account may be assumed, and by whom; what each
handed out), `StsHandlers` the endpoint. The call is behind the gateway, so it is authenticated
as IAM does it: an AK/SK signature (temporary keys with their security token) or
``X-Auth-Token``. The temporary AK/SK it issues expire on the simulator's clock and are accepted
by the DLI gateway with their security token until then, or until the agency is revoked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from exporter.simulator.iam import Iam
from exporter.simulator.wire import USER, BadRequest, iam_error

__all__ = ["Agencies", "Agency", "StsHandlers"]

#: ``assume_role.duration_seconds``: 15 minutes to 24 hours; 900 when absent.
MIN_DURATION: Final = 900
MAX_DURATION: Final = 86_400
DEFAULT_DURATION: Final = 900
_ACCESS: Final = re.compile(r"Access=([^,\s]+)")


@dataclass(slots=True)
class Agency:
    """An agency in the account ``domain_name`` (id ``domain_id``) granting ``project_id``.

    ``trusted``: the access keys and IAM users allowed to assume it (empty: anyone signed in).
    """

    domain_name: str
    domain_id: str
    agency_name: str
    project_id: str
    trusted: frozenset[str] = frozenset()
    #: Access keys of the temporary credentials issued for it.
    issued: list[str] = field(default_factory=list)


class Agencies:
    """The agencies that may be assumed; issues their temporary AK/SK through ``iam``."""

    def __init__(self, iam: Iam) -> None:
        self._iam = iam
        self._agencies: dict[tuple[str, str], Agency] = {}

    def add(self, agency: Agency) -> None:
        """Make ``agency`` assumable (replacing one of the same account and name)."""
        self._agencies[(agency.domain_id, agency.agency_name)] = agency

    def find(self, domain: str, agency_name: str, *, by_id: bool) -> Agency | None:
        """The agency named ``agency_name`` of the account with this name (or id)."""
        for agency in self._agencies.values():
            wanted = agency.domain_id if by_id else agency.domain_name
            if wanted == domain and agency.agency_name == agency_name:
                return agency
        return None

    def revoke(self, domain_name: str, agency_name: str) -> None:
        """Delete the agency: assuming it answers 403, its issued keys stop working."""
        agency = self.find(domain_name, agency_name, by_id=False)
        if agency is None:
            return
        del self._agencies[(agency.domain_id, agency.agency_name)]
        self._iam.revoke_temporary(agency.issued)


@dataclass(frozen=True, slots=True)
class _AssumeRole:
    domain: str
    by_id: bool
    agency_name: str
    duration: int


class StsHandlers:
    """The handler of ``assume_role`` over ``agencies``, issuing keys through ``iam``."""

    def __init__(self, agencies: Agencies, iam: Iam) -> None:
        self._agencies = agencies
        self._iam = iam

    async def assume_agency(self, request: web.Request) -> web.Response:
        """``POST /v3.0/OS-CREDENTIAL/securitytokens``: an agency's temporary AK/SK (201)."""
        try:
            ask = _parse(json.loads(await request.read()))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            return iam_error(400, "The request body is not valid JSON.")
        except BadRequest as err:
            return iam_error(400, str(err))
        agency = self._agencies.find(ask.domain, ask.agency_name, by_id=ask.by_id)
        caller = _caller(request)
        if agency is None or (agency.trusted and caller not in agency.trusted):
            return iam_error(403, "You do not have permission to assume this agency.")
        credential = self._iam.issue_temporary(ask.duration)
        agency.issued.append(credential.access)
        body = {
            "credential": {
                "access": credential.access,
                "secret": credential.secret,
                "securitytoken": credential.security_token,
                "expires_at": _iso_time(credential.expires_at),
            }
        }
        return web.json_response(body, status=201)


def _caller(request: web.Request) -> str | None:
    """Who signed the (verified) request: the token's user or the signature's access key."""
    user = request.get(USER)
    if user is not None:
        return str(user)
    found = _ACCESS.search(request.headers.get("Authorization", ""))
    return found.group(1) if found else None


def _parse(payload: object) -> _AssumeRole:
    identity = _object(_object(payload, "auth", ""), "identity", "auth")
    if identity.get("methods") != ["assume_role"]:
        raise BadRequest('Invalid auth.identity.methods: ["assume_role"] is required.')
    role = _object(identity, "assume_role", "auth.identity")
    name, domain_id = role.get("domain_name"), role.get("domain_id")
    if isinstance(name, str) == isinstance(domain_id, str):
        raise BadRequest("Invalid auth.identity.assume_role: give domain_name or domain_id.")
    agency_name = role.get("agency_name")
    if not isinstance(agency_name, str) or not agency_name:
        raise BadRequest("Invalid auth.identity.assume_role.agency_name.")
    duration = role.get("duration_seconds", DEFAULT_DURATION)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise BadRequest("Invalid auth.identity.assume_role.duration_seconds.")
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise BadRequest("Invalid auth.identity.assume_role.duration_seconds: 900 to 86400.")
    domain = name if isinstance(name, str) else str(domain_id)
    return _AssumeRole(domain, isinstance(domain_id, str), agency_name, duration)


def _object(parent: object, key: str, path: str) -> dict[str, object]:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid {path + '.' if path else ''}{key}: an object is required.")
    return value


def _iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
