"""`CredentialsPool`: the credentials factory an exporter owns, sharing agency credentials.

Targets that assume the same agency with the same base identity (same ``auth``, TLS settings
and HTTP session) get one `AgencyCredentials` between them: one IAM call per renewal, one
back-off after a rejection. The pool holds its entries weakly, so an entry lives exactly as
long as a poller uses it: an unchanged target keeps it across a reload, and one nobody uses any
more goes away with its last poller.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

import aiohttp

from exporter.auth.agency import AgencyCredentials, AgencyUser
from exporter.auth.base import Credentials, RequestObserver
from exporter.auth.factory import agency_credentials, credentials_for, log_choice
from exporter.config import AssumeAgencyAuth, TargetConfig, TlsClientConfig

_Key = tuple[AssumeAgencyAuth, TlsClientConfig, int]


class CredentialsPool:
    """A `CredentialsFactory` (``pool(target, session, observe)``) sharing agency credentials.

    Everything but an agency is built per call by `credentials_for`. ``clock`` (unix seconds)
    is what expiry is judged on.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._shared: weakref.WeakValueDictionary[_Key, AgencyCredentials] = (
            weakref.WeakValueDictionary()
        )

    def __repr__(self) -> str:
        return f"CredentialsPool(agencies={len(self._shared)})"

    def __len__(self) -> int:
        """How many agency credentials are in use."""
        return len(self._shared)

    def __call__(
        self,
        target: TargetConfig,
        session: aiohttp.ClientSession,
        observe: RequestObserver | None = None,
    ) -> Credentials:
        """The credentials of ``target``: its agency's shared one when it assumes one."""
        auth = target.auth
        if not isinstance(auth, AssumeAgencyAuth):
            return credentials_for(target, session, observe, clock=self._clock)
        log_choice(target)
        # The session's identity is part of the key: an entry holds its session, so the id
        # of a live entry's session cannot be reused.
        key = (auth, target.tls, id(session))
        shared = self._shared.get(key)
        if shared is None:
            shared = agency_credentials(target, auth, session, clock=self._clock)
            self._shared[key] = shared
        return AgencyUser(shared, observe)
