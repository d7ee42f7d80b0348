"""
Persistent history: every room's lines in an SQLite file.

Reads never wait on disk: the last lines of every room are kept in memory
(loaded once at start-up), so replay on join and ``/history`` answer at
once and in the same order as the live stream, with no seam between the
two. Writes go through ``twisted.enterprise.adbapi`` with a single
connection (one writer keeps the order), grouped into one transaction per
``COMMIT_INTERVAL`` or ``COMMIT_ROWS`` lines. After a ``kill -9`` at most
the last interval is missing; a clean shutdown writes everything.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = [
    "COMMIT_INTERVAL",
    "COMMIT_ROWS",
    "SCHEMA_VERSION",
    "History",
    "HistoryEntry",
    "RoomHistory",
    "load_history",
    "migrate",
    "open_history",
]

#: Seconds between group commits: the most a crash can lose.
COMMIT_INTERVAL = 0.1
#: Lines that make a commit happen before the interval is up.
COMMIT_ROWS = 500
#: Seconds between retention sweeps, and between repeated error logs.
PRUNE_INTERVAL = 60.0
ERROR_LOG_INTERVAL = 60.0

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
}
SCHEMA_VERSION = max(MIGRATIONS)

_log = Logger()


class HistoryEntry(NamedTuple):
    """
    One stored line. ``kind`` is chat, action or topic.

    A tuple, in the table's column order: cheap to make on the broadcast
    path, and handed to ``executemany`` as it is.
    """

    room: str
    seq: int
    ts: float
    kind: str
    sender: str
    text: str


class RoomHistory(Protocol):
    """What the hub needs of a history: SQLite here, a Redis stream in a cluster."""

    #: The most lines ``recent`` can give.
    keep: int

    @property
    def available(self) -> bool: ...

    def record(self, room: str, kind: str, sender: str, text: str) -> object: ...

    def recent(self, room: str, count: int) -> list[HistoryEntry]: ...

    def close(self) -> Deferred[None]: ...


class Pool(Protocol):
    """What History needs of ``adbapi.ConnectionPool``."""

    def runInteraction(
        self, interaction: Callable[..., Any], *args: Any
    ) -> Deferred[Any]: ...

    def close(self) -> None: ...


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the schema up to date; return the version it was at."""
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with connection:
            for statement in MIGRATIONS[target]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {target}")
    return int(version)


