"""
Who the terminal client has seen, for completing nicknames with Tab.

Read from the lines the server sends (``twchat/wire.py`` writes them):
the roll call on entering a room or a ``/who``, joins, renames, and
everyone who speaks. The most recently active come first, as in IRC
clients: the person you answer is usually the one who just spoke.
"""

from __future__ import annotations

import re

from ..nicknames import nick_error, nick_key

__all__ = ["Names"]

#: Lines that name one person at their start, each after its marker (a
#: history line's time stamp is taken off first).
_ONE = re.compile(
    r"<(?P<chat>[^>\s]+)> "
    r"|\* (?P<action>\S+) "
    r"|\*(?P<private>[^*\s]+)\* "
    r"|-> \*(?P<sent>[^*\s]+)\* "
    r"|\*\*\* (?P<came>\S+) joined\b"
    r"|\*\*\* (?P<topic>\S+) set the topic of #"
)
_STAMP = re.compile(r"\[[0-9: -]+\] ")
_RENAMED = re.compile(r"\*\*\* (\S+) is now known as (\S+)$")
#: A roll call (``*** Welcome, ME! #room has 2 users: a, b``, ``*** #room
#: has 2 users: a, b``) and, for a long one, its next lines (``***  c, d``).
_ROLL = re.compile(r"\*\*\* (?:Welcome, \S+! )?#\S+ has \d+ users?: (.*)$")
_MORE = re.compile(r"\*\*\*  (\S.*)$")
_PRESENCE = re.compile(r"\*\*\* \d+ joined: ([^;(]*)")
_AND_MORE = re.compile(r" and \d+ more.*$")


class Names:
    """Nicknames seen, most recently active last; at most ``keep`` of them."""

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        # key -> the name as shown; insertion order is the recency order.
        self._seen: dict[str, str] = {}

    def heard(self, text: str) -> None:
        """One cleaned line from the server (its tag already taken off)."""
        text = _STAMP.sub("", text, count=1) if text.startswith("[") else text
        listed = _ROLL.match(text) or _MORE.match(text) or _PRESENCE.match(text)
        if listed is not None:
            names = _AND_MORE.sub("", listed.group(1)).rstrip(", ").split(", ")
            # A roll call is no sign of activity: behind those who spoke.
            new = {
                nick_key(name): name
                for name in reversed(names)  # completed in the order listed
                if nick_error(name) is None and nick_key(name) not in self._seen
            }
            self._seen = {**new, **self._seen}
            self._trim()
            return
        renamed = _RENAMED.match(text)
        if renamed is not None:
            old, new_name = renamed.groups()
            self._seen.pop(nick_key(old), None)
            self._saw(new_name)
            return
        one = _ONE.match(text)
        if one is not None and one.lastgroup is not None:
            self._saw(one.group(one.lastgroup))

    def complete(self, prefix: str, me: str = "") -> list[str]:
        """The names starting with ``prefix`` (any case), most recent first."""
        start, mine = prefix.lower(), me.lower()
        return [
            name
            for key, name in reversed(self._seen.items())
            if key.startswith(start) and key != mine
        ]

    def _saw(self, name: str) -> None:
        if nick_error(name) is not None:
            return
        key = nick_key(name)
        self._seen.pop(key, None)
        self._seen[key] = name
        self._trim()

    def _trim(self) -> None:
        while len(self._seen) > self.keep:
            del self._seen[next(iter(self._seen))]
