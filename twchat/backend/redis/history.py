"""History in Redis mode: the last lines of each followed room's stream."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ...history import HistoryEntry
from .codec import HISTORY_KINDS, KIND, NICK, TEXT
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
        self._tails: dict[str, deque[tuple[str, str, str, str]]] = {}

    @property
    def available(self) -> bool:
        return True

    def add(self, room: str, entry_id: str, fields: dict[str, str]) -> None:
        """Keep a stream entry if it is a history line."""
        kind = fields.get(KIND, "")
        if kind not in HISTORY_KINDS:
            return
        tail = self._tails.get(room)
        if tail is None:
            tail = self._tails[room] = deque(maxlen=self.keep)
        # Kept raw: most lines are never replayed, so they are only turned
        # into HistoryEntry (and their time parsed) when asked for.
        tail.append((entry_id, kind, fields.get(NICK, ""), fields.get(TEXT, "")))

    def load(
        self, room: str, newest_first: Iterable[tuple[str, dict[str, str]]]
    ) -> None:
        """Start a room's tail from the end of its stream."""
        self._tails.pop(room, None)
        for entry_id, fields in reversed(list(newest_first)):
            self.add(room, entry_id, fields)

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
                kind,
                sender,
                text,
            )
            for entry_id, kind, sender, text in list(tail)[-count:]
        ]
