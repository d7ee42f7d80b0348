"""
The moderation rules: who may act on whom, and what happens to them.

Stated once, for both backends, beside the hub's other rules
(``twchat.hub``), over a store (``twchat.moderation.store``) that keeps
rooms' founders, operators, voices, modes, bans, mutes and invitations
even while a room is empty. A change is written to the store, then told
to the room in its order (``IBackend.moderate``): every node following
the room applies it to its copy of the room's state and acts on its own
members (a banned user present is sent out), so a rule holds on every
node the moment the room hears of it.

Roles, strongest first: server operators (accounts with the operator
flag: everywhere), a room's founder (the logged-in user who created it),
its operators (accounts: ``/op``), voiced users (``/voice``: may speak in
a ``+m`` room). In the default room the server operators and whom they
``/op`` are the operators.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._immutable import immutable
from .events import Moderated, Notice
from .member import Member
from .moderation.masks import (
    Identity,
    Mask,
    account_mask,
    address_mask,
    duration_text,
    parse_duration,
    parse_mask,
)
from .moderation.state import (
    FOUNDER,
    MODES,
    ROOM_MODES,
    SERVER_SCOPE,
    Change,
    Rules,
    Sanction,
    ban_field,
    gban_field,
    invite_field,
    mute_field,
    op_field,
    room_scope,
    voice_field,
    who_id,
)
from .moderation.store import IModerationStore
from .nicknames import nick_error, nick_key
from .refused import TRY_AGAIN, RefusedError
from .room import Room, room_key
from .text import clean_text
from .wire import (
    BANNED_FROM,
    BANNED_FROM_SERVER,
    DISCONNECTED_BY,
    KICKED_FROM,
    MUTED_IN,
)

if TYPE_CHECKING:
    from .hub import Hub, Waiting

__all__ = [
    "MODLOG_SHOWN",
    "SILENT",
    "Moderator",
    "Out",
    "not_operator",
]


#: How a duration is written, for the error that shows it.
_DURATIONS = "use 30s, 10m, 2h, 7d or 2w (at most a year)"
#: Seconds a node trusts its copy of the server's bans (a safety net: a
#: change clears it on every node with someone in a room).
SERVER_RULES_TTL = 10.0
#: Server bans changed: told to every room so that each node acts on them.
_SERVER_BANS = frozenset({"gban", "ungban"})
#: Actions nobody reads: the server bans, and "" (a state change alone, such
#: as an invitation used up by whom it let in).
SILENT = _SERVER_BANS | {""}


@immutable
class Out:
    """A member a moderation action sends out, and what they are told."""

    member: Member
    told: str
    #: The reason the room reads when they leave.
    reason: str
    #: Out of the chat, not just out of the room.
    disconnect: bool = False


@immutable
class _Target:
    """Someone an operator names."""

    who: Identity
    #: A server operator (only their peers act on them).
    operator: bool


#: /modlog without a number shows this many entries (at most LOG_KEEP).
MODLOG_SHOWN = 20
_MAX_REASON = 200

_Action = Callable[[Member, Room, str], Awaitable[None]]


def not_operator(room: str) -> str:
    return f"you are not an operator of #{room}"


class Moderator:
    """Room roles and sanctions, for the hub."""

    log = Logger()

    def __init__(self, hub: Hub, store: IModerationStore) -> None:
        self._hub = hub
        self.store = store
        #: Each local room's state, kept current by the room's events.
        self._rooms: dict[str, Rules] = {}
        #: The server's bans, as last read (see ``_server_rules``).
        self._server: Rules | None = None
        self._server_read = 0.0
        #: Reads of a scope under way, and who waits for them.
        self._readers: dict[str, list[Deferred[Rules]]] = {}
        #: Rooms whose state is being read, and who waits for it.
        self._reading: dict[str, list[Deferred[None]]] = {}

    # Who is who

    def identity(self, member: Member) -> Identity:
        avatar = self._hub.account_of(member)
        account = None if avatar is None else nick_key(avatar.name)
        return Identity(member.nick, account, member.host)

    def server_operator(self, member: Member) -> bool:
        avatar = self._hub.account_of(member)
        return avatar is not None and avatar.operator

    def operator(self, member: Member, room: Room) -> bool:
        """Founder, operator or server operator of ``room``."""
        if self.server_operator(member):
            return True
        rules = self._rooms.get(room.key)
        return rules is not None and rules.operator(self.identity(member).account)

    def _now(self) -> float:
        return self._hub.wall.seconds()

    # The rooms' state, here

    def room_here(self, room: Room) -> None:
        """A room has its first member here: its state is read after them."""
        if room.key not in self._rooms:
            self._rooms[room.key] = Rules.loading()

    def entered(self, room: Room) -> Deferred[None] | None:
        """
        Someone entered ``room`` here: fires once this node's copy of its
        state is complete (None if it is). The first time, the state is
        read now: the room's later changes reach us, earlier ones are stored.
        """
        rules = self._rooms.get(room.key)
        if rules is None or rules.pending is None:
            return None
        waiting: Deferred[None] = Deferred()
        if room.key in self._reading:
            self._reading[room.key].append(waiting)
            return waiting
        self._reading[room.key] = [waiting]

        def read(fields: dict[str, str]) -> None:
            rules.loaded(fields)
            for waiter in self._reading.pop(room.key, []):
                waiter.callback(None)

        def failed(failure: object) -> None:
            self.log.error(
                "cannot read the moderation state of #{room}: {failure}",
                room=room.name,
                failure=failure,
            )
            read({})

        self.store.fields(room_scope(room.key)).addCallbacks(read, failed)
        return waiting

    def room_gone(self, room: Room) -> None:
        self._rooms.pop(room.key, None)
        if not self._rooms:
            self._server = None  # nobody here: changes will not be heard

    async def _rules(self, key: str) -> Rules:
        """A room's state: this node's copy if it has one, else the store's."""
        rules = self._rooms.get(key)
        if rules is not None and rules.pending is None:
            return rules
        return await self._stored(room_scope(key))

    async def _stored(self, scope: str) -> Rules:
        """
        A scope's state as stored (not to be changed: it may be shared).
        Reads of one scope under way at once are one read, parsed once:
        thousands arriving together cost one trip, not thousands.
        """
        waiting: Deferred[Rules] = Deferred()
        readers = self._readers.get(scope)
        if readers is not None:
            readers.append(waiting)
        else:
            self._readers[scope] = [waiting]

            def answer(result: dict[str, str] | Failure) -> None:
                rules = None if isinstance(result, Failure) else Rules.of(result)
                for reader in self._readers.pop(scope, []):
                    if rules is None:
                        assert isinstance(result, Failure)
                        reader.errback(result)
                    else:
                        reader.callback(rules)

            self.store.fields(scope).addBoth(answer)
        try:
            return await waiting
        except Exception as e:
            self.log.error("moderation state unavailable: {error}", error=e)
            raise RefusedError(
                f"moderation state cannot be read right now; {TRY_AGAIN}"
            ) from e

    async def operators(self, key: str, names: tuple[str, ...]) -> tuple[str, ...]:
        """
        Which of ``names`` (people in the room) are its founder or operators:
        a registered name is only ever held by its account's owner.
        """
        try:
            rules = await self._rules(key)
        except RefusedError:
            return ()  # the list of people is worth more than the marks
        if rules.founder is None and not rules.ops:
            return ()
        return tuple(name for name in names if rules.operator(nick_key(name)))

    # Checks on the way (the hub asks)

    async def may_enter(self, member: Member, key: str, name: str) -> str | None:
        """Why ``member`` may not enter the room, or None."""
        if self.server_operator(member):
            return None
        rules = await self._rules(key)
        who = self.identity(member)
        if rules.operator(who.account):
            return None  # a room's operators can always come back
        ban = rules.banned(who, self._now())
        if ban is not None:
            return _banned_text(name, ban, self._now())
        default = key == room_key(self._hub.default_room)
        if "i" in rules.modes and not default and who_id(who) not in rules.invites:
            return f"#{name} is invite-only; an operator can /invite you"
        return None

    async def arrived(self, member: Member, room: Room, online: int) -> None:
        """After entering: an invitation is used; a new room gets its founder."""
        who = self.identity(member)
        rules = self._rooms.get(room.key)
        scope = room_scope(room.key)
        if rules is not None and who_id(who) in rules.invites:
            await self._change(member, room, "", (invite_field(who_id(who)), None))
        if (
            who.account is None
            or online != 1
            or room.key == room_key(self._hub.default_room)
        ):
            return
        if rules is not None and rules.pending is None and rules.founder is not None:
            return
        if not await self.store.add_new(scope, FOUNDER, who.account):
            return
        await self.store.change(scope, [(MODES, "t")])
        self._record(member, "founded", room.name)
        await self._tell(
            member,
            room,
            Moderated(
                room.name,
                "founded",
                member.nick,
                changes=((FOUNDER, who.account), (MODES, "t")),
            ),
        )

    def may_speak(self, member: Member, room: Room) -> str | None:
        """The hot path: nothing to do unless the room has mutes or ``+m``."""
        rules = self._rooms.get(room.key)
        if rules is None or (not rules.mutes and "m" not in rules.modes):
            return None
        if self.operator(member, room):
            return None
        who = self.identity(member)
        muted = rules.muted(who, self._now())
        if muted is not None:
            left = "" if muted.until is None else f" for {_left(muted, self._now())}"
            return _with_reason(f"{MUTED_IN}{room.name}{left}", muted.reason)
        if "m" in rules.modes and who_id(who) not in rules.voiced:
            return (
                f"#{room.name} is moderated (+m): only operators and voiced users speak"
            )
        return None

    def may_set_topic(self, member: Member, room: Room) -> str | None:
        rules = self._rooms.get(room.key)
        if rules is None or "t" not in rules.modes or self.operator(member, room):
            return None
        return f"only operators set the topic of #{room.name} (mode +t)"

    # What the room hears (every node)

    def heard(self, room: Room, event: Moderated) -> list[Out]:
        """
        Apply a change to this node's copy; the members here it sends out
        of the room (or of the chat), with what they are told.
        """
        rules = self._rooms.get(room.key)
        if rules is not None:
            rules.apply(event.changes)
        action, actor = event.action, event.actor
        if action in _SERVER_BANS:
            self._server = None  # the server's bans changed: read them again
        out: list[Out] = []
        if action == "kick" or action == "kill":
            target = nick_key(event.target)
            for member in room:
                if nick_key(member.nick) == target:
                    text = (
                        f"{KICKED_FROM}{room.name} by {actor}"
                        if action == "kick"
                        else f"{DISCONNECTED_BY}{actor}"
                    )
                    told = _with_reason(text, event.reason)
                    reason = f"{action}ed by {actor}"
                    out.append(Out(member, told, reason, action == "kill"))
        elif action == "ban" and rules is not None and rules.pending is None:
            now = self._now()
            for member in room:
                if self.operator(member, room):
                    continue
                ban = rules.banned(self.identity(member), now)
                if ban is not None:
                    told = _banned_text(room.name, ban, now)
                    out.append(Out(member, told, f"banned by {actor}"))
        elif action == "gban":
            mask = parse_mask(event.target)
            for member in room:
                if mask is None or self.server_operator(member):
                    continue
                if mask.matches(self.identity(member)):
                    told = _with_reason(BANNED_FROM_SERVER, event.reason)
                    out.append(Out(member, told, "banned from the server", True))
        return out

    # Commands

    def command(self, member: Member, name: str, args: str) -> Waiting:
        """Run the moderation command ``name`` (``op``, ``ban``, ...)."""
        action = _COMMANDS[name]
        room = self._hub.room_of(member)
        return self._hub.background(member, action(self, member, room, args))

    async def _need_operator(self, member: Member, room: Room) -> None:
        rules = self._rooms.get(room.key)
        if rules is not None and rules.pending is not None:
            await self._rules(room.key)  # the copy is on its way: the store says
            rules = self._rooms.get(room.key)
        if not self.operator(member, room):
            raise RefusedError(not_operator(room.name))

    async def _target(self, member: Member, nick: str, need_account: bool) -> _Target:
        """The user called ``nick`` on any node, or (by their account) offline."""
        nick = nick.strip(" ")
        if nick_error(nick) is not None:
            raise RefusedError(f"no such user: {clean_text(nick)[:40]}")
        found = await self._hub.profile(nick)
        if found is not None:
            who = Identity(found.nick, found.account, found.host)
            if need_account and who.account is None:
                raise RefusedError(f"{found.nick} is not logged in to an account")
            return _Target(who, found.operator)
        account = await self._hub.account_named(nick)
        if account is None:
            raise RefusedError(f"no such user: {nick}")
        return _Target(
            Identity(account.name, nick_key(account.name), ""), account.operator
        )

    async def _present(self, room: Room, nick: str) -> str | None:
        """``nick`` as the room (on every node) knows them, if they are in it."""
        found = await self._hub.backend.roster(room.key)
        key = nick_key(nick)
        return next(
            (n for n in (found[1] if found else ()) if nick_key(n) == key), None
        )

    def _protected(self, member: Member, room: Room, target: _Target) -> bool:
        """
        Only server operators act on a server operator or on a room's
        founder; everyone else's operators act on everyone else.
        """
        if self.server_operator(member):
            return False
        if target.operator:
            return True
        rules = self._rooms.get(room.key)
        account = target.who.account
        return rules is not None and account is not None and account == rules.founder

    async def _change(
        self,
        member: Member,
        room: Room,
        action: str,
        *changes: Change,
        target: str = "",
        reason: str = "",
        duration: int | None = None,
    ) -> None:
        """Store the change, then tell the room (which applies it)."""
        await self._write(room_scope(room.key), list(changes))
        if action:
            self._record(member, action, room.name, target, reason, duration)
        await self._tell(
            member,
            room,
            Moderated(
                room.name, action, member.nick, target, reason, duration, changes
            ),
        )

    async def _write(self, scope: str, changes: list[Change]) -> None:
        try:
            await self.store.change(scope, changes)
        except Exception as e:
            self.log.error("moderation state unavailable: {error}", error=e)
            raise RefusedError(
                f"moderation state cannot be written right now; {TRY_AGAIN}"
            ) from e

    async def _tell(self, member: Member, room: Room, event: Moderated) -> None:
        await self._hub.backend.moderate(self._hub.conn_of(member), room.key, event)

    def _record(
        self,
        member: Member,
        action: str,
        room: str,
        target: str = "",
        reason: str = "",
        duration: int | None = None,
    ) -> None:
        """The audit trail: the log, the stored moderation log, the metrics."""
        self._hub.stats.moderation[action] += 1
        self.log.info(
            "moderation: {actor} {action} {target} in #{room}"
            " (duration {duration}, reason {reason!r})",
            actor=member.nick,
            action=action,
            target=target,
            room=room,
            duration=duration,
            reason=reason,
        )
        entry = {
            "ts": time.time(),
            "actor": member.nick,
            "action": action,
            "target": target,
            "room": room,
            "reason": reason,
            "duration": duration,
        }
        d = self.store.record(json.dumps(entry))
        d.addErrback(
            lambda f: self.log.error("cannot write the moderation log: {f}", f=f)
        )

    async def _op(self, member: Member, room: Room, args: str, on: bool) -> None:
        await self._need_operator(member, room)
        target = await self._target(member, args, need_account=True)
        who, where = target.who, f"#{room.name}"
        assert who.account is not None
        # A change that changes nothing is refused, not announced: the room
        # would read that someone lost a status they keep.
        rules = await self._rules(room.key)
        if target.operator:
            raise RefusedError(
                f"{who.nick} is a server operator: an operator everywhere"
            )
        if who.account == rules.founder:
            raise RefusedError(f"{who.nick} founded {where} and is always its operator")
        if on and who.account in rules.ops:
            raise RefusedError(f"{who.nick} is already an operator of {where}")
        if not on and who.account not in rules.ops:
            raise RefusedError(f"{who.nick} is not an operator of {where}")
        value = member.nick if on else None
        await self._change(
            member,
            room,
            "op" if on else "deop",
            (op_field(who.account), value),
            target=who.nick,
        )

    async def op(self, member: Member, room: Room, args: str) -> None:
        await self._op(member, room, args, True)

    async def deop(self, member: Member, room: Room, args: str) -> None:
        await self._op(member, room, args, False)

    async def _voice(self, member: Member, room: Room, args: str, on: bool) -> None:
        await self._need_operator(member, room)
        who = (await self._target(member, args, need_account=False)).who
        voiced = who_id(who) in (await self._rules(room.key)).voiced
        if on and voiced:
            raise RefusedError(f"{who.nick} already has a voice in #{room.name}")
        if not on and not voiced:
            raise RefusedError(f"{who.nick} has no voice in #{room.name}")
        await self._change(
            member,
            room,
            "voice" if on else "devoice",
            (voice_field(who_id(who)), member.nick if on else None),
            target=who.nick,
        )

    async def voice(self, member: Member, room: Room, args: str) -> None:
        await self._voice(member, room, args, True)

    async def devoice(self, member: Member, room: Room, args: str) -> None:
        await self._voice(member, room, args, False)

    async def kick(self, member: Member, room: Room, args: str) -> None:
        nick, _, reason = args.strip(" ").partition(" ")
        await self._need_operator(member, room)
        target = await self._present(room, nick)
        if target is None:
            raise RefusedError(f"{clean_text(nick)[:40]} is not in #{room.name}")
        named = await self._target(member, target, need_account=False)
        if self._protected(member, room, named):
            raise RefusedError(f"you cannot kick {target}")
        reason = clean_text(reason)[:_MAX_REASON]
        await self._change(member, room, "kick", target=target, reason=reason)

    async def _sanction(self, member: Member, room: Room, args: str, kind: str) -> None:
        """``/ban MASK [DURATION] [REASON]``, ``/mute NICK [DURATION] [REASON]``."""
        words = args.strip(" ").split(" ")
        await self._need_operator(member, room)
        mask, sanction, duration = await self._sanctioned(member, room, words)
        reason = sanction.reason
        field = _SANCTION_FIELD[kind](mask)
        target = words[0] if kind == "mute" else mask.text
        await self._change(
            member,
            room,
            kind,
            (field, sanction.encode()),
            target=target,
            reason=reason,
            duration=duration,
        )

    async def _sanctioned(
        self, member: Member, room: Room, words: list[str]
    ) -> tuple[Mask, Sanction, int | None]:
        """MASK [DURATION] [REASON], read."""
        mask = await self._mask(member, room, words[0])
        duration = parse_duration(words[1]) if len(words) > 1 else None
        if duration is None and len(words) > 1 and words[1][:1].isdigit():
            # A mistyped duration ("1hr") read as the reason's first word
            # would have made the ban last for ever.
            shown = clean_text(words[1])[:16]
            raise RefusedError(f"bad duration {shown}: {_DURATIONS}")
        rest = words[2:] if duration is not None else words[1:]
        reason = clean_text(" ".join(rest)).strip(" ")[:_MAX_REASON]
        now = self._now()
        until = None if duration is None else now + duration
        return mask, Sanction(mask, until, reason, member.nick, now), duration

    async def _mask(self, member: Member, room: Room, text: str) -> Mask:
        mask = parse_mask(text)
        if mask is not None:
            return mask
        target = await self._target(member, text, need_account=False)
        who = target.who
        if self._protected(member, room, target):
            raise RefusedError(f"you cannot do that to {who.nick}")
        found = _mask_of(who)
        if found is None:
            raise RefusedError(f"{who.nick} has no address to ban; name an account")
        return found

    async def ban(self, member: Member, room: Room, args: str) -> None:
        await self._sanction(member, room, args, "ban")

    async def mute(self, member: Member, room: Room, args: str) -> None:
        await self._sanction(member, room, args, "mute")

    async def _lift(self, member: Member, room: Room, args: str, kind: str) -> None:
        text = args.strip(" ")
        await self._need_operator(member, room)
        rules = await self._rules(room.key)
        mask = parse_mask(text)
        if mask is None:
            who = (await self._target(member, text, need_account=False)).who
            mask = _mask_of(who)
        found = rules.bans if kind == "ban" else rules.mutes
        if mask is None or mask.text not in found:
            what = "ban" if kind == "ban" else "mute"
            raise RefusedError(f"no {what} on {clean_text(text)[:40]} in #{room.name}")
        field = _SANCTION_FIELD[kind](mask)
        lifted = "unban" if kind == "ban" else "unmute"
        target = mask.text if kind == "ban" else text
        await self._change(member, room, lifted, (field, None), target=target)

    async def unban(self, member: Member, room: Room, args: str) -> None:
        await self._lift(member, room, args, "ban")

    async def unmute(self, member: Member, room: Room, args: str) -> None:
        await self._lift(member, room, args, "mute")

    async def bans(self, member: Member, room: Room, args: str) -> None:
        await self._need_operator(member, room)
        rules = await self._rules(room.key)
        self._list(member, "ban", rules.bans, f"in #{room.name}")

    async def mutes(self, member: Member, room: Room, args: str) -> None:
        await self._need_operator(member, room)
        rules = await self._rules(room.key)
        self._list(member, "mute", rules.mutes, f"in #{room.name}")

    def _list(
        self, member: Member, kind: str, found: dict[str, Sanction], where: str
    ) -> None:
        """The sanctions still running, oldest first (``/bans``, ``/mutes``)."""
        now = self._now()
        active = [s for s in found.values() if s.active(now)]
        if not active:
            member.send(Notice(f"No {kind}s {where}"))
            return
        count = len(active)
        member.send(Notice(f"{count} {kind}{'' if count == 1 else 's'} {where}:"))
        for one in sorted(active, key=lambda s: s.at):
            lasts = "until lifted" if one.until is None else f"{_left(one, now)} left"
            line = f"  {one.mask.text} by {one.by}, {lasts}"
            member.send(Notice(f"{line}: {one.reason}" if one.reason else line))

    async def mode(self, member: Member, room: Room, args: str) -> None:
        text = args.strip(" ")
        rules = await self._rules(room.key)
        if not text:
            member.send(
                Notice(
                    f"#{room.name} modes: +{rules.modes}"
                    if rules.modes
                    else f"#{room.name} has no modes set"
                )
            )
            return
        await self._need_operator(member, room)
        modes = set(rules.modes)
        sign = ""
        for char in text.replace(" ", ""):
            if char in "+-":
                sign = char
            elif char in ROOM_MODES and sign:
                (modes.add if sign == "+" else modes.discard)(char)
            else:
                raise RefusedError(
                    "usage: /mode [+|-][itm]: i invite-only, t topic by operators, "
                    "m only operators and voiced users speak"
                )
        value = "".join(m for m in ROOM_MODES if m in modes)
        if value == rules.modes:
            member.send(
                Notice(
                    f"#{room.name} modes: +{value}"
                    if value
                    else f"#{room.name} has no modes set"
                )
            )
            return
        changed = _mode_change(rules.modes, value)
        await self._change(member, room, "mode", (MODES, value), target=changed)

    async def invite(self, member: Member, room: Room, args: str) -> None:
        await self._need_operator(member, room)
        who = (await self._target(member, args, need_account=False)).who
        if await self._present(room, who.nick) is not None:
            # Kept, the invitation would let them back in once after they left.
            raise RefusedError(f"{who.nick} is already in #{room.name}")
        await self._change(
            member,
            room,
            "invite",
            (invite_field(who_id(who)), member.nick),
            target=who.nick,
        )
        await self._hub.backend.tell(
            member.nick, who.nick, f"invites you to #{room.name} (/join {room.name})"
        )

    # The server operators'

    def _need_server_operator(self, member: Member) -> None:
        if not self.server_operator(member):
            raise RefusedError("you are not a server operator")

    async def _server_rules(self) -> Rules:
        """
        The server's bans. Every connection and login checks them, so a
        copy is kept while someone is here: changes reach every room with
        people (so this node hears them) and clear it. With nobody here
        nothing would be heard: then they are read each time.
        """
        now = self._now()
        if (
            self._server is None
            or not self._rooms
            or now - self._server_read > SERVER_RULES_TTL
        ):
            self._server = await self._stored(SERVER_SCOPE)
            self._server_read = now
        return self._server

    async def server_ban(self, member: Member) -> str | None:
        """Why ``member`` may not use this server at all (by address or account)."""
        rules = await self._server_rules()
        if not rules.bans:
            return None
        now = self._now()
        ban = rules.banned(self.identity(member), now)
        if ban is None:
            return None
        text = BANNED_FROM_SERVER
        if ban.until is not None:
            text += f" for {_left(ban, now)}"
        return _with_reason(text, ban.reason)

    async def _everywhere(self, member: Member, event: Moderated) -> None:
        """Tell every room (each node acts on its own members)."""
        conn = self._hub.conn_of(member)
        for name, _, _ in await self._hub.backend.rooms():
            await self._hub.backend.moderate(
                conn, room_key(name), replace(event, room=name)
            )

    async def kill(self, member: Member, room: Room, args: str) -> None:
        nick, _, reason = args.strip(" ").partition(" ")
        self._need_server_operator(member)
        found = await self._hub.profile(nick)
        if found is None:
            raise RefusedError(f"no such user: {clean_text(nick)[:40]}")
        reason = clean_text(reason)[:_MAX_REASON]
        self._record(member, "kill", found.room, found.nick, reason)
        await self._hub.backend.moderate(
            self._hub.conn_of(member),
            room_key(found.room),
            Moderated(found.room, "kill", member.nick, found.nick, reason),
        )

    async def gban(self, member: Member, room: Room, args: str) -> None:
        self._need_server_operator(member)
        mask, sanction, duration = await self._sanctioned(
            member, room, args.strip(" ").split(" ")
        )
        if mask.matches(self.identity(member)):
            # Addresses are checked at connect, before anyone is known to be
            # an operator: this ban would lock its author out.
            raise RefusedError(f"{mask.text} would ban you too; name someone else")
        await self._write(SERVER_SCOPE, [(gban_field(mask), sanction.encode())])
        self._server = None
        self._record(member, "gban", "", mask.text, sanction.reason, duration)
        lasting = (
            "until lifted" if duration is None else f"for {duration_text(duration)}"
        )
        text = f"{mask.text} is banned from this server {lasting}"
        member.send(Notice(_with_reason(text, sanction.reason)))
        await self._everywhere(
            member,
            Moderated("", "gban", member.nick, mask.text, sanction.reason, duration),
        )

    async def ungban(self, member: Member, room: Room, args: str) -> None:
        self._need_server_operator(member)
        text = args.strip(" ")
        mask = parse_mask(text)
        rules = await self._stored(SERVER_SCOPE)
        if mask is None or mask.text not in rules.bans:
            raise RefusedError(f"no server ban on {clean_text(text)[:40]}")
        await self._write(SERVER_SCOPE, [(gban_field(mask), None)])
        self._server = None
        self._record(member, "ungban", "", mask.text)
        member.send(Notice(f"{mask.text} is no longer banned from this server"))
        await self._everywhere(member, Moderated("", "ungban", member.nick, mask.text))

    async def gbans(self, member: Member, room: Room, args: str) -> None:
        self._need_server_operator(member)
        self._server = None  # the list is read from the store
        self._list(member, "ban", (await self._server_rules()).bans, "on this server")

    async def wall(self, member: Member, room: Room, args: str) -> None:
        self._need_server_operator(member)
        text = clean_text(args)[:_MAX_REASON]
        if not text:
            raise RefusedError("usage: /wall TEXT")
        self._record(member, "wall", "", "", text)
        await self._everywhere(member, Moderated("", "wall", member.nick, reason=text))

    async def modlog(self, member: Member, room: Room, args: str) -> None:
        arg = args.strip(" ")
        if arg and not (arg.isascii() and arg.isdigit() and int(arg) > 0):
            raise RefusedError("usage: /modlog [N]")
        count = int(arg) if arg else MODLOG_SHOWN
        everything = self.server_operator(member)
        if not everything:
            await self._need_operator(member, room)
        entries = []
        for raw in await self.store.records(1000 if not everything else count):
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if everything or room_key(entry.get("room", "")) == room.key:
                entries.append(entry)
        entries = entries[-count:]
        if not entries:
            member.send(Notice("No moderation actions yet"))
            return
        member.send(Notice(f"The last {len(entries)} moderation actions:"))
        for entry in entries:
            member.send(Notice("  " + _log_line(entry)))


