"""A room: who is in it, and delivering its lines to them in one order."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .events import Event, Joined, Left, Presence
from .member import Member, Outlet
from .nicknames import nick_key
from .stats import Stats
from .wire import Renderer

__all__ = [
    "HOLD_LIMIT",
    "MAX_ROOM_NAME",
    "HandOut",
    "Later",
    "PresencePolicy",
    "Room",
    "room_error",
    "room_key",
]

MAX_ROOM_NAME = 32
_ROOM_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ROOM_NAME}}}")


def room_key(name: str) -> str:
    """The identity of a room name: ``#Games`` and ``games`` are one room."""
    return name.removeprefix("#").lower()


def room_error(name: str) -> str | None:
    """Say why ``name`` cannot name a room, or ``None`` if it can."""
    bare = name.removeprefix("#")
    if not bare:
        return "room name cannot be empty"
    if len(bare) > MAX_ROOM_NAME:
        return f"room name is too long (max {MAX_ROOM_NAME} characters)"
    if not _ROOM_NAME.fullmatch(bare):
        return "room names may contain only letters, digits, '-' and '_'"
    return None


#: How many names a presence summary lists before "and N more".
SUMMARY_NAMES = 5

#: The most bytes a room keeps for a member not yet shown it (``Room.add``
#: with ``held``), as much as a client's send queue holds by default: past
#: that, what waits goes out in its order, ahead of the roll call, rather
#: than grow (the wait is a read from the state store; it seldom lasts).
HOLD_LIMIT = 256 * 1024

#: Runs a piece of work once this reactor turn's lines have all been
#: handled (the server's ``Flusher.later``: just before the outboxes send).
Later = Callable[[Callable[[], None]], object]

#: Gives the same bytes to many members' outboxes at the turn's end (the
#: server's ``Flusher.hand_out``: one loop, not a call per receiver).
HandOut = Callable[[Sequence[Outlet], bytes], None]


def _write_each(outlets: Sequence[Outlet], data: bytes) -> None:
    for outlet in outlets:
        outlet.write(data)


#: One line of a turn: the event, who said it (not told), who ignores them.
_Line = tuple[Event, "Member | None", "frozenset[Member] | None"]


@dataclass(frozen=True, slots=True)
class PresencePolicy:
    """
    When joins and leaves are announced one by one, and when summed up.

    In a room of more than ``batch_above`` people, joins and leaves are
    collected and announced as one summary line every ``interval`` seconds:
    when thousands join, a notice per join would cost everyone N lines and
    the server N squared.
    """

    batch_above: int = 100
    interval: float = 5.0


