"""
The line protocol: how each event reads on ``nc``.

Every line starts with a marker that tells its kind, so a person can read
it and a client can colour it:

``<alice> hi``            chat
``* alice waves``         action (``/me``)
``*alice* psst``          private message to you
``-> *bob* psst``         private message you sent
``*** bob joined (2 here)``  notice from the server
``***   Be kind.``        a line of the message of the day
``! no such user: carol`` error: what you asked for did not happen
``? Choose a nickname:``  the server waits for an answer
``? Password for alice:``  ... for a password (the client hides what is typed)
``[14:03] <alice> hi``    a line from the room's history
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from .accounts import MIN_PASSWORD
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
from .moderation.masks import duration_text

__all__ = [
    "BANNED_FROM",
    "BANNED_FROM_SERVER",
    "DISCONNECTED_BY",
    "EOL",
    "IDLE_FOR",
    "KICKED_FROM",
    "MODERATION_PHRASES",
    "MUTED_IN",
    "NEW_PASSWORD_PROMPT",
    "PASSWORD_PROMPT",
    "TAG",
    "WHO_LINE_LENGTH",
    "moderation_text",
    "render_line",
    "render_tagged",
]

EOL = b"\r\n"

#: How the two password prompts begin (the client hides what answers them).
PASSWORD_PROMPT = "? Password for "
NEW_PASSWORD_PROMPT = "? Choose a password for "

#: Long ``/who`` answers are split so that each line stays readable.
WHO_LINE_LENGTH = 400


def _online(count: int) -> str:
    return f"{count} user{'' if count == 1 else 's'} online"


def _stamp(ts: float) -> str:
    """``[14:03]`` today, ``[2026-11-20 14:03]`` before (server local time)."""
    when = time.localtime(ts)
    if time.strftime("%Y-%m-%d", when) == time.strftime("%Y-%m-%d"):
        return time.strftime("[%H:%M]", when)
    return time.strftime("[%Y-%m-%d %H:%M]", when)


def _users(count: int) -> str:
    return f"{count} user{'' if count == 1 else 's'}"


def _members(room: str, online: int, names: tuple[str, ...]) -> str:
    listed = ", ".join(names)
    more = online - len(names)
    if more > 0:
        listed += f" and {more} more (/who lists everyone)"
    return f"#{room} has {_users(online)}: {listed}"


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
    if isinstance(event, PasswordPrompt):
        if event.new:
            return (
                f"{NEW_PASSWORD_PROMPT}{event.nick} "
                f"(at least {MIN_PASSWORD} characters):"
            )
        return f"{PASSWORD_PROMPT}{event.nick}:"
    if isinstance(event, Welcome):
        members = _members(event.room, event.online, event.names)
        return f"*** Welcome, {event.nick}! {members}"
    if isinstance(event, RoomInfo):
        if not event.names:  # the default room, when everyone is elsewhere
            return f"*** Nobody is in #{event.room}"
        head = f"*** #{event.room} has {_users(event.online)}: "
        lines = list(_name_lines(head, event.names))
        if event.operators and not event.entered:  # /who: who may moderate
            lines += _name_lines("***   operators: ", event.operators)
        return "\r\n".join(lines)
    if isinstance(event, Topic):
        if event.setter:
            return f"*** {event.setter} set the topic of #{event.room}: {event.text}"
        if event.text:
            return f"*** Topic of #{event.room}: {event.text}"
        return f"*** #{event.room} has no topic"
    if isinstance(event, RoomList):
        lines = [f"*** {len(event.rooms)} room{'' if len(event.rooms) == 1 else 's'}:"]
        for name, count, topic in event.rooms:
            line = f"***   #{name} ({count})"
            lines.append(f"{line}: {topic}" if topic else line)
        return "\r\n".join(lines)
    if isinstance(event, Action):
        return f"* {event.nick} {event.text}"
    if isinstance(event, Private):
        return f"*{event.sender}* {event.text}"
    if isinstance(event, PrivateSent):
        return f"-> *{event.target}* {event.text}"
    if isinstance(event, Joined):
        came = f" from #{event.came_from}" if event.came_from else ""
        return f"*** {event.nick} joined{came} ({event.online} here)"
    if isinstance(event, Left):
        went = f" for #{event.went_to}" if event.went_to else ""
        line = f"*** {event.nick} left{went} ({event.online} here)"
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
        return f"*** {'; '.join(parts)} ({event.online} here)"
    if isinstance(event, NickChanged):
        return f"*** {event.old} is now known as {event.new}"
    if isinstance(event, Moderated):
        return f"*** {moderation_text(event)}"
    if isinstance(event, HistoryLine):
        stamp = _stamp(event.ts)
        if event.kind == "action":
            return f"{stamp} * {event.sender} {event.text}"
        if event.kind == "topic":
            topic = f"set the topic of #{event.room}: {event.text}"
            return f"{stamp} *** {event.sender} {topic}"
        return f"{stamp} <{event.sender}> {event.text}"
    if isinstance(event, Notice):
        return f"*** {event.text}"
    if isinstance(event, Motd):
        return "\r\n".join(
            [
                "*** Message of the day:",
                *(f"***   {line}".rstrip() for line in event.lines),
            ]
        )
    if isinstance(event, Error):
        return f"! {event.text}"
    raise TypeError(f"no line format for {event!r}")


#: How a user an operator acted on is told (the page recognises the first
#: two: out of the room, the default room's roll call comes next).
KICKED_FROM = "you were kicked from #"
BANNED_FROM = "you are banned from #"
BANNED_FROM_SERVER = "you are banned from this server"
MUTED_IN = "you are muted in #"
DISCONNECTED_BY = "you were disconnected by "
#: How the error before an idle user's close begins (``--idle-timeout``): the
#: clients do not reconnect, which would only bring the absent user back.
IDLE_FOR = "idle for "

#: Phrases only moderation lines contain (a client colours them apart):
#: what the room reads, and what the user acted on reads.
MODERATION_PHRASES = (
    " was kicked by ",
    " banned ",
    " lifted the ban on ",
    " muted ",
    " unmuted ",
    " was disconnected by ",
    KICKED_FROM,
    BANNED_FROM,
    BANNED_FROM_SERVER,
    MUTED_IN,
    DISCONNECTED_BY,
)


def moderation_text(event: Moderated) -> str:
    """What a room is told when an operator acts in it."""
    actor, target, room = event.actor, event.target, f"#{event.room}"
    lasting = (
        " until lifted"
        if event.duration is None
        else f" for {duration_text(event.duration)}"
    )
    texts = {
        "kick": f"{target} was kicked by {actor}",
        "ban": f"{actor} banned {target} from {room}{lasting}",
        "unban": f"{actor} lifted the ban on {target} in {room}",
        "mute": f"{actor} muted {target} in {room}{lasting}",
        "unmute": f"{actor} unmuted {target} in {room}",
        "op": f"{actor} made {target} an operator of {room}",
        "deop": f"{actor} took operator status in {room} from {target}",
        "voice": f"{actor} gave {target} a voice in {room}",
        "devoice": f"{actor} took {target}'s voice in {room}",
        "mode": f"{actor} set mode {target} on {room}",
        "invite": f"{actor} invited {target} to {room}",
        "founded": f"{actor} founded {room} and is its operator",
        "kill": f"{target} was disconnected by {actor}",
        "wall": f"notice from {actor} to everyone",
    }
    text = texts.get(event.action, f"{actor} {event.action} {target}".rstrip())
    return f"{text}: {event.reason}" if event.reason else text


def render_line(event: Event) -> bytes:
    """Encode ``event`` as one or more CRLF-terminated UTF-8 lines."""
    if type(event) is Chat:
        # The hot path: one f-string and one encode per broadcast.
        return f"<{event.nick}> {event.text}\r\n".encode()
    return (_lines(event) + "\r\n").encode()


#: How a tagged line begins, for a client that asked with ``/ids``:
#: ``@#ROOM `` on the line saying it entered ROOM, ``@ID `` on a line with
#: a history id (the rest of the line is as ``render_line`` has it).
TAG = "@"


def _tag(event: Event) -> str | None:
    if isinstance(event, Welcome) or (isinstance(event, RoomInfo) and event.entered):
        return f"#{event.room}"
    if isinstance(event, Chat | Action | HistoryLine) and event.id:
        return str(event.id)
    if isinstance(event, Topic) and event.setter and event.id:
        return str(event.id)  # set just now; shown on entering has no id
    return None


def render_tagged(event: Event) -> bytes:
    """``render_line`` with each line's room or history id marked."""
    line = render_line(event)
    tag = _tag(event)
    return line if tag is None else f"{TAG}{tag} ".encode() + line


Renderer = Callable[[Event], bytes]
