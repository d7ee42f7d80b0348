"""
The browser's wire format: each event as one line of JSON.

Rendered from the same events as the text lines, so a browser user and an
``nc`` user see the same conversation. Each event is one JSON object with
a ``type``; several may share one WebSocket message, one per line.
"""

from __future__ import annotations

import json
from dataclasses import fields

from .events import (
    Action,
    Chat,
    Error,
    Event,
    Greeting,
    HistoryLine,
    Joined,
    Left,
    Moderated,
    Motd,
    NickChanged,
    NickPrompt,
    Notice,
    PasswordPrompt,
    Presence,
    Private,
    PrivateSent,
    RoomInfo,
    RoomList,
    Topic,
    Welcome,
)
from .wire import moderation_text

__all__ = ["TYPES", "render_json"]

#: The ``type`` of each event in JSON; the other keys are its fields.
TYPES: dict[type, str] = {
    Greeting: "greeting",
    NickPrompt: "prompt",
    PasswordPrompt: "password_prompt",
    Welcome: "registered",
    Chat: "chat",
    Action: "action",
    Private: "private",
    PrivateSent: "private_sent",
    Joined: "joined",
    Left: "left",
    Presence: "presence",
    NickChanged: "nick",
    Moderated: "moderation",
    RoomInfo: "who",
    Topic: "topic",
    RoomList: "rooms",
    HistoryLine: "history",
    Notice: "notice",
    Motd: "motd",
    Error: "error",
}

#: What a node applies to its copy of a room's state is not the browser's.
_INTERNAL = {"changes"}
_FIELDS = {
    kind: tuple(f.name for f in fields(kind) if f.name not in _INTERNAL)
    for kind in TYPES
}


def _value(value: object) -> object:
    if isinstance(value, tuple):
        return [_value(item) for item in value]
    return value


def render_json(event: Event) -> bytes:
    """One event as a line of JSON (UTF-8, newline-terminated)."""
    kind = type(event)
    payload: dict[str, object] = {"type": TYPES[kind]}
    for name in _FIELDS[kind]:
        payload[name] = _value(getattr(event, name))
    if isinstance(event, Moderated):
        # The sentence, written once (wire.py), beside the fields.
        payload["text"] = moderation_text(event)
    elif isinstance(event, RoomList):
        payload["rooms"] = [
            {"name": name, "users": users, "topic": topic}
            for name, users, topic in event.rooms
        ]
    return (
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    )
