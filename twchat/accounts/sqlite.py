"""
Accounts in the SQLite state file (one process).

Each operation is a function of a cursor: the server runs it on the state
file's single database thread (``runInteraction``), the admin tool on its
own connection; the SQL is written once.

Every nickname chosen is looked up here. Most are guests' names, and the
set of every account's name, read on the database thread and kept a
second at a time, answers those at once: a crowd arriving costs no trip
to the thread each. A name in the set (or any name, when the set is older
than that) is read from the file; those lookups share trips: while one
read is under way, the names asked meanwhile go together in the next.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from ..history import Pool
from ..nicknames import nick_key
from . import Account, IAccountStore

__all__ = ["NAMES_FRESH", "SQLiteAccounts", "operations"]

_COLUMNS = "name, hash, operator, created"

#: Seconds the set of account names answers "no such account" for after
#: it was read. Outside the server only the admin tool adds accounts, and
#: one it adds is known within this: a guest who takes that name meanwhile
#: is like one who had it already, who keeps it until they leave.
NAMES_FRESH = 1.0


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


def _keys_if_changed(cursor: Any, seen: int | None) -> tuple[int, set[str] | None]:
    """
    The file's data version, and every account's key if another connection
    (the admin tool) has changed the file since version ``seen``: a new set,
    built here on the database thread, for the reactor to keep as it is.
    """
    cursor.execute("PRAGMA data_version")
    (version,) = cursor.fetchone()
    if version == seen:
        return version, None
    cursor.execute("SELECT key FROM accounts")
    return version, {key for (key,) in cursor.fetchall()}


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

    def __init__(self, pool: Pool, clock: IReactorTime) -> None:
        self._pool = pool
        self._clock = clock
        #: Lookups waiting for the next read, by nickname key.
        self._waiting: dict[str, list[Deferred[Account | None]]] = {}
        self._reading = False
        #: Every account's key, as of ``_keys_at`` (None until first read).
        #: The pool's one thread keeps order: an add or removal by this
        #: server lands after any read of the set queued before it.
        self._keys: set[str] | None = None
        self._keys_at = float("-inf")
        self._version: int | None = None
        self._listing = False

    def get(self, name: str) -> Deferred[Account | None]:
        key = nick_key(name)
        age = self._clock.seconds() - self._keys_at
        if age >= NAMES_FRESH / 2:
            self._list()  # fresh again before it goes stale
        if self._keys is not None and age < NAMES_FRESH and key not in self._keys:
            return succeed(None)
        d: Deferred[Account | None] = Deferred()
        self._waiting.setdefault(key, []).append(d)
        if not self._reading:
            self._read()
        return d

    def _list(self) -> None:
        """Read the set of names again, if another connection changed it."""
        if self._listing:
            return
        self._listing = True
        asked = self._clock.seconds()

        def listed(found: tuple[int, set[str] | None]) -> None:
            version, keys = found
            if keys is not None:
                self._keys = keys
            self._version = version
            self._keys_at = asked

        def failed(failure: Failure) -> None:
            # Unknown: every name is read from the file, until the set is
            # read whole again.
            self._keys = self._version = None

        def done(_: object) -> None:
            self._listing = False

        d = self._pool.runInteraction(_keys_if_changed, self._version)
        d.addCallbacks(listed, failed).addBoth(done)

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
        key = nick_key(account.name)

        def added(done: bool) -> bool:
            if self._keys is not None:
                self._keys.add(key)
            return done

        return self._pool.runInteraction(_add, account).addCallback(added)

    def set_hash(self, name: str, hash: str) -> Deferred[bool]:
        return self._pool.runInteraction(_set_hash, name, hash)

    def set_operator(self, name: str, operator: bool) -> Deferred[bool]:
        return self._pool.runInteraction(_set_operator, name, operator)

    def remove(self, name: str) -> Deferred[bool]:
        key = nick_key(name)

        def removed(done: bool) -> bool:
            if self._keys is not None:
                self._keys.discard(key)
            return done

        return self._pool.runInteraction(_remove, name).addCallback(removed)

    def all(self) -> Deferred[list[Account]]:
        return self._pool.runInteraction(_all)
