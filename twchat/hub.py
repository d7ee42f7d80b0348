"""
The chat itself: who is online under which name, and what they say.

The hub knows nothing about sockets. Every transport (TCP lines today,
WebSocket later) registers its users here and calls the same methods, so
the rules are the same for everyone.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .events import (
    Action,
    Chat,
    Error,
    Greeting,
    NickChanged,
    NickPrompt,
    Private,
    PrivateSent,
    Welcome,
    Who,
)
from .member import Member
from .nicknames import nick_error, nick_key
from .room import PresencePolicy, Room
from .text import clean_text

__all__ = ["Hub"]

#: How many names the welcome line lists before "and N more".
WELCOME_NAMES = 30

_NOTHING_LEFT = "nothing left to send once control characters were removed"


class Hub:
    """The shared user map (nickname -> member) and the room they talk in."""

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        presence: PresencePolicy | None = None,
        room_name: str = "lobby",
    ) -> None:
        self.users: dict[str, Member] = {}
        self.room = Room(room_name, clock, presence)
        #: Set while the server shuts down: people leave without notices.
        self.closing = False

    def close(self) -> None:
        """The server is stopping: no more notices, no more newcomers."""
        self.closing = True
        self.room.stop()

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

    def register(self, member: Member, nick: str) -> bool:
        """
        Give ``member`` the nickname ``nick`` and bring them into the room.

        On refusal the member is told why and asked again.
        """
        error = self._name_error(nick, member)
        if error is not None:
            member.send(Error(error))
            member.send(NickPrompt())
            return False
        member.nick = nick
        self.users[nick_key(nick)] = member
        self.room.add(member)
        self.log.info("{nick} joined from {peer}", nick=nick, peer=member.peer)
        member.send(Welcome(nick, len(self.room), self.room.names(WELCOME_NAMES)))
        self.room.announce_join(member)
        return True

    def leave(self, member: Member, reason: str = "") -> None:
        """Take a registered member out; everyone else is told why."""
        if self.users.get(nick_key(member.nick)) is not member:
            return
        del self.users[nick_key(member.nick)]
        self.room.remove(member)
        reason = clean_text(reason)
        self.log.info("{nick} left: {reason}", nick=member.nick, reason=reason)
        if not self.closing:
            self.room.announce_leave(member.nick, reason)

    def rename(self, member: Member, new: str) -> None:
        old = member.nick
        if new == old:
            member.send(Error(f"you are already called {old}"))
            return
        error = self._name_error(new, member)
        if error is not None:
            member.send(Error(error))
            return
        del self.users[nick_key(old)]
        member.nick = new
        self.users[nick_key(new)] = member
        self.room.renamed(member, old)
        self.log.info("{old} is now known as {new}", old=old, new=new)
        self.room.broadcast(NickChanged(old, new))

    def say(self, member: Member, text: str) -> None:
        """Relay a chat line to everyone else in the room (no echo)."""
        text = clean_text(text)
        if not text:
            member.send(Error(_NOTHING_LEFT))
            return
        self.room.broadcast(Chat(member.nick, text), exclude=member)

    def act(self, member: Member, text: str) -> None:
        text = clean_text(text)
        if not text:
            member.send(Error("usage: /me ACTION"))
            return
        self.room.broadcast(Action(member.nick, text), exclude=member)

    def tell(self, member: Member, target: str, text: str) -> None:
        """A private message: only ``target`` receives it."""
        receiver = self.find(target)
        if receiver is None:
            member.send(Error(f"no such user: {clean_text(target)}"))
            return
        if receiver is member:
            member.send(Error("you cannot send a private message to yourself"))
            return
        text = clean_text(text)
        if not text:
            member.send(Error(_NOTHING_LEFT))
            return
        receiver.send(Private(member.nick, text))
        member.send(PrivateSent(receiver.nick, text))

    def who(self, member: Member) -> None:
        names = sorted(self.room.names(), key=nick_key)
        member.send(Who(tuple(names)))
