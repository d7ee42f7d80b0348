"""
Accounts: registered nicknames with a password.

An account is a nickname someone has claimed for good: whoever picks it
is asked for its password. The store (``IAccountStore``) keeps accounts
in the server's SQLite state file, or in Redis in Redis mode, so every
node knows them. Passwords are kept only as argon2id hashes
(``twchat.accounts.hashing``); logging in goes through ``twisted.cred``
(``twchat.accounts.auth``): the hub sees an ``Account`` once a checker
has accepted the password, and never a password's hash.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import Interface

from .._immutable import immutable

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "NOW_REGISTERED",
    "PASSWORD_CHANGED",
    "TAKEN_OVER",
    "TOO_MANY_FAILURES",
    "WRONG_PASSWORD",
    "Account",
    "IAccountStore",
    "password_error",
]

#: How the error for a wrong password begins (the client looks for it).
WRONG_PASSWORD = "wrong password for "
#: The start of the refusal while a name or an address is locked.
TOO_MANY_FAILURES = "too many failed logins"
#: After NICK in the notice that an account was made (the client then
#: keeps the password it sent, to log in again after a reconnect).
NOW_REGISTERED = " is now registered; next time you will be asked for its password"
#: The notice that /password worked (likewise).
PASSWORD_CHANGED = "your password has been changed"
#: After NICK in the notice to a connection whose account was logged in from
#: another one, just before it is closed (the clients then do not reconnect:
#: logging in again would close the other in turn, and so on).
TAKEN_OVER = " logged in from another connection; closing this one"

#: The shortest password accepted.
MIN_PASSWORD = 8
#: The longest: argon2 takes any length, but a line is bounded anyway.
MAX_PASSWORD = 256


@immutable
class Account:
    """A registered nickname, as stored."""

    #: The nickname as its owner spelled it.
    name: str
    #: ``$argon2id$...``: the only trace of the password.
    hash: str
    #: A server operator (moderation uses it).
    operator: bool = False
    #: When it was registered (seconds since the epoch).
    created: float = 0.0


def password_error(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters"
    if any(char.isspace() for char in password):
        # /password OLD NEW is split at spaces.
        return "a password cannot contain spaces"
    return None


class IAccountStore(Interface):
    """
    Where accounts are kept. Names are looked up ignoring case, as
    nicknames are. Every method's Deferred fails (with the store's own
    error) when the store cannot be reached.
    """

    def get(name: str) -> Deferred[Account | None]:
        """The account called ``name``, or None."""

    def add(account: Account) -> Deferred[bool]:
        """Store a new account; False if the name is registered already."""

    def set_hash(name: str, hash: str) -> Deferred[bool]:
        """A new password hash; False if there is no such account."""

    def set_operator(name: str, operator: bool) -> Deferred[bool]:
        """Give or take the operator flag; False if there is no such account."""

    def remove(name: str) -> Deferred[bool]:
        """Delete an account; False if there was none."""

    def all() -> Deferred[list[Account]]:
        """Every account, by name."""
