"""
Accounts in the SQLite state file (one process).

Each operation is a function of a cursor: the server runs it on the state
file's single database thread (``runInteraction``), the admin tool on its
own connection; the SQL is written once.

Every nickname chosen is looked up here, so lookups share trips to the
database thread: while one read is under way, the names asked meanwhile
wait and go together in the next (10,000 people arriving at once cost a
few dozen trips, not 10,000).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
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


#: Names per SELECT (SQLite allows 999 parameters on old versions).
_CHUNK = 500


def _get_many(cursor: Any, keys: list[str]) -> dict[str, Account]:
    found: dict[str, Account] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            f"SELECT key, {_COLUMNS} FROM accounts WHERE key IN ({marks})", chunk
        )
        for key, *row in cursor.fetchall():
            found[key] = _account(tuple(row))
    return found


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
        #: Lookups waiting for the next read, by nickname key.
        self._waiting: dict[str, list[Deferred[Account | None]]] = {}
        self._reading = False

    def get(self, name: str) -> Deferred[Account | None]:
        d: Deferred[Account | None] = Deferred()
        self._waiting.setdefault(nick_key(name), []).append(d)
        if not self._reading:
            self._read()
        return d

    def _read(self) -> None:
        batch, self._waiting = self._waiting, {}
        self._reading = True

        def done(found: dict[str, Account]) -> None:
            for key, waiting in batch.items():
                for d in waiting:
                    d.callback(found.get(key))

        def failed(failure: Failure) -> None:
            for waiting in batch.values():
                for d in waiting:
                    d.errback(failure)

        def next_batch(_: object) -> None:
            self._reading = False
            if self._waiting:
                self._read()

        read: Deferred[dict[str, Account]] = self._pool.runInteraction(
            _get_many, list(batch)
        )
        read.addCallbacks(done, failed).addBoth(next_batch)

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
