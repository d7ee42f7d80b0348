"""
Moderation state in the state file (``--db``), through its one database
thread: tables ``moderation`` (scope, field, value) and ``modlog``.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..history import Pool
from .state import Change
from .store import LOG_KEEP, IModerationStore

__all__ = ["SQLiteModeration", "operations"]


def _fields(cursor: Any, scope: str) -> dict[str, str]:
    cursor.execute("SELECT field, value FROM moderation WHERE scope = ?", (scope,))
    return {field: value for field, value in cursor.fetchall()}


def _change(cursor: Any, scope: str, changes: list[Change]) -> None:
    for field, value in changes:
        if value is None:
            cursor.execute(
                "DELETE FROM moderation WHERE scope = ? AND field = ?", (scope, field)
            )
        else:
            cursor.execute(
                "INSERT OR REPLACE INTO moderation (scope, field, value)"
                " VALUES (?, ?, ?)",
                (scope, field, value),
            )


def _add_new(cursor: Any, scope: str, field: str, value: str) -> bool:
    cursor.execute(
        "INSERT OR IGNORE INTO moderation (scope, field, value) VALUES (?, ?, ?)",
        (scope, field, value),
    )
    return bool(cursor.rowcount == 1)


def _record(cursor: Any, entry: str) -> None:
    cursor.execute("INSERT INTO modlog (entry) VALUES (?)", (entry,))
    cursor.execute(
        "DELETE FROM modlog WHERE id <= (SELECT MAX(id) FROM modlog) - ?", (LOG_KEEP,)
    )


def _records(cursor: Any, count: int) -> list[str]:
    cursor.execute("SELECT entry FROM modlog ORDER BY id DESC LIMIT ?", (count,))
    return [entry for (entry,) in reversed(cursor.fetchall())]


#: The operations by name, for tools with their own connection.
operations = {
    "fields": _fields,
    "change": _change,
    "add_new": _add_new,
    "record": _record,
    "records": _records,
}


@implementer(IModerationStore)
class SQLiteModeration:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def fields(self, scope: str) -> Deferred[dict[str, str]]:
        return self._pool.runInteraction(_fields, scope)

    def change(self, scope: str, changes: list[Change]) -> Deferred[None]:
        return self._pool.runInteraction(_change, scope, changes)

    def add_new(self, scope: str, field: str, value: str) -> Deferred[bool]:
        return self._pool.runInteraction(_add_new, scope, field, value)

    def record(self, entry: str) -> Deferred[None]:
        return self._pool.runInteraction(_record, entry)

    def records(self, count: int) -> Deferred[list[str]]:
        return self._pool.runInteraction(_records, count)
