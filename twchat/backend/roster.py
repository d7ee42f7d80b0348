"""Who is in a room, kept in the order a newcomer's welcome lists them."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping

__all__ = ["Roster"]


class Roster:
    """
    Nickname key -> nickname of a room's members, and their keys sorted.

    Both backends keep one per room (the Redis one per room it follows), so
    a crowd's arrival costs each newcomer a few names, not a sort of the room.
    """

    __slots__ = ("_first", "_first_limit", "members", "order")

    def __init__(self, members: Mapping[str, str] | None = None) -> None:
        #: Nickname key -> nickname, in the order they came in.
        self.members: dict[str, str] = dict(members or {})
        #: Their keys, sorted (plain string order; bisect keeps it so).
        self.order: list[str] = sorted(self.members)
        # The first names as last listed, and how many were asked for: in a
        # crowd's arrival every welcome lists the same few, and looking them
        # up anew in a big room was a tenth of the nickname line's time.
        self._first: tuple[str, ...] | None = None
        self._first_limit = 0

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, key: object) -> bool:
        return key in self.members

    def add(self, key: str, nick: str) -> None:
        """``nick`` (whose key is ``key``) is in; a new spelling replaces the old."""
        order = self.order
        at = bisect_left(order, key)
        if key not in self.members:
            order.insert(at, key)
        self.members[key] = nick
        self._changed(at)

    def remove(self, key: str) -> None:
        if self.members.pop(key, None) is not None:
            at = bisect_left(self.order, key)
            del self.order[at]
            self._changed(at)

    def _changed(self, at: int) -> None:
        """``order`` changed at ``at``: among the first names, list them anew."""
        if at < self._first_limit:
            self._first = None

    def names(self, limit: int | None = None) -> tuple[str, ...]:
        """The members' nicknames in key order (the first ``limit``)."""
        if limit is not None and self._first is not None and self._first_limit == limit:
            return self._first
        keys = self.order if limit is None else self.order[:limit]
        members = self.members
        names = tuple([members[key] for key in keys])
        if limit is not None:
            self._first, self._first_limit = names, limit
        return names