_COMMANDS: dict[str, Callable[[Moderator, Member, Room, str], Awaitable[None]]] = {
    "op": Moderator.op,
    "deop": Moderator.deop,
    "voice": Moderator.voice,
    "devoice": Moderator.devoice,
    "kick": Moderator.kick,
    "ban": Moderator.ban,
    "unban": Moderator.unban,
    "bans": Moderator.bans,
    "mute": Moderator.mute,
    "unmute": Moderator.unmute,
    "mutes": Moderator.mutes,
    "mode": Moderator.mode,
    "invite": Moderator.invite,
    "modlog": Moderator.modlog,
    "kill": Moderator.kill,
    "gban": Moderator.gban,
    "ungban": Moderator.ungban,
    "gbans": Moderator.gbans,
    "wall": Moderator.wall,
}


#: The field a ban or a mute is stored under.
_SANCTION_FIELD = {"ban": ban_field, "mute": mute_field}


def _mask_of(who: Identity) -> Mask | None:
    """What a named user is banned or muted by: their account, else address."""
    if who.account is not None:
        return account_mask(who.account)
    return address_mask(who.host)


def _with_reason(text: str, reason: str) -> str:
    return f"{text}: {reason}" if reason else text


def _left(sanction: Sanction, now: float) -> str:
    assert sanction.until is not None
    return duration_text(sanction.until - now)


def _banned_text(room: str, ban: Sanction, now: float) -> str:
    text = f"{BANNED_FROM}{room}"
    if ban.until is not None:
        text += f" for {_left(ban, now)}"
    return _with_reason(text, ban.reason)


def _mode_change(old: str, new: str) -> str:
    added = "".join(m for m in new if m not in old)
    removed = "".join(m for m in old if m not in new)
    return (f"+{added}" if added else "") + (f"-{removed}" if removed else "")


def _log_line(entry: dict[str, object]) -> str:
    when = time.strftime(
        "%Y-%m-%d %H:%M", time.localtime(float(str(entry.get("ts", 0))))
    )
    room = f" #{entry['room']}" if entry.get("room") else ""
    line = f"{when}{room} {entry.get('actor')} {entry.get('action')}"
    if entry.get("target"):
        line += f" {entry['target']}"
    if entry.get("duration"):
        line += f" for {duration_text(float(str(entry['duration'])))}"
    if entry.get("reason"):
        line += f": {entry['reason']}"
    return line
