"""
Logging in, the ``twisted.cred`` way: a ``Portal`` over a checker that
verifies passwords against the account store (off the reactor thread)
and a realm that hands out the logged-in account.

The hub asks the portal with the name and password a user typed and gets
back an ``IChatAccount`` avatar, or ``UnauthorizedLogin``; it never sees
a hash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, ensureDeferred
from zope.interface import Attribute, Interface, implementer

from .._immutable import immutable
from . import IAccountStore
from .hashing import Hasher

__all__ = [
    "AccountChecker",
    "AccountRealm",
    "IChatAccount",
    "LoggedIn",
    "credentials",
    "make_portal",
]


class IChatAccount(Interface):
    """The avatar: who a user logged in as."""

    name = Attribute("The account's nickname as registered.")
    operator = Attribute("True for a server operator.")


@implementer(IChatAccount)
@immutable
class LoggedIn:
    name: str
    operator: bool = False


#: What a realm answers: the interface, the avatar, how to log out.
_Avatar = tuple[type[Interface], object, Callable[[], None]]


def credentials(name: str, password: str) -> UsernamePassword:
    return UsernamePassword(name.encode(), password.encode())


@implementer(ICredentialsChecker)
class AccountChecker:
    """Checks a name and password against the stored argon2id hash."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, store: IAccountStore, hasher: Hasher) -> None:
        self._store = store
        self._hasher = hasher

    def requestAvatarId(self, credentials: Any) -> Deferred[bytes | tuple[()]]:
        return ensureDeferred(self._check(credentials))

    async def _check(self, credentials: Any) -> bytes | tuple[()]:
        name = credentials.username.decode()
        account = await self._store.get(name)
        if account is None:
            raise UnauthorizedLogin("no such account")
        password = credentials.password.decode()
        if not await self._hasher.verify(account.hash, password):
            raise UnauthorizedLogin("wrong password")
        return account.name.encode()


@implementer(IRealm)
class AccountRealm:
    """Turns an accepted account name into its avatar."""

    def __init__(self, store: IAccountStore) -> None:
        self._store = store

    def requestAvatar(
        self, avatarId: Any, mind: object, *interfaces: Any
    ) -> Deferred[_Avatar]:
        if IChatAccount not in interfaces:
            raise NotImplementedError("only chat accounts here")
        return ensureDeferred(self._avatar(avatarId.decode()))

    async def _avatar(self, name: str) -> _Avatar:
        account = await self._store.get(name)
        if account is None:  # removed in between
            raise UnauthorizedLogin("no such account")
        return IChatAccount, LoggedIn(account.name, account.operator), _no_logout


def _no_logout() -> None:
    """Nothing to undo: the hub forgets the account when the user leaves."""


def make_portal(store: IAccountStore, hasher: Hasher) -> Portal:
    return Portal(AccountRealm(store), [AccountChecker(store, hasher)])
