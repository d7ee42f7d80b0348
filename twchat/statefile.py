"""
The server's SQLite state file (``--db``): every room's history and the
accounts, in one file with one schema.

The schema has a version (``PRAGMA user_version``); opening a file brings
it up to date, keeping its data, so a file written by an older twchat
(a history file from before accounts existed) just gains the new tables.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from twisted.enterprise.adbapi import ConnectionPool
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "configure",
    "migrate",
    "open_pool",
    "prepare_state",
    "probe_state",
]

#: Each version's statements; a database at version N gets N+1.. applied.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE messages ("
        " room TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,"
        " kind TEXT NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL,"
        " PRIMARY KEY (room, seq))",
    ),
    # Retention by age scans by time.
    2: ("CREATE INDEX messages_ts ON messages (ts)",),
    # Accounts, keyed by the nickname's key (case-folded).
    3: (
        "CREATE TABLE accounts ("
        " key TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL,"
        " operator INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL)",
    ),
    # Moderation: rooms' and the server's state as fields, and its log.
    4: (
        "CREATE TABLE moderation ("
        " scope TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (scope, field))",
        "CREATE TABLE modlog (id INTEGER PRIMARY KEY, entry TEXT NOT NULL)",
    ),
    # /healthz writes here: the file takes writes, not just reads.
    5: ("CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL)",),
    # History as one row per room per commit, its lines a JSON array of
    # [seq, ms, kind, sender, text]: a row per line cost SQLite ~5 µs
    # each, a quarter of the broadcast's rate on a 2-core machine. Topics
    # get their own table (the last one set is read on a room's load), and
    # ``messages`` stays, as a view, for people reading the file.
    6: (
        "CREATE TABLE history ("
        " room TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,"
        " ts REAL NOT NULL, lines TEXT NOT NULL, PRIMARY KEY (room, last))",
        "CREATE INDEX history_ts ON history (ts)",
        "CREATE TABLE topics (room TEXT PRIMARY KEY, text TEXT NOT NULL)",
        "INSERT INTO history SELECT room, seq, seq, ts, json_array(json_array("
        " seq, CAST(round(ts * 1000) AS INTEGER), kind, sender, text))"
        " FROM messages",
        # SQLite takes a bare column from the row holding the max().
        "INSERT INTO topics SELECT room, text FROM ("
        " SELECT room, text, max(seq) FROM messages WHERE kind = 'topic'"
        " GROUP BY room)",
        "DROP TABLE messages",
        "CREATE VIEW messages AS SELECT h.room AS room, l.value->>0 AS seq,"
        " l.value->>1 / 1000.0 AS ts, l.value->>2 AS kind, l.value->>3 AS sender,"
        " l.value->>4 AS text FROM history AS h, json_each(h.lines) AS l",
    ),
    # A row's lines as one text, the kind, sender and text of each with
    # U+001F (which no chat text holds) between: the reactor makes it with
    # one join, where JSON was two thirds of what history cost it. Their
    # ids follow from ``first``; their time is the row's, when its first
    # line was said. The view rebuilds a line a row.
    7: (
        "UPDATE history SET ts = (lines->'$[0]'->>1) / 1000.0,"
        " lines = (SELECT group_concat((l.value->>2) || char(31) ||"
        " (l.value->>3) || char(31) || (l.value->>4), char(31))"
        " FROM json_each(history.lines) AS l)",
        "DROP VIEW messages",
        "CREATE VIEW messages AS SELECT h.room AS room, h.first + f.key / 3 AS seq,"
        " h.ts AS ts, max(iif(f.key % 3 = 0, f.value, NULL)) AS kind,"
        " max(iif(f.key % 3 = 1, f.value, NULL)) AS sender,"
        " max(iif(f.key % 3 = 2, f.value, NULL)) AS text"
        # The text made a JSON array of strings: \ and " escaped, U+001F
        # between them.
        r""" FROM history AS h, json_each('["' || replace(replace(replace("""
        r""" h.lines, '\', '\\'), '"', '\"'), char(31), '","') || '"]') AS f"""
        " GROUP BY h.room, h.last, f.key / 3",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the schema up to date; return the version it was at."""
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with connection:
            for statement in MIGRATIONS[target]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {target}")
    return int(version)


def configure(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")


def prepare_state(path: str) -> None:
    """
    Open (creating, migrating) the file, to fail early if it cannot be used.

    Run once at start-up, before the reactor runs: a plain call is fine.
    """
    connection = sqlite3.connect(path)
    try:
        configure(connection)
        migrate(connection)
    finally:
        connection.close()


def open_pool(clock: IReactorTime, path: str) -> ConnectionPool:
    """
    One connection on one thread: a single writer keeps the order, and
    the reactor thread never waits on the disk.
    """
    return ConnectionPool(
        "sqlite3",
        path,
        check_same_thread=False,
        cp_min=1,
        cp_max=1,
        cp_openfun=configure,
        cp_reactor=clock,
    )


def _probe(cursor: Any, at: float) -> None:
    cursor.execute("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?)", (at,))


def probe_state(pool: ConnectionPool, clock: IReactorTime) -> Deferred[float]:
    """
    Write to the state file (in its thread): fires with the seconds it took,
    or fails saying why (a full disk, a read-only file, a lock held).
    """
    started = clock.seconds()
    d: Deferred[None] = pool.runInteraction(_probe, time.time())
    return d.addCallback(lambda _: clock.seconds() - started)