class Room:
    """
    The members of one conversation and its broadcast.

    A turn's lines are kept in the order the room accepted them and handed
    to each member once, when the turn ends: every member gets one chunk of
    bytes per turn, the same object for all who get every line, however
    many lines were said. (Python work per line per receiver was the whole
    cost of a busy room.) Anything else sent to a member first catches it up
    on the room's lines (``catch_up``), so nothing overtakes them.
    """

    def __init__(
        self,
        name: str,
        clock: IReactorTime,
        presence: PresencePolicy | None = None,
        stats: Stats | None = None,
        later: Later | None = None,
        hand_out: HandOut | None = None,
    ) -> None:
        self.name = name.removeprefix("#")
        self._stats = stats if stats is not None else Stats()
        self._later: Later = later or (lambda work: clock.callLater(0, work))
        self._hand_out: HandOut = hand_out or _write_each
        #: This turn's lines, not yet delivered.
        self._turn: list[_Line] = []
        #: Each renderer's bytes for the lines of this turn rendered so far.
        self._rendered: dict[object, list[bytes]] = {}
        #: Members who have had this turn's lines up to an index already
        #: (caught up before something else, or come in during the turn).
        self._given: dict[Member, int] = {}
        #: Members some line of this turn is not for (sender, ignorers).
        self._skipping: set[Member] = set()
        #: Members in, but not yet shown the room (their roll call waits on
        #: something): the lines for them, kept until they are.
        self._held: dict[Member, bytearray] = {}
        #: The room's identity (see ``room_key``), computed once.
        self.key = room_key(self.name)
        self.topic = ""
        self._clock = clock
        self.presence = presence if presence is not None else PresencePolicy()
        self._members: dict[str, Member] = {}
        #: The same members' outlets, by the renderer their lines take: a
        #: turn's lines go to each such group in one call, with no Python
        #: step per receiver (kept in step by add, remove, renderer_changed).
        self._outlets: dict[Renderer, dict[Member, Outlet]] = {}
        #: People in the room on every node, as of the last event read
        #: (this process's members are some of them).
        self.online = 0
        #: Members of this process on their way in (not members yet).
        self.arriving = 0
        self._joined: list[str] = []
        self._left: list[str] = []
        self._summary: IDelayedCall | None = None
        #: Sender's nickname key -> the members here ignoring them.
        self.ignoring: dict[str, set[Member]] = {}
        #: And the other way round: whom each of them ignores.
        self._ignores_of: dict[Member, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, member: object) -> bool:
        nick = getattr(member, "nick", "")
        return self._members.get(nick_key(nick)) is member

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self._members.values()))

    def add(self, member: Member, held: bool = False) -> None:
        """
        ``member`` is in; if ``held``, the room's lines for them are kept
        until ``release``: whatever they are sent before (the roll call,
        the room's past) goes first.
        """
        key = nick_key(member.nick)
        before = self._members.get(key)
        if before is not None and before is not member:
            self._unindex(before)
        self._members[key] = member
        self._index(member)
        if self._turn:
            # Lines said before they came in are not theirs.
            self._given[member] = len(self._turn)
        if held:
            self._held[member] = bytearray()

    def release(self, member: Member) -> None:
        """``member`` was shown the room: the lines kept for them follow."""
        self.catch_up(member)
        kept = self._held.pop(member, None)
        if kept:
            member.outbox.write(bytes(kept))

    def _hold_or_write(self, member: Member, data: bytes) -> None:
        """``data`` for ``member``: kept if they are held, else written."""
        kept = self._held.get(member)
        if kept is None:
            member.outbox.write(data)
        elif len(kept) + len(data) <= HOLD_LIMIT:
            kept += data
        else:
            # Held too long for memory's sake: it flows, in its order.
            del self._held[member]
            member.outbox.write(bytes(kept) + data)

    def remove(self, member: Member) -> None:
        key = nick_key(member.nick)
        if self._members.get(key) is member:
            # What was said before they left is theirs.
            self.catch_up(member)
            del self._members[key]
            self._unindex(member)
        self._given.pop(member, None)
        # Unless they never saw the room (gone before their roll call).
        self._held.pop(member, None)
        if self._ignores_of:
            self.set_ignores(member, ())

    def renderer_changed(self, member: Member) -> None:
        """``member`` renders differently from now on (``/ids``)."""
        if member in self:
            # This turn's lines too: they are rendered at its end.
            self._unindex(member)
            self._index(member)

    def _index(self, member: Member) -> None:
        self._outlets.setdefault(member.renderer, {})[member] = member.outbox

    def _unindex(self, member: Member) -> None:
        # Wherever it is: its renderer may have changed since it was put in.
        for renderer, outlets in list(self._outlets.items()):
            if outlets.pop(member, None) is not None and not outlets:
                del self._outlets[renderer]

    def set_ignores(self, member: Member, senders: Iterable[str]) -> None:
        """``member`` ignores these nickname keys (and no others) from now on."""
        for key in self._ignores_of.pop(member, ()):
            deaf = self.ignoring.get(key)
            if deaf is not None:
                deaf.discard(member)
                if not deaf:
                    del self.ignoring[key]
        keys = tuple(senders)
        if keys:
            self._ignores_of[member] = keys
        for key in keys:
            self.ignoring.setdefault(key, set()).add(member)

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

    def broadcast(
        self,
        event: Event,
        exclude: Member | None = None,
        deaf: set[Member] | None = None,
    ) -> None:
        """
        Say ``event`` to every member but ``exclude`` and the ``deaf``, in
        the room's order; it reaches them when the turn ends.
        """
        turn = self._turn
        if not turn:
            self._later(self.deliver_turn)
        skipped = None
        if deaf:
            # A copy: the ignore list may change before the turn ends.
            skipped = frozenset(deaf)
            self._skipping.update(skipped)
        if exclude is not None:
            self._skipping.add(exclude)
        turn.append((event, exclude, skipped))

    def deliver_turn(self) -> None:
        """
        Hand each member this turn's lines, one write each: those who get
        them all, together, for each renderer (``hand_out``).
        """
        turn = self._turn
        if not turn:
            return
        count = len(turn)
        given = self._given
        # Those some line is not for, or who have had some lines already,
        # or are held, take the slow way; everyone else gets every line.
        special = self._skipping.union(given)
        held = self._held
        if held:
            special.update(held)
        delivered = 0
        indexed = self._outlets
        try:
            for member in special:
                group = indexed.get(member.renderer)
                if group is None or member not in group:
                    continue  # said a line, then left
                data = self._lines_for(member, given.get(member, 0))
                if data:
                    self._hold_or_write(member, data)
            for renderer, outlets in indexed.items():
                if special:
                    outlets = outlets.copy()
                    for member in special:
                        outlets.pop(member, None)
                if outlets:
                    delivered += count * len(outlets)
                    every = b"".join(self._rendering(renderer))
                    self._hand_out(list(outlets.values()), every)
        finally:
            # Whatever happened, the next line starts a new turn: a turn
            # left behind would never be handed out, and the room go silent.
            self._stats.deliveries += delivered
            self._turn, self._rendered, self._given = [], {}, {}
            self._skipping = set()

    def catch_up(self, member: Member) -> None:
        """Before anything else is sent to ``member``: its lines so far."""
        if not self._turn or member not in self:
            return
        data = self._lines_for(member, self._given.get(member, 0))
        self._given[member] = len(self._turn)
        if data:
            self._hold_or_write(member, data)

    def _rendering(self, renderer: Callable[[Event], bytes]) -> list[bytes]:
        """This turn's lines as ``renderer`` puts them, each rendered once."""
        lines = self._rendered.setdefault(renderer, [])
        for event, _, _ in self._turn[len(lines) :]:
            lines.append(renderer(event))
        return lines

    def _lines_for(self, member: Member, start: int) -> bytes:
        """The lines of this turn from ``start`` on that are for ``member``."""
        lines = self._rendering(member.renderer)
        mine = [
            data
            for (_, exclude, deaf), data in zip(
                self._turn[start:], lines[start:], strict=True
            )
            if exclude is not member and not (deaf and member in deaf)
        ]
        self._stats.deliveries += len(mine)
        return b"".join(mine)

    # Presence: joins and leaves, one by one or summed up.

    def announce_join(self, event: Joined, exclude: Member | None = None) -> None:
        """Tell the room (but ``exclude``, the newcomer) someone came in."""
        self.online = event.online
        if event.online > self.presence.batch_above:
            self._batch(self._joined, event.nick)
        else:
            self.broadcast(event, exclude=exclude)

    def announce_leave(self, event: Left) -> None:
        """Tell the room that someone (no longer a member) has gone."""
        self.online = event.online
        if event.online >= self.presence.batch_above:
            self._batch(self._left, event.nick)
        else:
            self.broadcast(event)

    def _batch(self, names: list[str], nick: str) -> None:
        names.append(nick)
        if self._summary is None:
            self._summary = self._clock.callLater(
                self.presence.interval, self.flush_presence
            )

    def stop(self) -> None:
        """The server is going away: what was said goes out, summaries not."""
        self.deliver_turn()
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
        self._summary = None
        self._joined, self._left = [], []

    def flush_presence(self) -> None:
        """Announce the joins and leaves collected so far, if any."""
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
        self._summary = None
        joined, self._joined = self._joined, []
        left, self._left = self._left, []
        if joined or left:
            self.broadcast(
                Presence(
                    len(joined),
                    tuple(joined[:SUMMARY_NAMES]),
                    len(left),
                    tuple(left[:SUMMARY_NAMES]),
                    self.online,
                )
            )
