"""History in Redis mode: the last lines of each followed room's stream."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ...history import HistoryEntry
from .codec import HISTORY_KINDS, KIND, NICK, TEXT
from .link import Entry
from .store import entry_number, entry_seconds

__all__ = ["StreamHistory"]


class StreamHistory:
    """
    The rooms' recent lines, as their streams hold them.

    Filled as the node reads each stream (and once from the stream's end
    when it starts following a room), so replay and ``/history`` answer
    from memory, show what every node shows, and join the live lines with
    no gap and no repeat.
    """

    def __init__(self, keep: int = 100) -> None:
        self.keep = keep
        # Entries kept as the stream gave them: most lines are never
        # replayed, so they become HistoryEntry (id and time parsed) only
        # when asked for.
        self._tails: dict[str, deque[Entry]] = {}

    @property
    def available(self) -> bool:
        return True

    def keeper(self, room: str) -> Callable[[Entry], None]:
        """
        What keeps an entry of ``room``'s stream that is a history line
        (its kind in ``HISTORY_KINDS``): asked once per batch read, so each
        line costs one append.
        """
        tail = self._tails.get(room)
        if tail is None:
            tail = self._tails[room] = deque(maxlen=self.keep)
        return tail.append

    def load(self, room: str, newest_first: Iterable[Entry]) -> None:
        """Start a room's tail from the end of its stream."""
        self._tails.pop(room, None)
        keep = self.keeper(room)
        for entry in reversed(list(newest_first)):
            if entry[1].get(KIND, "") in HISTORY_KINDS:
                keep(entry)

    def drop(self, room: str) -> None:
        """The node no longer follows ``room``."""
        self._tails.pop(room, None)

    def recent(self, room: str, count: int) -> list[HistoryEntry]:
        tail = self._tails.get(room)
        if not tail or count <= 0:
            return []
        return [
            HistoryEntry(
                room,
                entry_number(entry_id),
                entry_seconds(entry_id),
                fields[KIND],
                fields.get(NICK, ""),
                fields.get(TEXT, ""),
            )
            for entry_id, fields in list(tail)[-count:]
        ]
