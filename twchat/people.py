"""
What users choose about each other: ``/ignore``, ``/away``, ``/whois``.

Rules stated once beside the hub's (``twchat.hub``). Ignoring works on
the server: an ignored nickname's chat lines and actions are not
delivered to whoever ignores it (the room skips them in its broadcast),
nor replayed to them from history (the hub's ``_replay``), nor are its
private messages. A logged-in user's list is stored with
their account (``ignore:ACCOUNT`` in the moderation store) and comes
back at their next login; a guest's lasts as long as the connection.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from twisted.logger import Logger

from .events import Error, Notice
from .member import Member
from .moderation.masks import duration_text
from .nicknames import nick_error, nick_key
from .refused import RefusedError
from .text import clean_text

if TYPE_CHECKING:
    from .hub import Hub, Waiting

__all__ = ["MAX_IGNORED", "People"]

#: How many nicknames one user may ignore.
MAX_IGNORED = 100
#: An away message is cut to this many characters.
MAX_AWAY = 200


def _scope(account: str) -> str:
    return f"ignore:{account}"


class People:
    """Ignore lists and away messages of the members here; /whois."""

    log = Logger()

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        #: Nickname key -> nickname as typed, for each member ignoring someone.
        self.ignored: dict[Member, dict[str, str]] = {}
        self.away: dict[Member, str] = {}

    def forget(self, member: Member) -> None:
        self.ignored.pop(member, None)
        self.away.pop(member, None)

    def ignores(self, receiver: Member, sender: str) -> bool:
        found = self.ignored.get(receiver)
        return found is not None and nick_key(sender) in found

    # /ignore

    async def logged_in(self, member: Member, account: str) -> None:
        """Their account's ignore list comes back (failures only logged)."""
        try:
            fields = await self._hub.moderator.store.fields(_scope(account))
        except Exception as e:
            self.log.error("cannot read an ignore list: {error}", error=e)
            return
        if fields:
            self.ignored[member] = dict(fields)
            self._hub.ignores_changed(member)

    def ignore(self, member: Member, args: str) -> Waiting:
        nick = args.strip(" ")
        if not nick:
            return self._list(member)
        if nick_error(nick) is not None:
            member.send(Error(f"no such nickname: {clean_text(nick)[:40]}"))
            return None
        key = nick_key(nick)
        if key == nick_key(member.nick):
            member.send(Error("you cannot ignore yourself"))
            return None
        found = self.ignored.setdefault(member, {})
        if key in found:
            member.send(Error(f"you are already ignoring {found[key]}"))
            return None
        if len(found) >= MAX_IGNORED:
            member.send(Error(f"you may ignore at most {MAX_IGNORED} nicknames"))
            return None
        found[key] = nick
        self._hub.ignores_changed(member)
        member.send(
            Notice(f"ignoring {nick}: their lines and messages no longer reach you")
        )
        return self._store(member, key, nick)

    def unignore(self, member: Member, args: str) -> Waiting:
        nick = args.strip(" ")
        found = self.ignored.get(member, {})
        key = nick_key(nick)
        if key not in found:
            member.send(Error(f"you are not ignoring {clean_text(nick)[:40]}"))
            return None
        del found[key]
        if not found:
            del self.ignored[member]
        self._hub.ignores_changed(member)
        member.send(Notice(f"no longer ignoring {nick}"))
        return self._store(member, key, None)

    def _list(self, member: Member) -> Waiting:
        found = self.ignored.get(member)
        if not found:
            member.send(Notice("you are ignoring nobody"))
        else:
            names = ", ".join(sorted(found.values(), key=nick_key))
            member.send(Notice(f"you are ignoring {names}"))
        return None

    def _store(self, member: Member, key: str, nick: str | None) -> Waiting:
        avatar = self._hub.account_of(member)
        if avatar is None:
            return None
        scope = _scope(nick_key(avatar.name))

        async def store() -> None:
            try:
                await self._hub.moderator.store.change(scope, [(key, nick)])
            except Exception as e:
                self.log.error("cannot store an ignore list: {error}", error=e)
                raise RefusedError(
                    "your ignore list cannot be saved right now; it holds until "
                    "you disconnect"
                ) from e

        return self._hub.background(member, store())

    # /away

    def set_away(self, member: Member, args: str) -> Waiting:
        text = clean_text(args)[:MAX_AWAY]
        if text:
            self.away[member] = text
            member.send(Notice(f"you are marked as away: {text}"))
        elif self.away.pop(member, None) is not None:
            member.send(Notice("you are back"))
        else:
            member.send(Error("usage: /away TEXT (and /away alone when you are back)"))
            return None
        self._hub.describe(member)
        return None

    # /whois

    def whois(self, member: Member, args: str) -> Waiting:
        nick = args.strip(" ")
        if nick_error(nick) is not None:
            member.send(Error(f"no such user: {clean_text(nick)[:40]}"))
            return None
        return self._hub.background(member, self._whois(member, nick))

    async def _whois(self, member: Member, nick: str) -> None:
        found = await self._hub.profile(nick)
        if found is None:
            raise RefusedError(f"no such user: {nick}")
        now = self._hub.wall.seconds()
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.since))
        idle = now - found.active
        lines = [f"{found.nick} is in #{found.room}"]
        if found.account is not None:
            role = " (server operator)" if found.operator else ""
            lines.append(f"  logged in to the account {found.nick}{role}")
        else:
            lines.append("  a guest (not logged in)")
        lines.append(f"  connected since {since}")
        lines.append(
            "  idle less than a minute"
            if idle < 60
            else f"  idle {duration_text(idle - idle % 60)}"
        )
        if found.away:
            lines.append(f"  away: {found.away}")
        if self._hub.moderator.server_operator(member):
            lines.append(f"  connected from {found.host}")
        for line in lines:
            member.send(Notice(line))
