"""
Accounts in the SQLite state file (one process).

Each operation is a function of a cursor: the server runs it on the state
file's single database thread (``runInteraction``), the admin tool on its
own connection; the SQL is written once.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..history import Pool
from ..nicknames import nick_key
from . import Account, IAccountStore

__all__ = ["SQLiteAccounts", "operations"]

_COLUMNS = "name, hash, operator, created"


def _account(row: tuple[Any, ...]) -> Account:
    name, hash, operator, created = row
    return Account(name, hash, bool(operator), created)


def _get(cursor: Any, name: str) -> Account | None:
    cursor.execute(f"SELECT {_COLUMNS} FROM accounts WHERE key = ?", (nick_key(name),))
    row = cursor.fetchone()
    return None if row is None else _account(row)


def _add(cursor: Any, account: Account) -> bool:
    cursor.execute(
        "INSERT OR IGNORE INTO accounts (key, name, hash, operator, created)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            nick_key(account.name),
            account.name,
            account.hash,
            int(account.operator),
            account.created,
        ),
    )
    return bool(cursor.rowcount == 1)


def _set_hash(cursor: Any, name: str, hash: str) -> bool:
    cursor.execute("UPDATE accounts SET hash = ? WHERE key = ?", (hash, nick_key(name)))
    return bool(cursor.rowcount == 1)


def _set_operator(cursor: Any, name: str, operator: bool) -> bool:
    cursor.execute(
        "UPDATE accounts SET operator = ? WHERE key = ?",
        (int(operator), nick_key(name)),
    )
    return bool(cursor.rowcount == 1)


def _remove(cursor: Any, name: str) -> bool:
    cursor.execute("DELETE FROM accounts WHERE key = ?", (nick_key(name),))
    return bool(cursor.rowcount == 1)


def _all(cursor: Any) -> list[Account]:
    cursor.execute(f"SELECT {_COLUMNS} FROM accounts ORDER BY key")
    return [_account(row) for row in cursor.fetchall()]


#: The operations by name, for the admin tool's own connection.
operations = {
    "get": _get,
    "add": _add,
    "set_hash": _set_hash,
    "set_operator": _set_operator,
    "remove": _remove,
    "all": _all,
}


@implementer(IAccountStore)
class SQLiteAccounts:
    """Accounts in the state file, through its database thread."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def get(self, name: str) -> Deferred[Account | None]:
        return self._pool.runInteraction(_get, name)

    def add(self, account: Account) -> Deferred[bool]:
        return self._pool.runInteraction(_add, account)

    def set_hash(self, name: str, hash: str) -> Deferred[bool]:
        return self._pool.runInteraction(_set_hash, name, hash)

    def set_operator(self, name: str, operator: bool) -> Deferred[bool]:
        return self._pool.runInteraction(_set_operator, name, operator)

    def remove(self, name: str) -> Deferred[bool]:
        return self._pool.runInteraction(_remove, name)

    def all(self) -> Deferred[list[Account]]:
        return self._pool.runInteraction(_all)
