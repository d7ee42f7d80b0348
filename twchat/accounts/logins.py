"""
What the hub uses to tell who is who: the account store, the
``twisted.cred`` portal over it, the brute-force throttle, and the
server's account policy (``--registration``, ``--require-account``).
"""

from __future__ import annotations

from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime

from . import IAccountStore
from .auth import IChatAccount, LoggedIn, credentials, make_portal
from .hashing import Hasher
from .throttle import LoginThrottle

__all__ = ["Logins"]


class Logins:
    def __init__(
        self,
        store: IAccountStore,
        hasher: Hasher,
        clock: IReactorTime,
        registration: bool = True,
        required: bool = False,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.portal: Portal = make_portal(store, hasher)
        self.throttle = LoginThrottle(clock)
        #: Whether users may register names themselves (``/register``).
        self.registration = registration
        #: Whether only registered names may chat.
        self.required = required

    async def login(self, name: str, password: str) -> LoggedIn:
        """The account, if ``password`` is its password (else UnauthorizedLogin)."""
        _, avatar, _ = await self.portal.login(
            credentials(name, password), None, IChatAccount
        )
        assert isinstance(avatar, LoggedIn)
        return avatar
