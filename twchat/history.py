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
are one row (their fields in one text; the ``messages`` view shows them a
line a row).
After a ``kill -9`` at most the last interval is missing; a clean shutdown
writes everything.

A line is kept as its kind, sender and text, one after the other in its
room's batch: the lines of one room between two commits. Its id follows
from its place in the batch, and its time is the batch's (when the first
of them was said): at most ``COMMIT_INTERVAL`` early, and nothing per line
for the reactor to make or encode.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import count, repeat
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
#: Lines of one room that make a commit happen before the interval is up:
#: a bound on memory, not a pace. Each commit wakes the database thread,
#: which takes the GIL from the reactor a few times; at 500 a flat-out room
#: made the reactor switch 4-9 times as often as without history.
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

    What ``recent`` gives. Lines are kept as plain fields in batches and
    only made into entries when read, since most are never replayed.
    """

    room: str
    seq: int
    ts: float
    kind: str
    sender: str
    text: str


#: The fields of a line as kept: kind, sender, text.
_FIELDS = 3


class _Batch(list[str]):
    """
    Lines of one room from one commit interval: ids ``first`` on (0 for
    lines kept in memory only), all said at ``ts`` to within the interval.

    Flat: each line's kind, sender and text in turn. A tuple per line, kept
    until the commit, is a container the garbage collector counts: in a
    flat-out room it made half again as many collections, and twice the
    full ones (25 ms each), as no history at all.
    """

    __slots__ = ("first", "ts")

    def __init__(self, fields: list[str], first: int, ts: float) -> None:
        super().__init__(fields)
        self.first = first
        self.ts = ts

    @property
    def lines(self) -> int:
        """How many lines it holds (each is ``_FIELDS`` items)."""
        return len(self) // _FIELDS

    def entries(self, room: str, start: int = 0) -> list[HistoryEntry]:
        """Its lines from ``start`` on, as entries of ``room``."""
        ids = count(self.first + start) if self.first else repeat(0)
        ts = self.ts
        fields = iter(self[start * _FIELDS :])
        return [
            HistoryEntry(room, id, ts, kind, sender, text)
            # ids are endless (count or repeat): the fields end it.
            for id, kind, sender, text in zip(ids, fields, fields, fields, strict=False)
        ]

    def after(self, start: int) -> _Batch:
        """The same batch without its first ``start`` lines."""
        return _Batch(self[start * _FIELDS :], self.first + start, self.ts)


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


def _read_tail(cursor: Any, room: str, keep: int) -> tuple[list[_Batch], str]:
    """
    A room's last ``keep`` lines (or a few more), oldest first, and its
    topic: the last one set, however long ago (runs on the pool's thread).
    """
    cursor.execute(
        "SELECT first, ts, lines FROM history WHERE room = ? ORDER BY last DESC",
        (room,),
    )
    newest_first: list[_Batch] = []
    read = 0
    while read < keep:
        found = cursor.fetchone()  # adbapi's cursor is not iterable
        if found is None:
            break
        first, ts, text = found
        batch = _Batch(_decode(text), first, ts)
        newest_first.append(batch)
        read += batch.lines
    cursor.execute("SELECT text FROM topics WHERE room = ?", (room,))
    found = cursor.fetchone()
    return newest_first[::-1], found[0] if found else ""


#: One commit's row of one room: room, first id, last id, time, the lines
#: (``_encode``: made on the reactor thread, SQLite copies it and is done).
_Row = tuple[str, int, int, float, str]


def _insert(cursor: Any, rows: list[_Row], topics: list[tuple[str, str]]) -> None:
    cursor.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?)", rows)
    cursor.executemany("INSERT OR REPLACE INTO topics VALUES (?, ?)", topics)


#: Between the fields of a row's lines: the unit separator, which no
#: chat text (``clean_text``) nor nickname can hold.
_SEPARATOR = "\x1f"


def _encode(fields: list[str]) -> str:
    """
    A row's lines as one text: kind, sender and text of each in turn, with
    ``_SEPARATOR`` between them. One join: JSON was two thirds of what
    history cost the reactor in a busy room, and escaping was its work.
    """
    text = _SEPARATOR.join(fields)
    if text.count(_SEPARATOR) != len(fields) - 1:
        # Never from the hub's clean text, but a row must not be misread.
        text = _SEPARATOR.join(field.replace(_SEPARATOR, " ") for field in fields)
    return text


def _decode(text: str) -> list[str]:
    """A row's fields, as ``_encode`` joined them; a torn row is an error."""
    fields = text.split(_SEPARATOR)
    if len(fields) % _FIELDS:
        raise ValueError(f"a history row of {len(fields)} fields")
    return fields


#: Each room's newest line number less the lines it keeps: the last one to go.
_CUTS = "SELECT room, max(last) - ? AS upto FROM history GROUP BY room"


def _prune(cursor: Any, older_than: float | None, max_rows: int) -> None:
    # A row goes when its time is past the limit; a row straddling the row
    # limit is rewritten without its oldest lines. Age is kept to within a
    # commit interval, the span of one row.
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
        f"SELECT h.room, h.first, h.last, h.lines, c.upto FROM history AS h"
        f" JOIN ({_CUTS}) AS c ON h.room = c.room WHERE h.first <= c.upto",
        (max_rows,),
    )
    for room, first, last, lines, upto in cursor.fetchall():
        kept = _decode(lines)[(upto + 1 - first) * _FIELDS :]
        cursor.execute(
            "UPDATE history SET first = ?, lines = ? WHERE room = ? AND last = ?",
            (upto + 1, _encode(kept), room, last),
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
        #: Rooms' last lines, in batches (loaded rooms, and rooms whose past
        #: could not be read, with their lines since in memory only).
        self._tails: dict[str, deque[_Batch]] = {}
        #: Loaded rooms: the id the next batch starts at.
        self._next: dict[str, int] = {}
        #: Loaded rooms' topics: the last set, kept with their history.
        self._topics: dict[str, str] = {}
        #: Rooms people are in (kept), and loaded rooms nobody is in
        #: (least recently left first, at most ``cached``).
        self._live: set[str] = set()
        self._cache: OrderedDict[str, None] = OrderedDict()
        self._loading: dict[str, Deferred[None]] = {}
        #: Each room's batch waiting for the next commit (the newest in its tail).
        self._open: dict[str, _Batch] = {}
        #: Topics set since the last commit, by room.
        self._new_topics: dict[str, str] = {}
        self._writing = 0
        #: For --metrics: lines waiting, and the commits' time.
        self.writes = WriteStats(
            lambda: sum(b.lines for b in self._open.values()) + self._writing
        )
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
        if room in self._next or self._pool is None or self._closed:
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

    def _loaded(self, read: tuple[list[_Batch], str] | None, room: str) -> None:
        if read is None:
            return  # could not be read (logged): the room has no past here
        batches, self._topics[room] = read
        self._tails[room] = deque(batches)
        last = batches[-1] if batches else None
        self._next[room] = 1 if last is None else last.first + last.lines
        self._trim(room)
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
            # A batch of theirs still open is written all the same.
            self._tails.pop(gone, None)
            self._next.pop(gone, None)
            self._topics.pop(gone, None)

    def topic(self, room: str) -> str:
        """The topic last set in a loaded room ("" if none ever was)."""
        return self._topics.get(room, "")

    def record(self, room: str, kind: str, sender: str, text: str) -> int:
        """
        Keep one line of ``room`` (a topic goes through ``record_topic``);
        it reaches the disk within an interval. Its id (sequence number in
        the room) is returned: 0 when it is kept in memory only.
        """
        # On every line of a busy room: three fields on the end of a list.
        batch = self._open.get(room)
        if batch is None:
            batch = self._open_batch(room)
            if batch is None:
                return self._keep_unstored(room, [kind, sender, text])
        batch += kind, sender, text
        held = len(batch) // _FIELDS
        if held >= COMMIT_ROWS:
            self.commit()
        return batch.first + held - 1

    def record_topic(self, room: str, sender: str, text: str) -> int:
        """Keep a new topic of ``room`` as a line, and as the room's topic."""
        id = self.record(room, "topic", sender, text)
        if id:
            self._topics[room] = self._new_topics[room] = text
        return id

    def _open_batch(self, room: str) -> _Batch | None:
        first = self._next.get(room)
        if first is None or self._pool is None or self._closed:
            return None
        batch = self._open[room] = _Batch([], first, self._clock.seconds())
        self._tails[room].append(batch)
        if self._commit_call is None:
            self._commit_call = self._clock.callLater(COMMIT_INTERVAL, self.commit)
        return batch

    def _keep_unstored(self, room: str, line: list[str]) -> int:
        if self._pool is not None and not self._closed:
            # Its past could not be read: without the last id a write would
            # collide with a stored line; keep it in memory.
            tail = self._tails.setdefault(room, deque(maxlen=self.keep))
            tail.append(_Batch(line, 0, self._clock.seconds()))
        return 0

    def _trim(self, room: str) -> None:
        """Keep ``keep`` lines of ``room``'s closed batches (and not more)."""
        tail = self._tails.get(room)
        if not tail:
            return
        total = sum(batch.lines for batch in tail)
        while tail and total - tail[0].lines >= self.keep:
            total -= tail.popleft().lines
        extra = total - self.keep
        if tail and extra > 0:
            tail[0] = tail[0].after(extra)

    def recent(self, room: str, count: int) -> list[HistoryEntry]:
        """The last ``count`` lines of ``room`` (at most ``keep``), oldest first."""
        tail = self._tails.get(room)
        count = min(count, self.keep)
        if not tail or count <= 0:
            return []
        newest_first: list[HistoryEntry] = []
        for batch in reversed(tail):
            start = max(0, batch.lines - (count - len(newest_first)))
            newest_first.extend(reversed(batch.entries(room, start)))
            if len(newest_first) >= count:
                break
        return newest_first[::-1]

    def commit(self) -> Deferred[None]:
        """Write what is waiting, in one transaction."""
        if self._commit_call is not None and self._commit_call.active():
            self._commit_call.cancel()
        self._commit_call = None
        if not self._open or self._pool is None:
            return succeed(None)
        batches, self._open = self._open, {}
        topics, self._new_topics = list(self._new_topics.items()), {}
        rows: list[_Row] = []
        lines = 0
        for room, batch in batches.items():
            held = batch.lines
            last = batch.first + held - 1
            rows.append((room, batch.first, last, batch.ts, _encode(batch)))
            lines += held
            if room in self._next:  # still loaded
                self._next[room] = last + 1
                self._trim(room)
        self._writing += lines
        started = self._clock.seconds()

        def written(result: object) -> object:
            self._writing -= lines
            self.writes.wrote(self._clock.seconds() - started)
            return result

        d = self._run(_insert, rows, topics, what=f"writing {lines} lines")
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
