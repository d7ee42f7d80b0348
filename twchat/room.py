"""A room: who is in it, and delivering its lines to them in one order."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from .events import Event
from .member import Member
from .nicknames import nick_key

__all__ = ["Room"]


class Room:
    """
    The members of one conversation and its broadcast.

    Delivery is synchronous: ``broadcast`` hands the event to every member
    before it returns, so every member sees the room's events in the order
    the room accepted them.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._members: dict[str, Member] = {}

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, member: object) -> bool:
        nick = getattr(member, "nick", "")
        return self._members.get(nick_key(nick)) is member

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self._members.values()))

    def add(self, member: Member) -> None:
        self._members[nick_key(member.nick)] = member

    def remove(self, member: Member) -> None:
        key = nick_key(member.nick)
        if self._members.get(key) is member:
            del self._members[key]

    def renamed(self, member: Member, old_nick: str) -> None:
        """Follow a member's nickname change (``member.nick`` is the new one)."""
        self._members.pop(nick_key(old_nick), None)
        self._members[nick_key(member.nick)] = member

    def names(self, limit: int | None = None) -> tuple[str, ...]:
        """Members' nicknames in the order they came in, at most ``limit``."""
        members = self._members.values()
        if limit is not None:
            return tuple(m.nick for m in islice(members, limit))
        return tuple(m.nick for m in members)

    def broadcast(self, event: Event, exclude: Member | None = None) -> None:
        """Deliver ``event`` to every member but ``exclude``."""
        rendered: dict[object, bytes] = {}
        for member in self._members.values():
            if member is exclude:
                continue
            renderer = member.renderer
            data = rendered.get(renderer)
            if data is None:
                data = rendered[renderer] = renderer(event)
            member.write(data)
