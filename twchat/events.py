"""
What the chat tells its users, independent of how it is put on the wire.

The hub and rooms produce these; each transport renders them its own way
(text lines for TCP, later JSON for the browser), so every transport shows
the same conversation.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Action",
    "Chat",
    "Error",
    "Event",
    "Greeting",
    "HistoryLine",
    "Joined",
    "Left",
    "Moderated",
    "NickChanged",
    "NickPrompt",
    "Notice",
    "PasswordPrompt",
    "Presence",
    "Private",
    "PrivateSent",
    "RoomInfo",
    "RoomList",
    "Topic",
    "Welcome",
]


@dataclass(frozen=True, slots=True)
class Greeting:
    """First thing a new connection hears, before it has a nickname."""

    online: int


@dataclass(frozen=True, slots=True)
class NickPrompt:
    """The server is waiting for a nickname."""


@dataclass(frozen=True, slots=True)
class PasswordPrompt:
    """
    The server is waiting for ``nick``'s password (the next line is it);
    ``new``: one is being chosen, for a new account.
    """

    nick: str
    new: bool = False


@dataclass(frozen=True, slots=True)
class Welcome:
    """You are registered, in ``room``; ``names`` may be a sample."""

    nick: str
    room: str
    online: int
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """Who is in ``room``: on entering it, or asked with /who."""

    room: str
    online: int
    names: tuple[str, ...]
    #: Which of them are its founder or operators (the page marks them).
    operators: tuple[str, ...] = ()
    #: Sent because the receiver just entered the room (not for /who).
    entered: bool = False


@dataclass(frozen=True, slots=True)
class Topic:
    """A room's topic: shown, or set by ``setter``."""

    room: str
    text: str
    setter: str = ""
    #: The history line setting it, when it is one (see ``Chat.id``).
    id: int = 0


@dataclass(frozen=True, slots=True)
class RoomList:
    """Every room: (name, users, topic)."""

    rooms: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True, slots=True)
class Chat:
    nick: str
    text: str
    #: Its place in the room's history: ids grow in the room's order, so
    #: a client that reconnects asks for the lines after the last it saw
    #: (0: the server keeps no history).
    id: int = 0


@dataclass(frozen=True, slots=True)
class Action:
    """``/me waves``."""

    nick: str
    text: str
    id: int = 0


@dataclass(frozen=True, slots=True)
class Private:
    """A private message addressed to the receiver."""

    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class PrivateSent:
    """Confirms to the sender what was delivered, and to whom."""

    target: str
    text: str


@dataclass(frozen=True, slots=True)
class Joined:
    """``nick`` came into the room (from ``came_from``, or from outside)."""

    nick: str
    online: int
    came_from: str = ""


@dataclass(frozen=True, slots=True)
class Left:
    """``nick`` left the room (for ``went_to``, or the server)."""

    nick: str
    online: int
    reason: str = ""
    went_to: str = ""


@dataclass(frozen=True, slots=True)
class Presence:
    """
    Joins and leaves in a big room, summed up over an interval.

    Above a room size, one notice per join would flood everyone (N joins
    cost N squared lines); this carries the counts and a few names.
    """

    joined: int
    joined_names: tuple[str, ...]
    left: int
    left_names: tuple[str, ...]
    online: int


@dataclass(frozen=True, slots=True)
class NickChanged:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """A line from the room's past, replayed: ``kind`` is chat, action or topic."""

    room: str
    ts: float
    kind: str
    sender: str
    text: str
    id: int = 0


@dataclass(frozen=True, slots=True)
class Notice:
    """Any other information from the server (help, goodbye, shutdown)."""

    text: str


@dataclass(frozen=True, slots=True)
class Error:
    """Something the user asked for did not happen; ``text`` says why."""

    text: str


@dataclass(frozen=True, slots=True)
class Moderated:
    """
    An operator acted in a room (``action``: kick, ban, unban, mute,
    unmute, op, deop, voice, devoice, mode, invite, founded).

    ``changes`` are what the room's moderation state became, as stored
    (``twchat.moderation.state``): each node applies them to its copy.
    """

    room: str
    action: str
    actor: str
    target: str = ""
    reason: str = ""
    #: Seconds a ban or mute lasts; None: until lifted.
    duration: int | None = None
    changes: tuple[tuple[str, str | None], ...] = ()


Event = (
    Greeting
    | NickPrompt
    | PasswordPrompt
    | Welcome
    | Chat
    | Action
    | Private
    | PrivateSent
    | Joined
    | Left
    | Presence
    | NickChanged
    | Moderated
    | RoomInfo
    | RoomList
    | Topic
    | HistoryLine
    | Notice
    | Error
)
