"""
The chat itself: who is online under which name, and what they say.

The hub knows nothing about sockets. Every transport (TCP lines today,
WebSocket later) registers its users here and calls the same methods, so
the rules are the same for everyone.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .events import (
    Action,
    Chat,
    Error,
    Greeting,
    HistoryLine,
    NickChanged,
    NickPrompt,
    Notice,
    Private,
    PrivateSent,
    RoomInfo,
    RoomList,
    Topic,
    Welcome,
)
from .history import RoomHistory
from .member import Member
from .nicknames import nick_error, nick_key
from .room import PresencePolicy, Room, room_error, room_key
from .text import clean_text

__all__ = ["Hub", "Waiting"]

#: What an action returns: None once done, or a Deferred that fires when
#: it is (Redis mode); the user's next lines wait for it, keeping their order.
Waiting = Deferred[None] | None

#: How many names the welcome line lists before "and N more".
WELCOME_NAMES = 30

_NOTHING_LEFT = "nothing left to send once control characters were removed"


class Hub:
    """
    The shared user map (nickname -> member) and the room map.

    Every registered member is in exactly one room, ``member.room``.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        presence: PresencePolicy | None = None,
        default_room: str = "lobby",
        max_rooms: int = 100,
        history: RoomHistory | None = None,
        history_replay: int = 20,
    ) -> None:
        self.users: dict[str, Member] = {}
        #: The rooms' past (None: --no-history); replayed on entering a room.
        self.history = history
        self.history_replay = history_replay
        self._clock = clock
        self._presence = presence
        self.max_rooms = max_rooms
        self.rooms: dict[str, Room] = {}
        #: Where everyone starts, and where /part leads; it never disappears.
        self.default_room = self._create(default_room)
        #: Set while the server shuts down: people leave without notices.
        self.closing = False

    def _create(self, name: str) -> Room:
        room = Room(name, self._clock, self._presence)
        self.rooms[room_key(name)] = room
        return room

    def _vacate(self, room: Room) -> None:
        """A room nobody is in disappears, except the default room."""
        if not len(room) and room is not self.default_room:
            room.stop()
            self.rooms.pop(room_key(room.name), None)

    def close(self) -> None:
        """The server is stopping: no more notices, no more newcomers."""
        self.closing = True
        for room in self.rooms.values():
            room.stop()

    def start(self) -> None:
        """Called when the server starts; a single process has nothing to do."""

    def stop(self) -> Deferred[None]:
        """After the goodbyes: let what was said reach the disk."""
        if self.history is None:
            return succeed(None)
        return self.history.close()

    @property
    def online(self) -> int:
        return len(self.users)

    def find(self, nick: str) -> Member | None:
        return self.users.get(nick_key(nick))

    def greet(self, member: Member) -> None:
        """Say hello to a new connection and ask for its nickname."""
        member.send(Greeting(self.online))
        member.send(NickPrompt())

    def _name_error(self, nick: str, member: Member) -> str | None:
        error = nick_error(nick)
        if error is None:
            holder = self.find(nick)
            if holder is not None and holder is not member:
                error = f"nickname {nick} is already taken"
        return error

    def register(self, member: Member, nick: str) -> Waiting:
        """
        Give ``member`` the nickname ``nick`` and bring them into the room.

        On refusal the member is told why and asked again.
        """
        error = self._name_error(nick, member)
        if error is not None:
            member.send(Error(error))
            member.send(NickPrompt())
            return None
        return self._admit(member, nick)

    def _admit(self, member: Member, nick: str) -> Waiting:
        """Register a nickname that passed the checks; enter the default room."""
        member.nick = nick
        self.users[nick_key(nick)] = member
        room = self.default_room
        room.add(member)
        member.room = room
        self.log.info("{nick} joined from {peer}", nick=nick, peer=member.peer)
        member.send(Welcome(nick, room.name, len(room), room.names(WELCOME_NAMES)))
        self._entered(member, room)
        return None

    def _entered(self, member: Member, room: Room, came_from: str = "") -> None:
        """After the room's roll call: its topic, its recent past, then live."""
        if room.topic:
            member.send(Topic(room.name, room.topic))
        self._replay(member, room, self.history_replay)
        room.announce_join(member.nick, came_from, exclude=member)

    def _replay(self, member: Member, room: Room, count: int) -> None:
        """
        Send the room's last ``count`` lines as history.

        From memory and synchronously, right before the member starts
        receiving the room's live lines: nothing twice, nothing missing.
        """
        history = self.history
        if history is None or not history.available:
            return
        for entry in history.recent(room.key, count):
            member.send(
                HistoryLine(room.name, entry.ts, entry.kind, entry.sender, entry.text)
            )

    def _record(self, room: Room, kind: str, sender: str, text: str) -> None:
        if self.history is not None:
            self.history.record(room.key, kind, sender, text)

    def show_history(self, member: Member, count: int) -> Waiting:
        """``/history [N]``: the last N lines of your room."""
        room = self._room_of(member)
        history = self.history
        if history is None:
            member.send(Error("history is turned off on this server"))
            return None
        if not history.available:
            member.send(Error("history is unavailable right now"))
            return None
        count = min(count, history.keep)
        if not history.recent(room.key, 1):
            member.send(Notice(f"No history in #{room.name} yet"))
            return None
        self._replay(member, room, count)
        return None

    def leave(self, member: Member, reason: str = "") -> None:
        """Take a registered member out; everyone else is told why."""
        if self.users.get(nick_key(member.nick)) is not member:
            return
        del self.users[nick_key(member.nick)]
        room = member.room
        reason = clean_text(reason)
        self.log.info("{nick} left: {reason}", nick=member.nick, reason=reason)
        if room is None:
            return
        room.remove(member)
        member.room = None
        if not self.closing:
            room.announce_leave(member.nick, reason)
            self._vacate(room)

    def rename(self, member: Member, new: str) -> Waiting:
        old = member.nick
        if new == old:
            member.send(Error(f"you are already called {old}"))
            return None
        error = self._name_error(new, member)
        if error is not None:
            member.send(Error(error))
            return None
        return self._rename(member, old, new)

    def _rename(self, member: Member, old: str, new: str) -> Waiting:
        """Change a nickname that passed the checks; the room is told."""
        del self.users[nick_key(old)]
        member.nick = new
        self.users[nick_key(new)] = member
        room = self._room_of(member)
        room.renamed(member, old)
        self.log.info("{old} is now known as {new}", old=old, new=new)
        room.broadcast(NickChanged(old, new))
        return None

    def say(self, member: Member, text: str) -> Waiting:
        """Relay a chat line to everyone else in the room (no echo)."""
        return self._line(member, "chat", text, _NOTHING_LEFT)

    def act(self, member: Member, text: str) -> Waiting:
        return self._line(member, "action", text, "usage: /me ACTION")

    def _line(self, member: Member, kind: str, text: str, empty: str) -> Waiting:
        text = clean_text(text)
        if not text:
            member.send(Error(empty))
            return None
        return self._post(member, kind, text)

    def _post(self, member: Member, kind: str, text: str) -> Waiting:
        """Deliver a cleaned chat line or action to the member's room."""
        room = self._room_of(member)
        event = Chat(member.nick, text) if kind == "chat" else Action(member.nick, text)
        room.broadcast(event, exclude=member)
        self._record(room, kind, member.nick, text)
        return None

    def tell(self, member: Member, target: str, text: str) -> Waiting:
        """A private message: only ``target`` receives it."""
        receiver = self.find(target)
        if receiver is member:
            member.send(Error("you cannot send a private message to yourself"))
            return None
        text = clean_text(text)
        if not text:
            member.send(Error(_NOTHING_LEFT))
            return None
        if receiver is None:
            return self._tell_elsewhere(member, target, text)
        receiver.send(Private(member.nick, text))
        member.send(PrivateSent(receiver.nick, text))
        return None

    def _tell_elsewhere(self, member: Member, target: str, text: str) -> Waiting:
        """``target`` is not connected here (nor, on one process, anywhere)."""
        member.send(Error(f"no such user: {clean_text(target)}"))
        return None

    def _room_of(self, member: Member) -> Room:
        room = member.room
        assert room is not None, "registered members are always in a room"
        return room

    def _describe(self, member: Member, room: Room) -> None:
        """Tell ``member`` who is in ``room``, and its topic."""
        names = sorted(room.names(), key=nick_key)
        member.send(RoomInfo(room.name, len(room), tuple(names)))

    def who(self, member: Member, name: str = "") -> Waiting:
        """Who is in your room, or in the room called ``name``."""
        room = self._room_of(member)
        if name:
            found = self.rooms.get(room_key(name))
            if found is None:
                self._no_such_room(member, name)
                return None
            room = found
        self._describe(member, room)
        return None

    def _no_room_left(self, member: Member) -> None:
        member.send(
            Error(f"too many rooms (max {self.max_rooms}); join one that exists")
        )

    def _no_such_room(self, member: Member, name: str) -> None:
        member.send(Error(f"no such room: #{clean_text(name)[:40]}"))

    def join(self, member: Member, name: str) -> Waiting:
        """Move ``member`` to the room ``name``, creating it if need be."""
        error = room_error(name)
        if error is not None:
            member.send(Error(error))
            return None
        here = self._room_of(member)
        if room_key(name) == here.key:
            member.send(Error(f"you are already in #{here.name}"))
            return None
        return self._move(member, here, name)

    def _log_topic(self, member: Member, room: Room) -> None:
        self.log.info(
            "{nick} set the topic of #{room}", nick=member.nick, room=room.name
        )

    def _move(self, member: Member, here: Room, name: str) -> Waiting:
        """Take ``member`` from ``here`` to a valid other room ``name``."""
        target = self.rooms.get(room_key(name))
        if target is None:
            if len(self.rooms) >= self.max_rooms:
                self._no_room_left(member)
                return None
            target = self._create(name)
        here.remove(member)
        here.announce_leave(member.nick, went_to=target.name)
        self._vacate(here)
        target.add(member)
        member.room = target
        self._describe(member, target)
        self._entered(member, target, came_from=here.name)
        return None

    def part(self, member: Member) -> Waiting:
        """Back to the default room."""
        if self._room_of(member) is self.default_room:
            member.send(Error(f"you are already in #{self.default_room.name}"))
            return None
        return self.join(member, self.default_room.name)

    def list_rooms(self, member: Member) -> Waiting:
        rooms = sorted(self.rooms.values(), key=lambda room: room_key(room.name))
        member.send(RoomList(tuple((r.name, len(r), r.topic) for r in rooms)))
        return None

    def topic(self, member: Member, text: str) -> Waiting:
        """Show your room's topic, or set it (everyone in the room is told)."""
        room = self._room_of(member)
        if not text.strip():
            member.send(Topic(room.name, room.topic))
            return None
        text = clean_text(text)
        if not text:
            member.send(Error(_NOTHING_LEFT))
            return None
        return self._set_topic(member, room, text)

    def _set_topic(self, member: Member, room: Room, text: str) -> Waiting:
        self._log_topic(member, room)
        room.topic = text
        room.broadcast(Topic(room.name, text, setter=member.nick))
        self._record(room, "topic", member.nick, text)
        return None
