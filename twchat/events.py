"""
What the chat tells its users, independent of how it is put on the wire.

The hub and rooms produce these; each transport renders them its own way
(text lines for TCP, later JSON for the browser), so every transport shows
the same conversation.
"""

from __future__ import annotations

from ._immutable import immutable

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
    "Motd",
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


@immutable
class Greeting:
    """First thing a new connection hears, before it has a nickname."""

    online: int


@immutable
class NickPrompt:
    """The server is waiting for a nickname."""


@immutable
class PasswordPrompt:
    """
    The server is waiting for ``nick``'s password (the next line is it);
    ``new``: one is being chosen, for a new account.
    """

    nick: str
    new: bool = False


@immutable
class Welcome:
    """You are registered, in ``room``; ``names`` may be a sample."""

    nick: str
    room: str
    online: int
    names: tuple[str, ...]


@immutable
class RoomInfo:
    """Who is in ``room``: on entering it, or asked with /who."""

    room: str
    online: int
    names: tuple[str, ...]
    #: Which of them are its founder or operators (the page marks them;
    #: the text wire names them after /who's list).
    operators: tuple[str, ...] = ()
    #: Sent because the receiver just entered the room (not for /who).
    entered: bool = False


@immutable
class Topic:
    """A room's topic: shown, or set by ``setter``."""

    room: str
    text: str
    setter: str = ""
    #: The history line setting it, when it is one (see ``Chat.id``).
    id: int = 0


@immutable
class RoomList:
    """Every room: (name, users, topic)."""

    rooms: tuple[tuple[str, int, str], ...]


@immutable
class Chat:
    nick: str
    text: str
    #: Its place in the room's history: ids grow in the room's order, so
    #: a client that reconnects asks for the lines after the last it saw
    #: (0: the server keeps no history).
    id: int = 0


@immutable
class Action:
    """``/me waves``."""

    nick: str
    text: str
    id: int = 0


@immutable
class Private:
    """A private message addressed to the receiver."""

    sender: str
    text: str


@immutable
class PrivateSent:
    """Confirms to the sender what was delivered, and to whom."""

    target: str
    text: str


@immutable
class Joined:
    """``nick`` came into the room (from ``came_from``, or from outside)."""

    nick: str
    online: int
    came_from: str = ""


@immutable
class Left:
    """``nick`` left the room (for ``went_to``, or the server)."""

    nick: str
    online: int
    reason: str = ""
    went_to: str = ""


@immutable
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


@immutable
class NickChanged:
    old: str
    new: str


@immutable
class HistoryLine:
    """A line from the room's past, replayed: ``kind`` is chat, action or topic."""

    room: str
    ts: float
    kind: str
    sender: str
    text: str
    id: int = 0


@immutable
class Notice:
    """Any other information from the server (help, goodbye, shutdown)."""

    text: str


@immutable
class Motd:
    """The server's message of the day (``--motd``): rules, news, links."""

    lines: tuple[str, ...]


@immutable
class Error:
    """Something the user asked for did not happen; ``text`` says why."""

    text: str
    #: It was the user's own line (chat, action, private message) that did
    #: not go out: a client may give it back to be edited and sent again.
    unsent: bool = False


@immutable
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
    | Motd
    | Error
)
