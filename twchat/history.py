"""
Persistent history: every room's lines in an SQLite file.

Reads never wait on disk: the last lines of every room someone is in are
kept in memory (read from the file, off the reactor thread, when the room
comes to life), so replay on join and ``/history`` answer at once and in
the same order as the live stream, with no seam between the two. Rooms
nobody is in keep their lines in memory only in a small cache
(``CACHED_ROOMS``): memory follows the live rooms, not every room ever
used. Writes go through ``twisted.enterprise.adbapi`` with a single
connection (one writer keeps the order), grouped into one transaction per
``COMMIT_INTERVAL`` or ``COMMIT_ROWS`` lines, in which each room's lines
are one row (a JSON array; the ``messages`` view shows them a line a row).
After a ``kill -9`` at most the last interval is missing; a clean shutdown
writes everything.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from .stats import WriteStats

__all__ = [
    "CACHED_ROOMS",
    "COMMIT_INTERVAL",
    "COMMIT_ROWS",
    "History",
    "HistoryEntry",
    "RoomHistory",
]

#: Seconds between group commits: the most a crash can lose.
COMMIT_INTERVAL = 0.1
#: Lines that make a commit happen before the interval is up: a bound on
#: memory, not a pace. Each commit wakes the database thread, which takes
#: the GIL from the reactor a few times; at 500 a flat-out room made the
#: reactor switch 4-9 times as often as without history (/proc/*/status).
COMMIT_ROWS = 10000
#: Rooms nobody is in whose last lines stay in memory, most recent first:
#: someone who leaves a room and comes back finds it without a disk read.
CACHED_ROOMS = 16
#: Seconds between retention sweeps, and between repeated error logs.
PRUNE_INTERVAL = 60.0
ERROR_LOG_INTERVAL = 60.0


_log = Logger()


class HistoryEntry(NamedTuple):
    """
    One stored line. ``kind`` is chat, action or topic.

    What ``recent`` gives. Lines are kept as plain ``_Row`` tuples and only
    made into entries when read, since most are never replayed.
    """

    room: str
    seq: int
    ts: float
    kind: str
    sender: str
    text: str


#: A line as kept in memory (in its room's tail) and written (in its room's
#: row): sequence number, time in integer milliseconds, kind, sender, text.
#: Built with one tuple display on the broadcast path and encoded as it is.
_Row = tuple[int, int, str, str, str]


def _entry(room: str, row: _Row) -> HistoryEntry:
    seq, ms, kind, sender, text = row
    return HistoryEntry(room, seq, ms / 1000, kind, sender, text)


class RoomHistory(Protocol):
    """
    What the hub reads of a history: SQLite in one process, the room
    streams in Redis mode. Each backend records into its own.
    """

    #: The most lines ``recent`` can give.
    keep: int

    @property
    def available(self) -> bool: ...

    def recent(self, room: str, count: int) -> list[HistoryEntry]: ...


class Pool(Protocol):
    """What History needs of ``adbapi.ConnectionPool``."""

    def runInteraction(
        self, interaction: Callable[..., Any], *args: Any
    ) -> Deferred[Any]: ...

    def close(self) -> None: ...


def _read_tail(cursor: Any, room: str, keep: int) -> tuple[list[_Row], str]:
    """
    A room's last ``keep`` lines, oldest first, and its topic: the last
    one set, however long ago (runs on the pool's thread).
    """
    cursor.execute(
        "SELECT lines FROM history WHERE room = ? ORDER BY last DESC", (room,)
    )
    newest_first: list[list[_Row]] = []
    count = 0
    while count < keep:
        found = cursor.fetchone()  # adbapi's cursor is not iterable
        if found is None:
            break
        rows = [tuple(row) for row in json.loads(found[0])]
        newest_first.append(rows)
        count += len(rows)
    tail = [row for rows in reversed(newest_first) for row in rows]
    cursor.execute("SELECT text FROM topics WHERE room = ?", (room,))
    found = cursor.fetchone()
    return tail[-keep:], found[0] if found else ""


#: One commit's rows of one room: (room, first seq, last seq, time of the
#: last line in seconds, the lines as JSON).
_Batch = tuple[str, int, int, float, str]


def _insert(cursor: Any, batches: list[_Batch], topics: list[tuple[str, str]]) -> None:
    # A row per room per commit, its lines already one JSON text (made on
    # the reactor thread, see ``_batches``): SQLite copies it and is done.
    cursor.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?)", batches)
    cursor.executemany("INSERT OR REPLACE INTO topics VALUES (?, ?)", topics)


_ENCODER = json.JSONEncoder(check_circular=False, separators=(",", ":"))


def _batches(pending: dict[str, list[_Row]]) -> list[_Batch]:
    """
    Each room's waiting rows as one JSON text, straight from the kept
    tuples. Their time is in integer milliseconds because a float's repr
    was the dearest part of the text.
    """
    return [
        (room, rows[0][0], rows[-1][0], rows[-1][1] / 1000, _ENCODER.encode(rows))
        for room, rows in pending.items()
    ]


#: Each room's newest line number less the lines it keeps: the last one to go.
_CUTS = "SELECT room, max(last) - ? AS upto FROM history GROUP BY room"


def _prune(cursor: Any, older_than: float | None, max_rows: int) -> None:
    # A row goes when its newest line is past the limit; a row straddling
    # the row limit is rewritten without its oldest lines. Age is kept to
    # within a commit interval, the span of one row.
    if older_than is not None:
        cursor.execute("DELETE FROM history WHERE ts < ?", (older_than,))
    if not max_rows:
        return
    cursor.execute(
        f"WITH cut AS ({_CUTS}) DELETE FROM history WHERE last <="
        " (SELECT upto FROM cut WHERE cut.room = history.room)",
        (max_rows,),
    )
    cursor.execute(
        f"SELECT h.room, h.last, h.lines, c.upto FROM history AS h JOIN ({_CUTS})"
        " AS c ON h.room = c.room WHERE h.first <= c.upto",
        (max_rows,),
    )
    for room, last, lines, upto in cursor.fetchall():
        kept = [row for row in json.loads(lines) if row[0] > upto]
        cursor.execute(
            "UPDATE history SET first = ?, lines = ? WHERE room = ? AND last = ?",
            (kept[0][0], _ENCODER.encode(kept), room, last),
        )


class History:
    """
    The recent lines of live rooms in memory, all lines on disk.

    Rooms are named by their key (lower case, no ``#``). A room's tail is
    read from the file by ``load``; the backend marks the rooms people are
    in with ``retain`` and lets them go with ``release`` (into the cache).
    Without a pool (the file could not be opened) nothing is kept and
    ``available`` is False.
    """

    def __init__(
        self,
        clock: IReactorTime,
        pool: Pool | None,
        keep: int = 100,
        max_age: float = 0.0,
        max_rows: int = 0,
        cached: int = CACHED_ROOMS,
    ) -> None:
        self._clock = clock
        self._pool = pool
        self.keep = keep
        self.max_age = max_age
        self.max_rows = max_rows
        self._cached = cached
        #: Loaded rooms: their last lines and last sequence number.
        self._tails: dict[str, deque[_Row]] = {}
        self._seqs: dict[str, int] = {}
        #: Loaded rooms' topics: the last set, kept with their history.
        self._topics: dict[str, str] = {}
        #: Rooms people are in (kept), and loaded rooms nobody is in
        #: (least recently left first, at most ``cached``).
        self._live: set[str] = set()
        self._cache: OrderedDict[str, None] = OrderedDict()
        self._loading: dict[str, Deferred[None]] = {}
        #: Lines waiting for the next commit, by room, and their count.
        self._pending: dict[str, list[_Row]] = {}
        self._pending_count = 0
        #: Topics set since the last commit, by room.
        self._new_topics: dict[str, str] = {}
        self._writing = 0
        #: For --metrics: lines waiting, and the commits' time.
        self.writes = WriteStats(lambda: self._pending_count + self._writing)
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

    @property
    def rooms_in_memory(self) -> int:
        """Rooms whose lines are held in memory (live ones and the cache)."""
        return len(self._tails)

    def load(self, room: str) -> Deferred[None]:
        """Have ``room``'s last lines in memory; fires once they are."""
        if room in self._seqs or self._pool is None or self._closed:
            if room in self._cache:
                self._cache.move_to_end(room)
            return succeed(None)
        loading = self._loading.get(room)
        if loading is None:
            # Lines still in the buffer reach the file first; the pool has
            # one connection, so the read comes after that write.
            self.commit()
            loading = self._run(_read_tail, room, self.keep, what=f"reading #{room}")
            loading.addCallback(self._loaded, room)
            self._loading[room] = loading
            loading.addBoth(self._done_loading, room)
        done: Deferred[None] = Deferred()
        loading.addBoth(lambda _: done.callback(None))
        return done

    def _loaded(self, read: tuple[list[_Row], str] | None, room: str) -> None:
        if read is None:
            return  # could not be read (logged): the room has no past here
        tail, self._topics[room] = read
        self._tails[room] = deque(tail, maxlen=self.keep)
        self._seqs[room] = tail[-1][0] if tail else 0
        if room not in self._live:
            self._keep_cached(room)

    def _done_loading(self, result: object, room: str) -> object:
        self._loading.pop(room, None)
        return result

    def retain(self, room: str) -> None:
        """People are in ``room``: its lines stay in memory."""
        self._live.add(room)
        self._cache.pop(room, None)

    def release(self, room: str) -> None:
        """Nobody is in ``room`` any more: its lines go to the cache."""
        self._live.discard(room)
        if room in self._tails:
            self._keep_cached(room)

    def _keep_cached(self, room: str) -> None:
        self._cache[room] = None
        self._cache.move_to_end(room)
        while len(self._cache) > self._cached:
            gone, _ = self._cache.popitem(last=False)
            self._tails.pop(gone, None)
            self._seqs.pop(gone, None)
            self._topics.pop(gone, None)

    def topic(self, room: str) -> str:
        """The topic last set in a loaded room ("" if none ever was)."""
        return self._topics.get(room, "")

    def record(self, room: str, kind: str, sender: str, text: str) -> int:
        """
        Keep one line of ``room``; it reaches the disk within an interval.
        Its id (sequence number in the room) is returned: 0 when it is kept
        in memory only.
        """
        if self._pool is None or self._closed:
            return 0
        ms = int(self._clock.seconds() * 1000)
        seq = self._seqs.get(room)
        if seq is None:
            # Its past could not be read: without the last sequence number
            # a write would collide with a stored line; keep it in memory.
            self._tails.setdefault(room, deque(maxlen=self.keep)).append(
                (0, ms, kind, sender, text)
            )
            return 0
        seq += 1
        self._seqs[room] = seq
        row = (seq, ms, kind, sender, text)
        self._tails[room].append(row)
        if kind == "topic":
            self._topics[room] = self._new_topics[room] = text
        pending = self._pending.get(room)
        if pending is None:
            self._pending[room] = [row]
        else:
            pending.append(row)
        self._pending_count += 1
        if self._pending_count >= COMMIT_ROWS:
            self.commit()
        elif self._commit_call is None:
            self._commit_call = self._clock.callLater(COMMIT_INTERVAL, self.commit)
        return seq

    def recent(self, room: str, count: int) -> list[HistoryEntry]:
        """The last ``count`` lines of ``room`` (at most ``keep``), oldest first."""
        tail = self._tails.get(room)
        if not tail or count <= 0:
            return []
        return [_entry(room, row) for row in list(tail)[-count:]]

    def commit(self) -> Deferred[None]:
        """Write what is waiting, in one transaction."""
        if self._commit_call is not None and self._commit_call.active():
            self._commit_call.cancel()
        self._commit_call = None
        if not self._pending or self._pool is None:
            return succeed(None)
        pending, self._pending = self._pending, {}
        topics, self._new_topics = list(self._new_topics.items()), {}
        lines, self._pending_count = self._pending_count, 0
        self._writing += lines
        started = self._clock.seconds()

        def written(result: object) -> object:
            self._writing -= lines
            self.writes.wrote(self._clock.seconds() - started)
            return result

        d = self._run(_insert, _batches(pending), topics, what=f"writing {lines} lines")
        return d.addBoth(written)

    def prune(self) -> Deferred[None]:
        """Forget lines past the retention limits."""
        if self._pool is None:
            return succeed(None)
        older = self._clock.seconds() - self.max_age if self.max_age else None
        return self._run(_prune, older, self.max_rows, what="pruning")

    def _run(
        self, interaction: Callable[..., Any], *args: Any, what: str
    ) -> Deferred[Any]:
        assert self._pool is not None
        d = self._pool.runInteraction(interaction, *args)
        self._in_flight.add(d)

        def done(result: object) -> object:
            self._in_flight.discard(d)
            if isinstance(result, Failure):
                self._failed(result, what)
                return None  # logged; the chat goes on
            self._failing = False
            return result

        d.addBoth(done)
        return d

    def _failed(self, failure: Failure, what: str) -> None:
        # Chat goes on without history; say so, but not a thousand times.
        self._failing = True
        now = self._clock.seconds()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL:
            self._last_error_log = now
            _log.error(
                "history unavailable: {what} failed: {error}",
                what=what,
                error=failure.getErrorMessage(),
            )

    def close(self) -> Deferred[None]:
        """Write everything still waiting."""
        self._closed = True
        if self._pruner.running:
            self._pruner.stop()
        self.commit()
        pending = list(self._in_flight)
        d: Deferred[Any] = gatherResults(pending) if pending else succeed(None)
        # The pool is the state file's: its opener closes it.
        return d.addBoth(lambda _: None)
