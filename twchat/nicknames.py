"""
Nickname rules.

Nicknames are plain ASCII so that look-alike letters from other scripts
cannot impersonate someone, and they compare case-insensitively so that
``Alice`` and ``alice`` can never be two different people.
"""

from __future__ import annotations

import string
import sys

__all__ = [
    "ALLOWED_PUNCTUATION",
    "MAX_NICK_LENGTH",
    "RESERVED_NICKS",
    "TAKEN",
    "nick_error",
    "nick_key",
]

MAX_NICK_LENGTH = 24
#: How the refusal of a nickname someone holds ends (``nickname X is
#: already taken``): a client back after a lost connection that reads it
#: for its own name waits for the lost connection to let go.
TAKEN = " is already taken"
ALLOWED_PUNCTUATION = "_-[]{}|^`"
_ALLOWED = frozenset(string.ascii_letters + string.digits + ALLOWED_PUNCTUATION)
_BAD_FIRST = frozenset(string.digits + "-")

#: Names that would let a user pass as the server or staff.
RESERVED_NICKS = frozenset(
    {
        "server",
        "system",
        "twchat",
        "admin",
        "administrator",
        "root",
        "operator",
        "moderator",
        "nickserv",
        "chanserv",
        "everyone",
        "nobody",
    }
)


def nick_key(nick: str) -> str:
    """The identity of a nickname: ``Alice`` and ``ALICE`` are one person."""
    # One string object however many tables hold it (thousands of users,
    # each a key in several of them).
    return sys.intern(nick.lower())


def _describe(char: str) -> str:
    """Name a character so that an error line never echoes a control code."""
    if char.isascii() and char.isprintable() and char != " ":
        return f"'{char}'"
    return f"U+{ord(char):04X}"


def nick_error(nick: str) -> str | None:
    """
    Say why ``nick`` cannot be used as a nickname, or ``None`` if it can.

    Uniqueness is not checked here; only the hub knows who is online.
    """
    if not nick:
        return "nickname cannot be empty"
    for char in nick:
        if char not in _ALLOWED:
            return (
                f"nickname contains {_describe(char)}; use only ASCII letters, "
                f"digits and {ALLOWED_PUNCTUATION}"
            )
    if len(nick) > MAX_NICK_LENGTH:
        return f"nickname is too long ({len(nick)} characters, max {MAX_NICK_LENGTH})"
    if nick[0] in _BAD_FIRST:
        return "nickname must not start with a digit or '-'"
    if nick_key(nick) in RESERVED_NICKS:
        return f"nickname {nick} is reserved"
    return None
