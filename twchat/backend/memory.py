"""
The in-process backend: one server, its state in dictionaries.

Every step happens at once and in call order, so a room's order is the
order of the calls; its Deferreds have fired before they are returned,
except ``enter`` while a room's past is read from the history file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from ..events import Action, Chat, Joined, Left, Moderated, NickChanged, Private, Topic
from ..history import History
from ..nicknames import nick_key
from ..room import room_key
from ..stats import WriteStats
from . import Entered, IBackend, IListener, Profile, RoomEvent
from .roster import Roster

__all__ = ["MemoryBackend"]


@dataclass(eq=False, slots=True)
class _Room:
    name: str
    topic: str = ""
    members: Roster = field(default_factory=Roster)


#: Without a history file nothing is written.
_NO_WRITES = WriteStats()


@implementer(IBackend)
class MemoryBackend:
    """Names, rooms and history of one process."""

    node = "local"
    up = True
    shared = False

    def __init__(self, default_room: str = "lobby", history: History | None = None):
        self.history = history
        self._default = room_key(default_room)
        self._rooms: dict[str, _Room] = {self._default: _Room(default_room)}
        #: Nickname key -> nickname, for every name held.
        self._names: dict[str, str] = {}
        self._profiles: dict[str, Profile] = {}
        #: Arrivals waiting for their room's past to be read: conn -> room.
        self._arriving: dict[str, Deferred[Entered | None]] = {}
        self._listener: IListener | None = None
        if history is not None:
            history.retain(self._default)
            history.load(self._default)

    @property
    def writes(self) -> WriteStats:
        return self.history.writes if self.history is not None else _NO_WRITES

    def probe(self) -> Deferred[float]:
        return succeed(0.0)  # the state file is the server's to probe

    def count(self) -> Deferred[int]:
        return succeed(len(self._names))

    def _tell(self, room: str, event: RoomEvent, origin: str) -> None:
        assert self._listener is not None, "started"
        self._listener.room_event(room, event, origin)

    def attach(self, listener: IListener) -> None:
        self._listener = listener

    def start(self) -> None:
        """Nothing to connect to."""

    def stop(self) -> Deferred[None]:
        if self.history is None:
            return succeed(None)
        return self.history.close()

    # Names

    def claim(self, nick: str) -> Deferred[bool]:
        key = nick_key(nick)
        if key in self._names:
            return succeed(False)
        self._names[key] = nick
        return succeed(True)

    def release(self, nick: str) -> None:
        self._names.pop(nick_key(nick), None)
        self._profiles.pop(nick_key(nick), None)

    def describe(self, profile: Profile) -> None:
        self._profiles[nick_key(profile.nick)] = profile

    def profile(self, nick: str) -> Deferred[Profile | None]:
        return succeed(self._profiles.get(nick_key(nick)))

    def takeover(self, nick: str, reason: str) -> Deferred[None]:
        # Every holder is on this node: the hub has taken them out already.
        self._names[nick_key(nick)] = nick
        return succeed(None)

    # Rooms

    def reserve(self, name: str, limit: int) -> Deferred[str | None]:
        key = room_key(name)
        room = self._rooms.get(key)
        if room is None:
            if len(self._rooms) >= limit:
                return succeed(None)
            room = self._rooms[key] = _Room(name.removeprefix("#"))
        return succeed(room.name)

    def unreserve(self, room: str) -> None:
        state = self._rooms.get(room)
        if state is not None and not state.members and room != self._default:
            del self._rooms[room]

    def enter(
        self,
        conn: str,
        nick: str,
        room: str,
        came_from: str = "",
        limit: int | None = None,
    ) -> Deferred[Entered | None]:
        key = room_key(room)
        history = self.history
        if history is None:
            return succeed(self._enter(conn, nick, room, came_from, limit))
        loading = history.load(key)
        if loading.called:
            return succeed(self._enter(conn, nick, room, came_from, limit))
        arrival: Deferred[Entered | None] = Deferred()
        self._arriving[conn] = arrival

        def loaded(_: object) -> None:
            if self._arriving.get(conn) is arrival:
                del self._arriving[conn]
                arrival.callback(self._enter(conn, nick, room, came_from, limit))
            elif key not in self._rooms or not self._rooms[key].members:
                history.release(key)

        loading.addCallback(loaded)
        return arrival

    def _enter(
        self, conn: str, nick: str, room: str, came_from: str, limit: int | None
    ) -> Entered:
        key = room_key(room)
        state = self._rooms.get(key)
        if state is None:
            # Reserved, then let go by someone else who left before entering.
            state = self._rooms[key] = _Room(room.removeprefix("#"))
        if not state.members and self.history is not None:
            self.history.retain(key)
            if not state.topic:
                # A room made again (or after a restart) has its topic back.
                state.topic = self.history.topic(key)
        state.members.add(nick_key(nick), nick)
        online = len(state.members)
        self._tell(key, Joined(nick, online, came_from), conn)
        return Entered(state.name, online, state.members.names(limit), state.topic)

    def leave(
        self,
        conn: str,
        nick: str,
        room: str,
        reason: str,
        went_to: str = "",
        free: bool = True,
    ) -> None:
        if free:
            self.release(nick)
        arrival = self._arriving.pop(conn, None)
        if arrival is not None:
            self.unreserve(room)
            arrival.callback(None)
            return
        state = self._rooms.get(room)
        key = nick_key(nick)
        if state is None or key not in state.members:
            return
        state.members.remove(key)
        self._tell(room, Left(nick, len(state.members), reason, went_to), conn)
        if not state.members:
            if self.history is not None and room != self._default:
                self.history.release(room)
            self.unreserve(room)

    def rename(self, conn: str, room: str, old: str, new: str) -> Deferred[None]:
        old_key, new_key = nick_key(old), nick_key(new)
        if old_key != new_key:
            self._names.pop(old_key, None)
        self._profiles.pop(old_key, None)
        self._names[new_key] = new
        state = self._rooms[room]
        state.members.remove(old_key)
        state.members.add(new_key, new)
        self._tell(room, NickChanged(old, new), conn)
        return succeed(None)

    # What is said

    def post(self, conn: str, room: str, kind: str, nick: str, text: str) -> None:
        # Recorded first: the live line carries its history id.
        id = 0 if self.history is None else self.history.record(room, kind, nick, text)
        event = Chat(nick, text, id) if kind == "chat" else Action(nick, text, id)
        self._tell(room, event, conn)

    def set_topic(self, conn: str, room: str, nick: str, text: str) -> Deferred[None]:
        state = self._rooms[room]
        state.topic = text
        id = 0
        if self.history is not None:
            id = self.history.record_topic(room, nick, text)
        self._tell(room, Topic(state.name, text, setter=nick, id=id), conn)
        return succeed(None)

    def moderate(self, conn: str, room: str, event: Moderated) -> Deferred[None]:
        self._tell(room, event, conn)
        return succeed(None)

    def tell(self, sender: str, target: str, text: str) -> Deferred[str | None]:
        key = nick_key(target)
        held = self._names.get(key)
        if held is None:
            return succeed(None)
        assert self._listener is not None, "started"
        self._listener.private(key, Private(sender, text))
        return succeed(held)

    # Looking around

    def roster(self, room: str) -> Deferred[tuple[str, tuple[str, ...]] | None]:
        state = self._rooms.get(room)
        if state is None:
            return succeed(None)
        return succeed((state.name, state.members.names()))

    def rooms(self) -> Deferred[list[tuple[str, int, str]]]:
        return succeed(
            [(r.name, len(r.members), r.topic) for r in self._rooms.values()]
        )
