"""Cross-account agencies (``auth.assume_agency``): the exporter's identity assumes an agency.

IAM's CreateTemporaryAccessKeyByAgency: ``POST {iam}/v3.0/OS-CREDENTIAL/securitytokens`` with
``{"auth": {"identity": {"methods": ["assume_role"], "assume_role": {"domain_name" | "domain_id",
"agency_name", "duration_seconds"}}}}``, authenticated as the caller (an AK/SK signature or
``X-Auth-Token``); the answer's ``credential`` holds ``access``, ``secret``, ``securitytoken``
and ``expires_at``. `AgencyCredentials` is one such credential; targets share it through
`AgencyUser` views (see `exporter.auth.pool`), each observing the calls it starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Final

import aiohttp

from exporter.auth.base import Credentials, Issued, RequestObserver
from exporter.auth.calls import observed_call
from exporter.auth.temporary import TemporaryAkSk, TemporaryKey, parse_temporary_key
from exporter.dli.api import ASSUME_AGENCY, ASSUME_AGENCY_PATH
from exporter.errors import DliApiError, error_from_body
from exporter.http import HttpResponse, SslSetting

_MAX_BODY: Final = 64 * 1024


class AgencyCredentials(TemporaryAkSk):
    """The temporary AK/SK of ``agency_name`` in the account ``domain``, obtained with ``base``.

    Requests to IAM are observed as operation ``assume_agency`` by the observer of the user whose
    request started them; failures raise `DliApiError` with that operation and a message naming
    the agency. After a 401 from IAM the base credentials are renewed once and the call retried.
    No key, token or signature appears in a repr, log or error.
    """

    kind = "agency credentials"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base: Credentials,
        iam_endpoint: str,
        agency_name: str,
        domain_name: str | None,
        domain_id: str | None,
        duration_seconds: int,
        timeout: float,
        clock: Callable[[], float] = time.time,
        ssl_option: SslSetting = True,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self._base = base
        self._iam_endpoint = iam_endpoint.rstrip("/")
        self._agency_name = agency_name
        self._domain = {"domain_name": domain_name} if domain_name else {"domain_id": domain_id}
        self._duration = duration_seconds
        self._timeout = timeout
        self._ssl = ssl_option
        #: Observes the next call; set by the `AgencyUser` about to ask for the key.
        self.observe: RequestObserver | None = None

    def __repr__(self) -> str:
        return (
            f"AgencyCredentials(agency_name={self._agency_name!r}, "
            f"domain={self.domain!r}, iam_endpoint={self._iam_endpoint!r})"
        )

    @property
    def domain(self) -> str:
        """The agency's account, as configured (name or id)."""
        return next(iter(self._domain.values())) or ""

    async def _fetch(self, *, after_401: bool) -> Issued[TemporaryKey]:
        observe = self.observe
        fetched_at = self._clock()
        response = await self._post(observe)
        if response.status == 401 and await self._base.refresh():
            response = await self._post(observe)
        if not 200 <= response.status < 300:
            raise self._named(
                error_from_body(ASSUME_AGENCY, response.status, response.body, response.request_id)
            )
        return parse_temporary_key(
            ASSUME_AGENCY,
            response.status,
            response.body,
            response.request_id,
            fetched_at=fetched_at,
            after_401=after_401,
        )

    async def _post(self, observe: RequestObserver | None) -> HttpResponse:
        """One signed ``assume_role`` request, observed as ``assume_agency``."""
        assume: dict[str, object] = {**self._domain, "agency_name": self._agency_name}
        assume["duration_seconds"] = self._duration
        identity = {"methods": ["assume_role"], "assume_role": assume}
        body = json.dumps({"auth": {"identity": identity}}).encode()
        url = self._iam_endpoint + ASSUME_AGENCY_PATH
        unsigned = {"Content-Type": "application/json;charset=utf8"}
        headers = await self._base.authorize("POST", url, unsigned, body)
        try:
            return await observed_call(
                self._session,
                ASSUME_AGENCY,
                "POST",
                url,
                headers=headers,
                body=body,
                read=lambda response: response,
                budget=self._timeout,
                max_body=_MAX_BODY,
                ssl_option=self._ssl,
                observe=observe,
            )
        except DliApiError as exc:
            raise self._named(exc) from None

    def _named(self, exc: DliApiError) -> DliApiError:
        """``exc`` with the agency named in its message."""
        message = f"agency {self._agency_name} in {self.domain}: {exc.error_msg}"
        return DliApiError(
            exc.operation,
            exc.code,
            message,
            status=exc.status,
            error_code=exc.error_code,
            request_id=exc.request_id,
        )

    def _fields(self, exc: DliApiError | None = None, **more: object) -> dict[str, object]:
        fields: dict[str, object] = {
            "iam_endpoint": self._iam_endpoint,
            "agency_name": self._agency_name,
            "domain": self.domain,
            **more,
        }
        if exc is not None:
            fields["error"] = exc.describe()
        return {"fields": fields}


class AgencyUser:
    """One target's use of a shared `AgencyCredentials`: signs with it, observes its own calls."""

    def __init__(self, shared: AgencyCredentials, observe: RequestObserver | None) -> None:
        self.shared = shared
        self._observe = observe

    def __repr__(self) -> str:
        return f"AgencyUser({self.shared!r})"

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """Sign with the agency's temporary key, fetching it first when due."""
        self.shared.observe = self._observe
        return await self.shared.authorize(method, url, headers, body)

    async def refresh(self) -> bool:
        """After a 401: renew the shared key (at most once a minute for all its users)."""
        self.shared.observe = self._observe
        return await self.shared.refresh()
