"""
What a line from the server is, and how it looks on a terminal.

Every line is cleaned before it reaches the terminal, even though the
server cleans what it relays: a compromised or impostor server must not be
able to drive the user's terminal either.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import Enum

from ..text import clean_text
from ..wire import MODERATION_PHRASES

__all__ = ["Kind", "Line", "classify", "style_for"]


class Kind(Enum):
    CHAT = "chat"
    OWN = "own"
    ACTION = "action"
    PRIVATE = "private"
    PRIVATE_SENT = "private-sent"
    NOTICE = "notice"
    ERROR = "error"
    PROMPT = "prompt"
    HISTORY = "history"
    CLIENT = "client"  # said by this client, not the server
    MODERATION = "moderation"  # kicks, bans, mutes


@dataclass(frozen=True)
class Line:
    kind: Kind
    text: str
    mentions_me: bool = False

    def plain(self, timestamps: bool = False, now: float | None = None) -> str:
        stamp = time.strftime("[%H:%M] ", time.localtime(now)) if timestamps else ""
        return stamp + self.text


_PRIVATE = re.compile(r"\*[^*\s]+\* ")


def classify(raw: str, my_nick: str = "") -> Line:
    """Turn one received line into a cleaned, classified ``Line``."""
    text = clean_text(raw)
    if text.startswith("<"):
        kind = Kind.CHAT
    elif text.startswith("*** "):
        kind = Kind.NOTICE
    elif text.startswith("-> *"):
        kind = Kind.PRIVATE_SENT
    elif _PRIVATE.match(text):
        kind = Kind.PRIVATE
    elif text.startswith("* "):
        kind = Kind.ACTION
    elif text.startswith("! "):
        kind = Kind.ERROR
    elif text.startswith("? "):
        kind = Kind.PROMPT
    elif text.startswith("["):
        kind = Kind.HISTORY
    else:
        kind = Kind.NOTICE
    if kind in (Kind.NOTICE, Kind.ERROR) and any(
        phrase in text for phrase in MODERATION_PHRASES
    ):
        kind = Kind.MODERATION
    mentions = False
    if my_nick and kind in (Kind.CHAT, Kind.ACTION, Kind.PRIVATE):
        body = text.split(" ", 1)[1] if " " in text else ""
        mentions = (
            re.search(
                rf"(?<![\w\-\[\]{{}}|^`]){re.escape(my_nick)}(?![\w\-\[\]{{}}|^`])",
                body,
                re.IGNORECASE,
            )
            is not None
        )
    return Line(kind, text, mentions)


_STYLES = {
    Kind.CHAT: "",
    Kind.OWN: "ansicyan",
    Kind.ACTION: "ansimagenta",
    Kind.PRIVATE: "ansiyellow bold",
    Kind.PRIVATE_SENT: "ansiyellow",
    Kind.NOTICE: "ansigreen",
    Kind.ERROR: "ansired bold",
    Kind.PROMPT: "ansiblue bold",
    Kind.HISTORY: "ansibrightblack",
    Kind.CLIENT: "ansibrightblack italic",
    Kind.MODERATION: "ansired",
}


def style_for(line: Line) -> str:
    """A prompt_toolkit style string for ``line``."""
    if line.mentions_me:
        return "reverse bold"
    return _STYLES[line.kind]
