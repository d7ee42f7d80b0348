"""
Accounts kept in memory, for a server without a state file (embedded in
another program, or driven by unit tests): complete, but forgotten when
the process ends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from ..nicknames import nick_key
from . import Account, IAccountStore

__all__ = ["MemoryAccounts"]


@implementer(IAccountStore)
class MemoryAccounts:
    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}

    def get(self, name: str) -> Deferred[Account | None]:
        return succeed(self._accounts.get(nick_key(name)))

    def add(self, account: Account) -> Deferred[bool]:
        key = nick_key(account.name)
        if key in self._accounts:
            return succeed(False)
        self._accounts[key] = account
        return succeed(True)

    def set_hash(self, name: str, hash: str) -> Deferred[bool]:
        return self._update(
            name, lambda account: dataclasses.replace(account, hash=hash)
        )

    def set_operator(self, name: str, operator: bool) -> Deferred[bool]:
        return self._update(
            name, lambda account: dataclasses.replace(account, operator=operator)
        )

    def _update(
        self, name: str, change: Callable[[Account], Account]
    ) -> Deferred[bool]:
        key = nick_key(name)
        account = self._accounts.get(key)
        if account is None:
            return succeed(False)
        self._accounts[key] = change(account)
        return succeed(True)

    def remove(self, name: str) -> Deferred[bool]:
        return succeed(self._accounts.pop(nick_key(name), None) is not None)

    def all(self) -> Deferred[list[Account]]:
        return succeed([self._accounts[key] for key in sorted(self._accounts)])
