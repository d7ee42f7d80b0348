"""
Stream entries and the events they stand for, in one place.

Every field name of an entry is defined here; the Lua scripts that
write join, leave and nick entries take them from here too.
"""

from __future__ import annotations

import json

from ...events import Action, Chat, Joined, Left, Moderated, NickChanged, Private, Topic
from .. import RoomEvent

__all__ = [
    "FIELDS",
    "KIND",
    "chat_fields",
    "decode",
    "decode_eviction",
    "decode_private",
    "eviction_fields",
    "moderated_fields",
    "private_fields",
    "topic_fields",
]

#: Field names of stream entries.
KIND = "k"
NICK = "n"
TEXT = "t"
CONN = "c"
ONLINE = "u"
CAME_FROM = "f"
REASON = "r"
WENT_TO = "w"
OLD = "o"
SENDER = "from"
TO = "to"
ACTION = "a"
TARGET = "g"
DURATION = "d"
CHANGES = "x"

#: For the Lua scripts (string.Template names).
FIELDS = {
    "KIND": KIND,
    "NICK": NICK,
    "TEXT": TEXT,
    "CONN": CONN,
    "ONLINE": ONLINE,
    "CAME_FROM": CAME_FROM,
    "REASON": REASON,
    "WENT_TO": WENT_TO,
    "OLD": OLD,
}

#: Entries that are history (joins, leaves and renames are not).
HISTORY_KINDS = frozenset({"chat", "action", "topic"})


def chat_fields(kind: str, nick: str, text: str, conn: str) -> dict[str, str]:
    """A chat line or an action (``kind``)."""
    return {KIND: kind, NICK: nick, TEXT: text, CONN: conn}


def topic_fields(nick: str, text: str, conn: str) -> dict[str, str]:
    return {KIND: "topic", NICK: nick, TEXT: text, CONN: conn}


def moderated_fields(event: Moderated, conn: str) -> dict[str, str]:
    """An operator's action; its changes as JSON."""
    return {
        KIND: "mod",
        ACTION: event.action,
        NICK: event.actor,
        TARGET: event.target,
        REASON: event.reason,
        DURATION: "" if event.duration is None else str(event.duration),
        CHANGES: json.dumps(event.changes),
        CONN: conn,
    }


def eviction_fields(to: str) -> dict[str, str]:
    """Tell a node its user ``to`` (a nickname key) logged in elsewhere."""
    return {KIND: "evict", TO: to}


def decode_eviction(fields: dict[str, str]) -> str | None:
    """The nickname key an inbox entry evicts, if it is an eviction."""
    return fields[TO] if fields.get(KIND) == "evict" else None


def private_fields(sender: str, to: str, text: str) -> dict[str, str]:
    """A private message in a node's inbox; ``to`` is a nickname key."""
    return {KIND: "msg", SENDER: sender, TO: to, TEXT: text}


def decode(
    room: str, fields: dict[str, str], id: int = 0
) -> tuple[RoomEvent, str] | None:
    """
    The event an entry of room ``room`` stands for, and its origin conn;
    ``id`` is the entry's (see ``entry_number``), for history lines.
    """
    kind = fields.get(KIND)
    origin = fields.get(CONN, "")
    event: RoomEvent
    if kind == "chat":
        event = Chat(fields[NICK], fields[TEXT], id)
    elif kind == "action":
        event = Action(fields[NICK], fields[TEXT], id)
    elif kind == "topic":
        event = Topic(room, fields[TEXT], setter=fields[NICK], id=id)
    elif kind == "join":
        event = Joined(fields[NICK], int(fields[ONLINE]), fields.get(CAME_FROM, ""))
    elif kind == "leave":
        event = Left(
            fields[NICK],
            int(fields[ONLINE]),
            fields.get(REASON, ""),
            fields.get(WENT_TO, ""),
        )
    elif kind == "nick":
        event = NickChanged(fields[OLD], fields[NICK])
    elif kind == "mod":
        duration = fields.get(DURATION, "")
        event = Moderated(
            room,
            fields[ACTION],
            fields[NICK],
            fields.get(TARGET, ""),
            fields.get(REASON, ""),
            int(duration) if duration else None,
            tuple((str(f), v) for f, v in json.loads(fields.get(CHANGES, "[]"))),
        )
    else:
        return None
    return event, origin


def decode_private(fields: dict[str, str]) -> tuple[str, Private] | None:
    """(nickname key, message) of an inbox entry, or None for a wake-up."""
    if fields.get(KIND) != "msg":
        return None
    return fields[TO], Private(fields[SENDER], fields[TEXT])
