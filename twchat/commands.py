"""
Turning what a user typed into hub calls.

Shared by every transport: a line typed into ``nc`` and a message typed
into the browser go through the same parser, so the commands behave the
same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from .events import Error, NickPrompt, Notice
from .help import HELP, OPERATOR_HELP, SERVER_OPERATOR_HELP
from .hub import Hub, Waiting
from .member import Member
from .text import clean_text

__all__ = ["HELP", "OPERATOR_HELP", "SERVER_OPERATOR_HELP", "handle_line"]

_Handler = Callable[[Hub, Member, str], Waiting]


def _who(hub: Hub, member: Member, args: str) -> Waiting:
    name = args.strip(" ")
    if " " in name:  # not "no such room: #lobby extra"
        member.send(Error("usage: /who [ROOM]"))
        return None
    return hub.who(member, name)


def _join(hub: Hub, member: Member, args: str) -> Waiting:
    name = args.strip(" ")
    if not name:
        member.send(Error("usage: /join ROOM"))
        return None
    return hub.join(member, name)


def _part(hub: Hub, member: Member, args: str) -> Waiting:
    return hub.part(member)


def _rooms(hub: Hub, member: Member, args: str) -> Waiting:
    return hub.list_rooms(member)


def _topic(hub: Hub, member: Member, args: str) -> Waiting:
    return hub.topic(member, args)


def _history(hub: Hub, member: Member, args: str) -> Waiting:
    arg = args.strip(" ")
    if arg and not (arg.isdigit() and arg.isascii() and int(arg) > 0):
        member.send(Error("usage: /history [N]"))
        return None
    return hub.show_history(member, int(arg) if arg else hub.history_replay)


def _msg(hub: Hub, member: Member, args: str) -> Waiting:
    target, _, text = args.partition(" ")
    if not target or not text.strip():
        member.send(Error("usage: /msg NICK TEXT"))
        return None
    return hub.tell(member, target, text)


def _me(hub: Hub, member: Member, args: str) -> Waiting:
    return hub.act(member, args)


def _nick(hub: Hub, member: Member, args: str) -> Waiting:
    new = args.strip(" ")
    if not new:
        member.send(Error("usage: /nick NEW"))
        return None
    return hub.rename(member, new)


def _register(hub: Hub, member: Member, args: str) -> Waiting:
    if not args.strip(" "):
        member.send(Error("usage: /register PASSWORD"))
        return None
    return hub.register_account(member, args)


def _password(hub: Hub, member: Member, args: str) -> Waiting:
    old, _, new = args.partition(" ")
    if not old or not new:
        member.send(Error("usage: /password OLD NEW"))
        return None
    return hub.change_password(member, old, new)


def _quit(hub: Hub, member: Member, args: str) -> Waiting:
    member.quit(args.strip(" "))
    return None


def _help(hub: Hub, member: Member, args: str) -> Waiting:
    lines: tuple[str, ...] = HELP
    if member.room is not None and hub.moderator.operator(member, member.room):
        lines += OPERATOR_HELP
    if hub.moderator.server_operator(member):
        lines += SERVER_OPERATOR_HELP
    for line in lines:
        member.send(Notice(line))
    return None


#: Moderation commands, and the usage shown when one is typed bare.
_MODERATION = {
    "op": "/op NICK",
    "deop": "/deop NICK",
    "voice": "/voice NICK",
    "devoice": "/devoice NICK",
    "kick": "/kick NICK [REASON]",
    "ban": "/ban MASK [DURATION] [REASON]",
    "unban": "/unban MASK",
    "bans": "",
    "mute": "/mute NICK [DURATION] [REASON]",
    "unmute": "/unmute NICK",
    "mutes": "",
    "mode": "",
    "invite": "/invite NICK",
    "modlog": "",
    "kill": "/kill NICK [REASON]",
    "gban": "/gban MASK [DURATION] [REASON]",
    "ungban": "/ungban MASK",
    "gbans": "",
    "wall": "/wall TEXT",
}


def _moderation(name: str) -> _Handler:
    usage = _MODERATION[name]

    def handler(hub: Hub, member: Member, args: str) -> Waiting:
        if usage and not args.strip(" "):
            member.send(Error(f"usage: {usage}"))
            return None
        return hub.moderator.command(member, name, args)

    return handler


def _whois(hub: Hub, member: Member, args: str) -> Waiting:
    if not args.strip(" "):
        member.send(Error("usage: /whois NICK"))
        return None
    return hub.people.whois(member, args)


def _away(hub: Hub, member: Member, args: str) -> Waiting:
    return hub.people.set_away(member, args)


def _ignore(hub: Hub, member: Member, args: str) -> Waiting:
    return hub.people.ignore(member, args)


def _unignore(hub: Hub, member: Member, args: str) -> Waiting:
    if not args.strip(" "):
        member.send(Error("usage: /unignore NICK"))
        return None
    return hub.people.unignore(member, args)


def _motd(hub: Hub, member: Member, args: str) -> Waiting:
    hub.show_motd(member)
    return None


def _ids(hub: Hub, member: Member, args: str) -> Waiting:
    """``/ids``: lines marked with history ids and rooms (for clients)."""
    member.tag_lines()
    if member.room is not None:
        member.room.renderer_changed(member)
    return None


def _resume_late(hub: Hub, member: Member, args: str) -> Waiting:
    # Someone who reads "unknown command" would think their client is wrong.
    member.send(Error("/resume works only before choosing a nickname; /join ROOM"))
    return None


_COMMANDS: dict[str, _Handler] = {
    "who": _who,
    "join": _join,
    "part": _part,
    "rooms": _rooms,
    "topic": _topic,
    "history": _history,
    "msg": _msg,
    "me": _me,
    "nick": _nick,
    "register": _register,
    "password": _password,
    "quit": _quit,
    "help": _help,
    "whois": _whois,
    "away": _away,
    "ignore": _ignore,
    "unignore": _unignore,
    "motd": _motd,
    "ids": _ids,
    "resume": _resume_late,
    **{name: _moderation(name) for name in _MODERATION},
}


def _split_command(text: str) -> tuple[str, str]:
    name, _, args = text[1:].partition(" ")
    return name.lower(), args


def _resume(hub: Hub, member: Member, args: str) -> None:
    """``/resume ROOM ID`` (before the nickname): see ``Hub.resume``."""
    room, _, after = args.strip(" ").partition(" ")
    if not room or not after.strip().isdigit():
        member.send(Error("usage: /resume ROOM ID (before choosing a nickname)"))
        return
    hub.resume(member, room, int(after))


def handle_line(hub: Hub, member: Member, text: str) -> Waiting:
    """Act on one decoded line from ``member``."""
    if hub.asking_password(member):
        # Taken as typed, whatever it starts with; never echoed or logged.
        return hub.password(member, text)
    if not member.nick:
        return _handle_nickname(hub, member, text)
    if not text.strip():
        return None  # an empty line is someone pressing Enter, not a message
    if text.startswith("/") and not text.startswith("//"):
        name, args = _split_command(text)
        handler = _COMMANDS.get(name)
        if handler is None:
            shown = clean_text(name)[:32]
            member.send(Error(f"unknown command /{shown}; /help lists the commands"))
            return None
        return handler(hub, member, args)
    if text.startswith("//"):
        text = text[1:]
    return hub.say(member, text)


def _handle_nickname(hub: Hub, member: Member, text: str) -> Waiting:
    """Before registration every line is an answer to the nickname prompt."""
    text = text.strip(" \t")
    if text.startswith("/"):
        name, args = _split_command(text)
        if name == "quit":
            member.quit("")
            return None
        if name == "help":
            _help(hub, member, args)
            member.send(NickPrompt())
            return None
        if name == "ids":
            member.tag_lines()
            return None
        if name == "resume":
            _resume(hub, member, args)
            return None
        if name != "nick":
            member.send(Error("choose a nickname first"))
            member.send(NickPrompt())
            return None
        text = args.strip(" ")
    return hub.register(member, text)
