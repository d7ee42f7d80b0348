"""
The line protocol: how each event reads on ``nc``.

Every line starts with a marker that tells its kind, so a person can read
it and a client can colour it:

``<alice> hi``            chat
``* alice waves``         action (``/me``)
``*alice* psst``          private message to you
``-> *bob* psst``         private message you sent
``*** bob joined (2 online)``  notice from the server
``! no such user: carol`` error: what you asked for did not happen
``? Choose a nickname:``  the server waits for an answer
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .events import (
    Action,
    Chat,
    Error,
    Event,
    Greeting,
    Joined,
    Left,
    NickChanged,
    NickPrompt,
    Notice,
    Presence,
    Private,
    PrivateSent,
    Welcome,
    Who,
)

__all__ = ["EOL", "WHO_LINE_LENGTH", "render_line"]

EOL = b"\r\n"

#: Long ``/who`` answers are split so that each line stays readable.
WHO_LINE_LENGTH = 400


def _online(count: int) -> str:
    return f"{count} user{'' if count == 1 else 's'} online"


def _name_lines(head: str, names: tuple[str, ...]) -> Iterator[str]:
    line = head
    sep = ""
    for name in names:
        if len(line) + len(sep) + len(name) > WHO_LINE_LENGTH and sep:
            yield line + ","
            line, sep = "***  ", ""
        line += sep + name
        sep = ", "
    yield line


def _lines(event: Event) -> str:
    if isinstance(event, Greeting):
        if event.online == 0:
            return "*** Welcome to twchat! Nobody else is here yet."
        return f"*** Welcome to twchat! {_online(event.online)}."
    if isinstance(event, NickPrompt):
        return "? Choose a nickname:"
    if isinstance(event, Welcome):
        listed = ", ".join(event.names)
        more = event.online - len(event.names)
        if more > 0:
            listed += f" and {more} more (/who lists everyone)"
        return f"*** Welcome, {event.nick}! {_online(event.online)}: {listed}"
    if isinstance(event, Action):
        return f"* {event.nick} {event.text}"
    if isinstance(event, Private):
        return f"*{event.sender}* {event.text}"
    if isinstance(event, PrivateSent):
        return f"-> *{event.target}* {event.text}"
    if isinstance(event, Joined):
        return f"*** {event.nick} joined ({event.online} online)"
    if isinstance(event, Left):
        line = f"*** {event.nick} left ({event.online} online)"
        return f"{line}: {event.reason}" if event.reason else line
    if isinstance(event, Presence):
        parts = []
        for count, names, verb in (
            (event.joined, event.joined_names, "joined"),
            (event.left, event.left_names, "left"),
        ):
            if count:
                listed = ", ".join(names)
                if count > len(names):
                    listed += f" and {count - len(names)} more"
                parts.append(f"{count} {verb}: {listed}")
        return f"*** {'; '.join(parts)} ({event.online} online)"
    if isinstance(event, NickChanged):
        return f"*** {event.old} is now known as {event.new}"
    if isinstance(event, Who):
        head = f"*** {_online(len(event.names))}: "
        return "\r\n".join(_name_lines(head, event.names))
    if isinstance(event, Notice):
        return f"*** {event.text}"
    if isinstance(event, Error):
        return f"! {event.text}"
    raise TypeError(f"no line format for {event!r}")


def render_line(event: Event) -> bytes:
    """Encode ``event`` as one or more CRLF-terminated UTF-8 lines."""
    if type(event) is Chat:
        # The hot path: one f-string and one encode per broadcast.
        return f"<{event.nick}> {event.text}\r\n".encode()
    return (_lines(event) + "\r\n").encode()


Renderer = Callable[[Event], bytes]