def _configure(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")


def load_history(
    path: str, keep: int
) -> tuple[dict[str, deque[HistoryEntry]], dict[str, int]]:
    """
    Open (creating, migrating) the file; return each room's last ``keep``
    lines and its last sequence number.

    Run once at start-up, before the reactor runs: a plain read is fine.
    """
    connection = sqlite3.connect(path)
    try:
        _configure(connection)
        migrate(connection)
        seqs = {
            room: int(seq)
            for room, seq in connection.execute(
                "SELECT room, MAX(seq) FROM messages GROUP BY room"
            )
        }
        tails: dict[str, deque[HistoryEntry]] = {}
        rows = connection.execute(
            "SELECT room, seq, ts, kind, sender, text FROM ("
            " SELECT *, ROW_NUMBER() OVER (PARTITION BY room ORDER BY seq DESC) AS n"
            " FROM messages) WHERE n <= ? ORDER BY room, seq",
            (keep,),
        )
        for row in rows:
            entry = HistoryEntry._make(row)
            tails.setdefault(entry.room, deque(maxlen=keep)).append(entry)
        return tails, seqs
    finally:
        connection.close()


def _insert(cursor: Any, batch: str) -> None:
    # One statement and one parameter for the whole batch: SQLite walks the
    # JSON in C, so this thread does not fight the reactor thread for the
    # GIL row by row (executemany did, and cost the broadcast 15 %).
    cursor.execute(
        "INSERT INTO messages (room, seq, ts, kind, sender, text)"
        " SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5"
        " FROM json_each(?)",
        (batch,),
    )


def _prune(cursor: Any, older_than: float | None, max_rows: int) -> None:
    if older_than is not None:
        cursor.execute("DELETE FROM messages WHERE ts < ?", (older_than,))
    if max_rows:
        cursor.execute(
            "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM ("
            " SELECT rowid, ROW_NUMBER() OVER (PARTITION BY room ORDER BY seq DESC)"
            " AS n FROM messages) WHERE n > ?)",
            (max_rows,),
        )


class History:
    """
    The rooms' recent lines in memory, all lines on disk.

    Rooms are named by their key (lower case, no ``#``). Without a pool
    (the file could not be opened) nothing is kept and ``available`` is
    False.
    """

    def __init__(
        self,
        clock: IReactorTime,
        pool: Pool | None,
        keep: int = 100,
        tails: dict[str, deque[HistoryEntry]] | None = None,
        seqs: dict[str, int] | None = None,
        max_age: float = 0.0,
        max_rows: int = 0,
    ) -> None:
        self._clock = clock
        self._pool = pool
        self.keep = keep
        self._tails = tails if tails is not None else {}
        self._seqs = seqs if seqs is not None else {}
        self.max_age = max_age
        self.max_rows = max_rows
        self._buffer: list[HistoryEntry] = []
        self._commit_call: IDelayedCall | None = None
        self._in_flight: set[Deferred[Any]] = set()
        self._failing = pool is None
        self._last_error_log = -ERROR_LOG_INTERVAL
        self._closed = False
        self._pruner = LoopingCall(self.prune)
        self._pruner.clock = clock
        if pool is not None and (max_age or max_rows):
            self._pruner.start(PRUNE_INTERVAL, now=True)

    @property
    def available(self) -> bool:
        """False while the file cannot be written (or was never opened)."""
        return not self._failing

    def record(self, room: str, kind: str, sender: str, text: str) -> HistoryEntry:
        """Keep one line of ``room``; it reaches the disk within an interval."""
        seq = self._seqs.get(room, 0) + 1
        self._seqs[room] = seq
        entry = HistoryEntry(room, seq, self._clock.seconds(), kind, sender, text)
        if self._pool is None or self._closed:
            return entry
        tail = self._tails.get(room)
        if tail is None:
            tail = self._tails[room] = deque(maxlen=self.keep)
        tail.append(entry)
        self._buffer.append(entry)
        if len(self._buffer) >= COMMIT_ROWS:
            self.commit()
        elif self._commit_call is None:
            self._commit_call = self._clock.callLater(COMMIT_INTERVAL, self.commit)
        return entry

    def recent(self, room: str, count: int) -> list[HistoryEntry]:
        """The last ``count`` lines of ``room`` (at most ``keep``), oldest first."""
        tail = self._tails.get(room)
        if not tail or count <= 0:
            return []
        return list(tail)[-count:]

    def commit(self) -> Deferred[None]:
        """Write what is waiting, in one transaction."""
        if self._commit_call is not None and self._commit_call.active():
            self._commit_call.cancel()
        self._commit_call = None
        if not self._buffer or self._pool is None:
            return succeed(None)
        rows, self._buffer = self._buffer, []
        return self._run(_insert, json.dumps(rows), what=f"{len(rows)} lines")

    def prune(self) -> Deferred[None]:
        """Forget lines past the retention limits."""
        if self._pool is None:
            return succeed(None)
        older = self._clock.seconds() - self.max_age if self.max_age else None
        return self._run(_prune, older, self.max_rows, what="pruning")

    def _run(
        self, interaction: Callable[..., None], *args: Any, what: str
    ) -> Deferred[None]:
        assert self._pool is not None
        d = self._pool.runInteraction(interaction, *args)
        self._in_flight.add(d)

        def done(result: object) -> None:
            self._in_flight.discard(d)
            if isinstance(result, Failure):
                self._failed(result, what)
            else:
                self._failing = False

        d.addBoth(done)
        return d

    def _failed(self, failure: Failure, what: str) -> None:
        # Chat goes on without history; say so, but not a thousand times.
        self._failing = True
        now = self._clock.seconds()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL:
            self._last_error_log = now
            _log.error(
                "history unavailable: could not write {what}: {error}",
                what=what,
                error=failure.getErrorMessage(),
            )

    def close(self) -> Deferred[None]:
        """Write everything still waiting, then close the file."""
        self._closed = True
        if self._pruner.running:
            self._pruner.stop()
        self.commit()
        pending = list(self._in_flight)
        d: Deferred[Any] = gatherResults(pending) if pending else succeed(None)

        def close_pool(_: object) -> None:
            if self._pool is not None:
                self._pool.close()

        d.addBoth(close_pool)
        return d


def open_history(
    clock: IReactorTime,
    path: str,
    keep: int,
    max_age: float = 0.0,
    max_rows: int = 0,
) -> History:
    """
    The history in ``path``; if it cannot be opened, a History that says it
    is unavailable (the chat itself must start anyway).
    """
    from twisted.enterprise.adbapi import ConnectionPool

    try:
        tails, seqs = load_history(path, keep)
    except (sqlite3.Error, OSError) as e:
        _log.error(
            "history unavailable: cannot open {path}: {error}", path=path, error=e
        )
        return History(clock, None, keep)
    pool = ConnectionPool(
        "sqlite3",
        path,
        check_same_thread=False,
        cp_min=1,
        cp_max=1,
        cp_openfun=_configure,
        cp_reactor=clock,
    )
    _log.info("history in {path}", path=path)
    return History(clock, pool, keep, tails, seqs, max_age, max_rows)
