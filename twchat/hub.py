"""
The chat's rules: what users may do, and what each of them is told.

The hub knows nothing about sockets and nothing about where shared state
lives. Every transport registers its users here and calls the same
methods; every rule is written once, here, over a backend
(``twchat.backend``) that stores what is shared, in one process or in
Redis. What happens in a room comes back from the backend as events, in
the room's one order, and is delivered to the room's members connected
to this process.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable
from typing import TypeVar

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ._immutable import immutable
from .accounts import (
    NOW_REGISTERED,
    PASSWORD_CHANGED,
    TAKEN_OVER,
    TOO_MANY_FAILURES,
    WRONG_PASSWORD,
    Account,
    password_error,
)
from .accounts.auth import LoggedIn
from .accounts.hashing import BusyError
from .accounts.logins import Logins
from .backend import (
    Entered,
    IBackend,
    IListener,
    Profile,
    RoomEvent,
    UnavailableError,
    UnconfirmedError,
)
from .events import (
    Action,
    Chat,
    Error,
    Greeting,
    HistoryLine,
    Joined,
    Left,
    Moderated,
    Motd,
    NickPrompt,
    Notice,
    PasswordPrompt,
    Private,
    PrivateSent,
    RoomInfo,
    RoomList,
    Topic,
    Welcome,
)
from .lifecycle import Lifecycle
from .member import Member
from .moderation.memory import MemoryModeration
from .moderation.store import IModerationStore
from .moderator import SILENT, Moderator, Out
from .motd import MessageOfTheDay
from .nicknames import TAKEN, nick_error, nick_key
from .people import People
from .refused import TRY_AGAIN, RefusedError
from .room import HandOut, Later, PresencePolicy, Room, room_error, room_key
from .stats import Stats
from .text import clean_text

__all__ = [
    "LOGGED_IN_ELSEWHERE",
    "MAYBE_NOT_SENT",
    "NODE_LOST",
    "NOT_SENT",
    "SHUTTING_DOWN",
    "UNAVAILABLE",
    "WELCOME_NAMES",
    "Hub",
    "Waiting",
]

_T = TypeVar("_T")

#: What an action returns: None once done, or a Deferred that fires when
#: it is (Redis mode); the user's next lines wait for it, keeping their order.
Waiting = Deferred[None] | None

#: How many names the welcome line lists before "and N more".
WELCOME_NAMES = 30

UNAVAILABLE = f"the chat has lost contact with its Redis server; {TRY_AGAIN}"
NOT_SENT = (
    "the chat has lost contact with its Redis server; "
    f"your line was not sent, {TRY_AGAIN}"
)
#: Redis was lost while the line was on its way: it may have been stored
#: and seen, and saying "not sent" would have the user send it twice.
MAYBE_NOT_SENT = (
    "the chat lost contact with its Redis server as your line went out; "
    "others may not have seen it"
)
#: Leave reasons others read.
SHUTTING_DOWN = "server shutting down"
NODE_LOST = "their server stopped answering"
LOGGED_IN_ELSEWHERE = "logged in elsewhere"

ACCOUNTS_UNAVAILABLE = f"accounts cannot be checked right now; {TRY_AGAIN}"
BUSY = "the server is busy checking passwords; try again in a moment"
REGISTRATION_CLOSED = (
    "registration is closed on this server; an operator can register you"
)

_NOTHING_LEFT = "nothing left to send once control characters were removed"


@immutable
class _Asked:
    """A member the server asked for a password (the next line is it)."""

    nick: str
    new: bool


@implementer(IListener)
class Hub:
    """
    The users connected to this process and the rooms they are in.

    ``users`` maps nickname keys to registered members here; ``rooms``
    holds the rooms with a member here (or one on their way in). Every
    registered member is in exactly one room, ``member.room``.
    """

    log = Logger()

    def __init__(
        self,
        backend: IBackend,
        clock: IReactorTime,
        presence: PresencePolicy | None = None,
        default_room: str = "lobby",
        max_rooms: int = 100,
        history_replay: int = 20,
        lifecycle: Lifecycle | None = None,
        *,
        logins: Logins,
        moderation: IModerationStore | None = None,
        stats: Stats | None = None,
        later: Later | None = None,
        hand_out: HandOut | None = None,
        motd: MessageOfTheDay | None = None,
    ) -> None:
        self.backend = backend
        #: The message of the day (--motd), shown on arriving and by /motd.
        self.motd = motd
        #: Work for the end of this reactor turn: rooms hand out a turn's
        #: lines then (see ``Room``), and the turn's joins are logged.
        self._later: Later = later or (lambda work: clock.callLater(0, work))
        #: How rooms give many members the same bytes (None: a write each).
        self._hand_out = hand_out
        #: This turn's registrations, for its one log line: nick and peer.
        self._joins: list[tuple[str, str]] = []
        #: Counters for --metrics (rooms count their deliveries in it).
        self.stats = stats if stats is not None else Stats()
        #: Accounts: the store, the portal, the throttle, the policy.
        self.logins = logins
        self.users: dict[str, Member] = {}
        self.rooms: dict[str, Room] = {}
        #: Where everyone starts, and where /part leads; it never disappears.
        self.default_room = default_room.removeprefix("#")
        self.max_rooms = max_rooms
        self.history_replay = history_replay
        #: The server's; while it closes, people leave without notices.
        self.lifecycle = lifecycle if lifecycle is not None else Lifecycle()
        self._clock = clock
        self._presence = presence
        #: Connection ids (unique on every node) of registered members.
        self._conns: dict[str, Member] = {}
        self._conn_of: dict[Member, str] = {}
        self._serial = itertools.count(1)
        #: Connections between choosing a nickname and getting it.
        self._claiming: set[Member] = set()
        #: Connections whose next line is a password.
        self._asking: dict[Member, _Asked] = {}
        #: Before registering: the room and last history id a client resumes.
        self._resuming: dict[Member, tuple[str, int]] = {}
        #: Members in a room but not yet shown it (its lines wait for them):
        #: the room, its topic and its newest history id as they came in.
        self._entering: dict[Member, tuple[Room, str, int]] = {}
        #: Who is logged in to which account (guests are not here).
        self._account_of: dict[Member, LoggedIn] = {}
        #: What was last told of each registered member (``describe``); when
        #: they got their name and were last active are kept only here.
        self._profiles: dict[Member, Profile] = {}
        #: What bans, mutes and idle times are measured by (tests drive it).
        self.wall: IReactorTime = clock
        #: Roles and sanctions (the moderation rules), over their store.
        self.moderator = Moderator(
            self, moderation if moderation is not None else MemoryModeration()
        )
        #: Ignore lists, away messages, /whois.
        self.people = People(self)
        backend.attach(self)

    # Lifetime

    def start(self) -> None:
        self.backend.start()

    def close(self) -> None:
        """The server is stopping: rooms stop their timers."""
        for room in self.rooms.values():
            room.stop()

    def stop(self) -> Deferred[None]:
        """After the goodbyes: what was said reaches the disk (or Redis)."""
        return self.backend.stop()

    def find(self, nick: str) -> Member | None:
        """The member called ``nick`` connected here, if any."""
        return self.users.get(nick_key(nick))

    # Running actions that wait on the backend

    def background(
        self,
        member: Member,
        work: Awaitable[object],
        refusal: str = UNAVAILABLE,
        prompt: bool = False,
        unsure: str | None = None,
        line: bool = False,
    ) -> Waiting:
        """
        Run ``work``; if the shared state is out of reach, the member is told
        ``refusal`` (``unsure``, if given, when the work may have been done).
        ``line``: the work carries the user's line, which a refusal says
        did not go out.

        Returns None if it is already done (always, in one process).
        """

        async def run() -> None:
            try:
                await work
            except (UnavailableError, RefusedError) as e:
                unsent = line
                if isinstance(e, RefusedError):
                    text = str(e)
                elif unsure is not None and isinstance(e, UnconfirmedError):
                    text, unsent = unsure, False
                else:
                    text = refusal
                member.send(Error(text, unsent))
                if prompt and not member.nick and member not in self._asking:
                    member.send(NickPrompt())
            finally:
                if self._entering:
                    # Whatever stopped them being shown the room: its lines
                    # are not kept from them for ever.
                    self._shown(member)

        # Stepped here first: work that needs no wait (in one process,
        # nearly all) is done without a Deferred wrapped around it.
        coroutine = run()
        try:
            coroutine.send(None)
        except StopIteration:
            return None
        except BaseException:
            self._failed(Failure(), member)
            return None
        # It waits on a Deferred. Twisted drives the rest: being resumed
        # before that fires, ``Deferred.__await__`` only looks again.
        return Deferred.fromCoroutine(coroutine)

    def _log_join(self, nick: str, peer: str) -> None:
        # The joins of one reactor turn share a log line: in a storm of
        # arrivals twistd's text log, at about 60 µs and a write an event,
        # was a quarter of each registration's time.
        if not self._joins:
            self._later(self._log_joins)
        self._joins.append((nick, peer))

    def _log_joins(self) -> None:
        joins, self._joins = self._joins, []
        if len(joins) == 1:
            ((nick, peer),) = joins
            self.log.info("{nick} joined from {peer}", nick=nick, peer=peer)
        elif joins:
            self.log.info(
                "{count} joined: {who}",
                count=len(joins),
                who=", ".join(f"{nick} from {peer}" for nick, peer in joins),
                joins=joins,
            )

    def _failed(self, failure: Failure, member: Member) -> None:
        self.log.failure("handling a line of {nick}", failure, nick=member.nick)

    def _cut_off(
        self, member: Member, refusal: str = UNAVAILABLE, unsent: bool = False
    ) -> bool:
        """While the shared state is known to be away, say so instead of trying."""
        if self.backend.up:
            return False
        member.send(Error(refusal, unsent))
        return True

    # Local rooms

    def _local_room(self, name: str) -> Room:
        key = room_key(name)
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = Room(
                name,
                self._clock,
                self._presence,
                self.stats,
                self._later,
                self._hand_out,
            )
            self.moderator.room_here(room)
        return room

    def _vacate(self, room: Room) -> None:
        """A room with nobody here (nor on the way in) is forgotten here."""
        if not len(room) and not room.arriving and self.rooms.get(room.key) is room:
            room.stop()
            del self.rooms[room.key]
            self.moderator.room_gone(room)

    def room_of(self, member: Member) -> Room:
        room = member.room
        assert room is not None, "registered members are always in a room"
        return room

    async def _enter(
        self,
        member: Member,
        room: Room,
        came_from: str = "",
        limit: int | None = None,
    ) -> Entered | None:
        """Bring ``member`` into ``room``; None if they left meanwhile."""
        conn = self._conn_of[member]
        member.room = room
        room.arriving += 1
        try:
            entered = await self.backend.enter(
                conn, member.nick, room.name, came_from, limit
            )
        finally:
            room.arriving -= 1
        if entered is None:
            self._vacate(room)
            return None
        room.name = entered.name
        room.online = entered.online
        room.topic = entered.topic
        # Until their roll call and the room's past are sent (after the
        # waits below), the lines said from their entry on wait for them.
        room.add(member, held=True)
        self._entering[member] = (room, room.topic, self._newest(room))
        ignored = self.people.ignored.get(member)
        if ignored:
            room.set_ignores(member, ignored)
        self.describe(member)
        # Its operators, bans and modes, before the newcomer may speak.
        loading = self.moderator.entered(room)
        if loading is not None:
            await loading
        return entered

    def _show_room(self, member: Member, room: Room, after: int | None = None) -> None:
        """
        After the roll call: the topic, then the recent past (or every line
        kept after the id ``after``), as they were when the member came in;
        then the lines said since, and live.
        """
        topic, upto = room.topic, None
        entering = self._entering.get(member)
        if entering is not None and entering[0] is room:
            _, topic, upto = entering
        if topic:
            member.send(Topic(room.name, topic))
        self._replay(member, room, self.history_replay, after, upto)
        self._shown(member)

    def _shown(self, member: Member) -> None:
        """``member`` has been shown the room: its lines are theirs now."""
        entering = self._entering.pop(member, None)
        if entering is not None:
            entering[0].release(member)

    def _newest(self, room: Room) -> int:
        """The id of the room's newest history line (0: none)."""
        history = self.backend.history
        if history is None or not history.available:
            return 0
        newest = history.recent(room.key, 1)
        return newest[-1].seq if newest else 0

    # Registration and leaving

    def greet(self, member: Member) -> Waiting:
        """Say hello to a new connection and ask for its nickname."""
        return self.background(member, self._greet(member))

    async def _greet(self, member: Member) -> None:
        try:
            online = await self.backend.count()
        except UnavailableError:
            online = 0  # this node's users, then
        try:
            refusal = await self.moderator.server_ban(member)
        except RefusedError:
            refusal = None  # checked again when they choose a name
        if refusal is not None:
            self.log.info(
                "{peer} refused: {refusal}", peer=member.peer, refusal=refusal
            )
            member.end("", Error(refusal))
            return
        member.send(Greeting(max(online, len(self.users))))
        member.send(NickPrompt())

    def register(self, member: Member, nick: str) -> Waiting:
        """
        Give ``member`` the nickname ``nick`` and bring them into the room;
        a registered name asks for its password first.

        On refusal the member is told why and asked again.
        """
        error = nick_error(nick)
        if error is not None:
            member.send(Error(error))
            member.send(NickPrompt())
            return None
        if self._cut_off(member):
            member.send(NickPrompt())
            return None
        self._claiming.add(member)
        return self.background(member, self._choose(member, nick), prompt=True)

    async def _choose(self, member: Member, nick: str) -> None:
        """A guest name, an account's (its password next), or a new account."""
        account = await self._account(nick)
        if member not in self._claiming:
            return  # gone meanwhile
        if account is not None:
            self._claiming.discard(member)
            self._ask(member, account.name, new=False)
            return
        if self.find(nick) is not None:
            self._claiming.discard(member)
            raise RefusedError(_taken(nick))
        if self.logins.required:
            self._claiming.discard(member)
            if not self.logins.registration:
                raise RefusedError(_members_only(nick))
            self._ask(member, nick, new=True)
            return
        await self._register(member, nick)

    async def _register(self, member: Member, nick: str, login: bool = False) -> None:
        """Claim ``nick`` (a login has taken it already) and enter the room."""
        if not login:
            await self._admit(member)
        try:
            claimed = login or await self.backend.claim(nick)
        finally:
            waiting = member in self._claiming
            self._claiming.discard(member)
        if not waiting:
            if claimed:
                self.backend.release(nick)
            return  # they left meanwhile
        holder = self.find(nick)
        if login and holder is not None:
            self._take_from(holder)  # logged in twice at once: the last wins
        elif not claimed or holder is not None:
            member.send(Error(_taken(nick)))
            member.send(NickPrompt())
            return
        member.nick = nick
        self.users[nick_key(nick)] = member
        conn = f"{self.backend.node}.{next(self._serial)}"
        self._conns[conn] = member
        self._conn_of[member] = conn
        # Registered and last active now: one time (and one float) for both.
        now = self.wall.seconds()
        self._profiles[member] = Profile(
            nick, None, member.host, False, now, active=now
        )
        self._log_join(nick, member.peer)
        room = self._local_room(self.default_room)
        try:
            entered = await self._enter(member, room, limit=WELCOME_NAMES)
        except UnavailableError:
            if self.users.get(nick_key(nick)) is member:
                # Not in: back to choosing a nickname.
                conn = self._forget(member)
                member.room = None
                self._vacate(room)
                self.backend.leave(conn, nick, room.key, "")
                member.nick = ""
            raise
        if entered is None:
            return
        member.send(Welcome(nick, room.name, entered.online, entered.names))
        resume = self._resuming.pop(member, None)
        if resume is None:
            if self.motd is not None and self.motd.lines:
                member.send(Motd(self.motd.lines))  # not again on a reconnect
            self._show_room(member, room)
            return
        # A client back after a lost connection: to its room, with the
        # lines said since the last one it saw, and nothing twice.
        name, after = resume
        if room_key(name) == room.key:
            self._show_room(member, room, after)
            return
        try:
            await self._move(member, room, name, after=after)
        except RefusedError as e:
            member.send(Error(str(e)))
            self._show_room(member, room)

    async def _admit(self, member: Member) -> None:
        """Refused if banned from the server or the default room."""
        refusal = await self.moderator.server_ban(member)
        if refusal is None:
            refusal = await self.moderator.may_enter(
                member, room_key(self.default_room), self.default_room
            )
        if refusal is not None:
            self._claiming.discard(member)
            self.log.info(
                "{peer} refused: {refusal}", peer=member.peer, refusal=refusal
            )
            raise RefusedError(refusal)

    def _forget(self, member: Member) -> str:
        self._profiles.pop(member, None)
        self.people.forget(member)
        conn = self._conn_of.pop(member, "")
        self._conns.pop(conn, None)
        if self.users.get(nick_key(member.nick)) is member:
            del self.users[nick_key(member.nick)]
        return conn

    def leave(self, member: Member, reason: str = "") -> None:
        """Take a registered member out; everyone else is told why."""
        self._claiming.discard(member)
        self._asking.pop(member, None)
        self._resuming.pop(member, None)
        self._entering.pop(member, None)
        self._account_of.pop(member, None)
        if self.users.get(nick_key(member.nick)) is not member:
            return
        conn = self._forget(member)
        reason = SHUTTING_DOWN if self.lifecycle.closing else clean_text(reason)
        self.log.info("{nick} left: {reason}", nick=member.nick, reason=reason)
        room = self.room_of(member)
        member.room = None
        room.remove(member)
        self._vacate(room)
        self.backend.leave(conn, member.nick, room.key, reason)

    def rename(self, member: Member, new: str) -> Waiting:
        old = member.nick
        if new == old:
            member.send(Error(f"you are already called {old}"))
            return None
        error = nick_error(new)
        if error is not None:
            member.send(Error(error))
            return None
        if self._cut_off(member):
            return None
        return self.background(member, self._change(member, old, new))

    async def _change(self, member: Member, old: str, new: str) -> None:
        """``/nick``: the same name spelled anew, a guest name, or a login."""
        if nick_key(new) != nick_key(old):
            account = await self._account(new)
            if self.users.get(nick_key(old)) is not member:
                return  # gone meanwhile
            if account is not None:
                self._ask(member, account.name, new=False)
                return
            holder = self.find(new)
            if holder is not None:
                raise RefusedError(_taken(new))
            if self.logins.required:
                raise RefusedError(_members_only(new))
        await self._rename(member, old, new)

    async def _rename(
        self, member: Member, old: str, new: str, login: bool = False
    ) -> None:
        other_name = nick_key(new) != nick_key(old)
        if other_name and not login and not await self.backend.claim(new):
            member.send(Error(_taken(new)))
            return
        if self.users.get(nick_key(old)) is not member:
            if other_name:
                self.backend.release(new)
            return  # gone meanwhile
        holder = self.find(new)
        if login and holder is not None and holder is not member:
            self._take_from(holder)
        if other_name and not login:
            self._account_of.pop(member, None)  # a guest name: logged out
        del self.users[nick_key(old)]
        member.nick = new
        self.users[nick_key(new)] = member
        room = self.room_of(member)
        room.renamed(member, old)
        self.log.info("{old} is now known as {new}", old=old, new=new)
        renamed = self.backend.rename(self._conn_of[member], room.key, old, new)
        self.describe(member)
        await renamed

    def describe(self, member: Member, active: float | None = None) -> None:
        """
        What other nodes may learn of ``member`` (moderation, /whois), with
        when they were last ``active`` if that changed.
        """
        last = self._profiles.get(member)
        if last is None:
            return
        avatar = self._account_of.get(member)
        room = member.room
        profile = self._profiles[member] = Profile(
            member.nick,
            None if avatar is None else nick_key(avatar.name),
            member.host,
            avatar is not None and avatar.operator,
            last.since,
            "" if room is None else room.name,
            last.active if active is None else active,
            self.people.away.get(member, ""),
        )
        self.backend.describe(profile)

    def ignores_changed(self, member: Member) -> None:
        """``member``'s ignore list changed: their room skips them anew."""
        room = member.room
        if room is not None and member in room:
            room.set_ignores(member, self.people.ignored.get(member, {}))

    # Accounts

    async def _account(self, nick: str) -> Account | None:
        """The account called ``nick``; refused if accounts cannot be read."""
        return await self._stored(self.logins.store.get(nick))

    def _ask(self, member: Member, nick: str, new: bool) -> None:
        self._asking[member] = _Asked(nick, new)
        member.send(PasswordPrompt(nick, new))

    def asking_password(self, member: Member) -> bool:
        """Whether ``member``'s next line is a password."""
        return member in self._asking

    def line_refused(self, member: Member, why: str) -> None:
        """
        A line the connection could not take (too long, not UTF-8): why,
        then the prompt it was to answer, again, if there is one.
        """
        asked = self._asking.get(member)
        # At a prompt it was a nickname or a password, not a line for others.
        member.send(Error(why, unsent=bool(member.nick) and asked is None))
        if asked is not None:
            member.send(PasswordPrompt(asked.nick, asked.new))
        elif not member.nick:
            member.send(NickPrompt())

    async def profile(self, nick: str) -> Profile | None:
        """What is known of whoever is called ``nick``, on any node."""
        return await self.backend.profile(nick)

    def conn_of(self, member: Member) -> str:
        """The connection id of a registered member (unique on every node)."""
        return self._conn_of[member]

    async def account_named(self, nick: str) -> Account | None:
        """The account called ``nick``, if there is one."""
        return await self._account(nick)

    def account_of(self, member: Member) -> LoggedIn | None:
        """The account ``member`` is logged in to (None for a guest)."""
        return self._account_of.get(member)

    def password(self, member: Member, password: str) -> Waiting:
        """
        The answer to a password prompt: an empty line takes it back; at login
        a wrong (or unchecked) one is asked for again.
        """
        asked = self._asking.pop(member)
        if not password:
            if member.nick:  # a /nick to an account, taken back
                member.send(Notice(f"no password given: you are still {member.nick}"))
            else:
                member.send(NickPrompt())
            return None
        if asked.new:
            error = password_error(password)
            if error is not None:
                member.send(Error(error))
                self._ask(member, asked.nick, new=True)
                return None
            work = self._create(member, asked.nick, password)
        else:
            work = self._login(member, asked.nick, password)
        if not member.nick:
            self._claiming.add(member)
        return self.background(member, work, prompt=True)

    def _here(self, member: Member) -> bool:
        return member in self._claiming or member in self._conn_of

    def _locked(self, member: Member, nick: str) -> str | None:
        """Why a password for ``nick`` is not even checked now, if it is not."""
        throttle = self.logins.throttle
        wait = throttle.locked(_account_key(nick))
        if wait:
            why = f"{TOO_MANY_FAILURES} for {nick}; try again in {_seconds(wait)}"
        else:
            wait = throttle.locked(_address_key(member))
            if not wait:
                return None
            why = (
                f"{TOO_MANY_FAILURES} from your address; try again in {_seconds(wait)}"
            )
        self.stats.password_checks["locked"] += 1
        return why

    async def _check(self, member: Member, nick: str, password: str) -> LoggedIn:
        """The account, if ``password`` is its; failures are counted and logged."""
        try:
            avatar = await self.logins.login(nick, password)
        except UnauthorizedLogin:
            self.logins.throttle.failed(_account_key(nick))
            self.logins.throttle.failed(_address_key(member))
            self.stats.password_checks["wrong"] += 1
            # Never the password: only who tried, and from where.
            self.log.warn(
                "failed login for {nick} from {peer}", nick=nick, peer=member.peer
            )
            raise RefusedError(f"{WRONG_PASSWORD}{nick}") from None
        except BusyError:
            raise RefusedError(BUSY) from None
        except Exception as e:
            self.log.error("accounts unavailable: {error}", error=e)
            raise RefusedError(ACCOUNTS_UNAVAILABLE) from e
        self.logins.throttle.succeeded(_account_key(nick))
        self.stats.password_checks["ok"] += 1
        return avatar

    async def _login(self, member: Member, nick: str, password: str) -> None:
        try:
            locked = self._locked(member, nick)
            if locked is not None:
                raise RefusedError(locked)  # not even checked
            avatar = await self._check(member, nick, password)
        except RefusedError as e:
            if member.nick or member not in self._claiming:
                raise  # a /nick to an account: the error is all
            # At the prompt the password is asked again, not the nickname:
            # typed once more at a nickname prompt, it would be a name all see.
            self._claiming.discard(member)
            member.send(Error(str(e)))
            self._ask(member, nick, new=False)
            return
        if not self._here(member):
            return
        self.log.info(
            "{nick} logged in from {peer}", nick=avatar.name, peer=member.peer
        )
        await self._take(member, avatar)

    async def _take(self, member: Member, avatar: LoggedIn) -> None:
        """Take the account's name from whoever holds it, and use it."""
        name = avatar.name
        holder = self.find(name)
        if holder is not None and holder is not member:
            self._take_from(holder)
        self._account_of[member] = avatar
        if not member.nick:
            try:
                await self._admit(member)
            except RefusedError:
                self._account_of.pop(member, None)
                raise
        await self.backend.takeover(name, LOGGED_IN_ELSEWHERE)
        if not self._here(member):
            self._account_of.pop(member, None)
            self.backend.release(name)
            return
        if member.nick:
            await self._rename(member, member.nick, name, login=True)
        else:
            await self._register(member, name, login=True)
        if self._account_of.get(member) is avatar:
            await self.people.logged_in(member, nick_key(name))

    def _take_from(self, holder: Member) -> None:
        """Someone logged in to ``holder``'s account from another connection."""
        holder.end(
            LOGGED_IN_ELSEWHERE,
            Notice(f"{holder.nick}{TAKEN_OVER}"),
        )

    async def _create(self, member: Member, nick: str, password: str) -> None:
        """A new account chosen at the prompt (``--require-account``)."""
        await self._new_account(member, nick, password)
        if self._here(member):
            # Said first: a name chosen at the prompt made an account.
            member.send(Notice(_registered(nick)))
            await self._take(member, LoggedIn(nick))

    async def _new_account(self, member: Member, nick: str, password: str) -> None:
        account = Account(nick, await self._hash(password), created=time.time())
        if not await self._stored(self.logins.store.add(account)):
            raise RefusedError(f"{nick} is registered already")
        self.stats.accounts_created += 1
        self.log.info("{nick} registered from {peer}", nick=nick, peer=member.peer)

    async def _hash(self, password: str) -> str:
        try:
            return await self.logins.hasher.hash(password)
        except BusyError:
            raise RefusedError(BUSY) from None

    async def _stored(self, work: Deferred[_T]) -> _T:
        """What the account store answers; refused if it cannot be reached."""
        try:
            return await work
        except Exception as e:
            self.log.error("accounts unavailable: {error}", error=e)
            raise RefusedError(ACCOUNTS_UNAVAILABLE) from e

    def register_account(self, member: Member, password: str) -> Waiting:
        """``/register PASSWORD``: the guest's name becomes an account."""
        nick = member.nick
        if member in self._account_of:
            member.send(Error(f"you are logged in to {nick} already"))
            return None
        if not self.logins.registration:
            member.send(Error(REGISTRATION_CLOSED))
            return None
        error = password_error(password)
        if error is not None:
            member.send(Error(error))
            return None
        return self.background(member, self._register_account(member, nick, password))

    async def _register_account(self, member: Member, nick: str, password: str) -> None:
        await self._new_account(member, nick, password)
        if self.users.get(nick_key(nick)) is member:
            self._account_of[member] = LoggedIn(nick)
            self.describe(member)
            member.send(Notice(_registered(nick)))

    def change_password(self, member: Member, old: str, new: str) -> Waiting:
        """``/password OLD NEW``."""
        avatar = self._account_of.get(member)
        if avatar is None:
            member.send(
                Error("you are not logged in to an account; /register makes one")
            )
            return None
        locked = self._locked(member, avatar.name)
        if locked is not None:
            member.send(Error(locked))
            return None
        error = password_error(new)
        if error is not None:
            member.send(Error(error))
            return None
        return self.background(member, self._change_password(member, avatar, old, new))

    async def _change_password(
        self, member: Member, avatar: LoggedIn, old: str, new: str
    ) -> None:
        await self._check(member, avatar.name, old)
        hashed = await self._hash(new)
        if not await self._stored(self.logins.store.set_hash(avatar.name, hashed)):
            raise RefusedError(f"{avatar.name} is not registered any more")
        self.log.info("{nick} changed their password", nick=avatar.name)
        member.send(Notice(PASSWORD_CHANGED))

    # Saying things

    def say(self, member: Member, text: str) -> Waiting:
        """Relay a chat line to everyone else in the room (no echo)."""
        return self._line(member, "chat", text, _NOTHING_LEFT)

    def act(self, member: Member, text: str) -> Waiting:
        return self._line(member, "action", text, "usage: /me ACTION")

    def _line(self, member: Member, kind: str, text: str, empty: str) -> Waiting:
        text = clean_text(text)
        if not text:
            member.send(Error(empty))
            return None
        if self._cut_off(member, NOT_SENT, unsent=True):
            return None
        room = member.room
        assert room is not None, "registered members are always in a room"
        refusal = self.moderator.may_speak(member, room)
        if refusal is not None:
            member.send(Error(refusal, unsent=True))
            return None
        now = self.wall.seconds()
        if now - self._profiles[member].active >= 60:
            self.describe(member, active=now)  # others' /whois: idle to the minute
        # The user goes on typing; a line that did not go out is told
        # (not_sent).
        self.backend.post(self._conn_of[member], room.key, kind, member.nick, text)
        return None

    def tell(self, member: Member, target: str, text: str) -> Waiting:
        """A private message: only ``target`` receives it, wherever they are."""
        if nick_key(target) == nick_key(member.nick):
            member.send(Error("you cannot send a private message to yourself"))
            return None
        text = clean_text(text)
        if not text:
            member.send(Error(_NOTHING_LEFT))
            return None
        return self.background(
            member,
            self._tell(member, target, text),
            NOT_SENT,
            unsure=MAYBE_NOT_SENT,
            line=True,
        )

    async def _tell(self, member: Member, target: str, text: str) -> None:
        receiver = await self.backend.tell(member.nick, target, text)
        if receiver is None:
            member.send(Error(f"no such user: {clean_text(target)}", unsent=True))
            return
        member.send(PrivateSent(receiver, text))
        here = self.find(receiver)
        if here is not None:
            away = self.people.away.get(here, "")
        else:
            try:
                found = await self.backend.profile(receiver)
            except UnavailableError:
                found = None  # delivered; whether they are away is unknown
            away = "" if found is None else found.away
        if away:
            member.send(Notice(f"{receiver} is away: {away}"))

    # Rooms

    def who(self, member: Member, name: str = "") -> Waiting:
        """Who is in your room, or in the room called ``name``."""
        key = room_key(name) if name else self.room_of(member).key
        if self._cut_off(member):
            return None
        return self.background(member, self._who(member, key, name))

    async def _who(self, member: Member, key: str, asked: str) -> None:
        found = await self.backend.roster(key)
        if found is None:
            self._no_such_room(member, asked)
            return
        name, names = found  # in key order, as the backend keeps them
        operators = await self.moderator.operators(key, names)
        member.send(RoomInfo(name, len(names), names, operators))

    def _no_such_room(self, member: Member, name: str) -> None:
        bare = name.removeprefix("#")
        member.send(Error(f"no such room: #{clean_text(bare)[:40]}"))

    def join(self, member: Member, name: str) -> Waiting:
        """Move ``member`` to the room ``name``, creating it if need be."""
        error = room_error(name)
        if error is not None:
            member.send(Error(error))
            return None
        here = self.room_of(member)
        if room_key(name) == here.key:
            member.send(Error(f"you are already in #{here.name}"))
            return None
        if self._cut_off(member):
            return None
        return self.background(member, self._move(member, here, name))

    async def _move(
        self,
        member: Member,
        here: Room,
        name: str,
        check: bool = True,
        after: int | None = None,
    ) -> None:
        if check:
            refusal = await self.moderator.may_enter(member, room_key(name), name)
            if refusal is not None:
                raise RefusedError(refusal)
            if member.room is not here:
                return  # moved (kicked) meanwhile
        # The room limit and the room's creation are one step, for all nodes.
        known = await self.backend.reserve(name, self.max_rooms)
        if known is None:
            member.send(
                Error(f"too many rooms (max {self.max_rooms}); join one that exists")
            )
            return
        if member.room is not here:
            self.backend.unreserve(room_key(known))  # gone meanwhile
            return
        target = self._local_room(known)
        here.remove(member)
        self._vacate(here)
        self.backend.leave(
            self._conn_of[member], member.nick, here.key, "", target.name, free=False
        )
        try:
            entered = await self._enter(member, target, came_from=here.name)
        except UnavailableError:
            if self.users.get(nick_key(member.nick)) is member:
                # Somewhere to be: the backend writes them into the room's
                # directory once it is reachable again.
                target.add(member)
            else:
                self._vacate(target)
            raise
        if entered is None:
            return
        names = entered.names
        operators = await self.moderator.operators(target.key, names)
        member.send(
            RoomInfo(target.name, entered.online, names, operators, entered=True)
        )
        self._show_room(member, target, after)
        await self.moderator.arrived(member, target, entered.online)

    def part(self, member: Member) -> Waiting:
        """Back to the default room."""
        if self.room_of(member).key == room_key(self.default_room):
            member.send(Error(f"you are already in #{self.default_room}"))
            return None
        return self.join(member, self.default_room)

    def list_rooms(self, member: Member) -> Waiting:
        if self._cut_off(member):
            return None
        return self.background(member, self._list_rooms(member))

    async def _list_rooms(self, member: Member) -> None:
        rooms = await self.backend.rooms()
        rooms.sort(key=lambda room: room_key(room[0]))
        member.send(RoomList(tuple(rooms)))

    def topic(self, member: Member, text: str) -> Waiting:
        """Show your room's topic, or set it (everyone in the room is told)."""
        room = self.room_of(member)
        if not text.strip():
            member.send(Topic(room.name, room.topic))
            return None
        text = clean_text(text)
        if not text:
            member.send(Error(_NOTHING_LEFT))
            return None
        refusal = self.moderator.may_set_topic(member, room)
        if refusal is not None:
            member.send(Error(refusal))
            return None
        if self._cut_off(member):
            return None
        self.log.info(
            "{nick} set the topic of #{room}", nick=member.nick, room=room.name
        )
        conn = self._conn_of[member]
        return self.background(
            member, self.backend.set_topic(conn, room.key, member.nick, text)
        )

    # History

    def _replay(
        self,
        member: Member,
        room: Room,
        count: int,
        after: int | None = None,
        upto: int | None = None,
    ) -> int:
        """
        Send the room's last ``count`` lines as history, or with ``after``
        every line kept whose id is greater; with ``upto``, none newer.
        Returns how many were sent.

        From memory and synchronously, right before the member gets the
        lines said since ``upto`` (held for them) and live ones: nothing
        twice, nothing missing.
        """
        history = self.backend.history
        if history is None or not history.available:
            return 0
        ignoring = member in self.people.ignored
        entries = None
        if after is None and not ignoring:
            # Most often the last lines are the ones: no filter to run.
            entries = history.recent(room.key, count)
            if upto is not None and entries and entries[-1].seq > upto:
                entries = None  # some were said while they were on their way in
        if entries is None:
            entries = [
                e
                for e in history.recent(room.key, history.keep)
                if (after is None or after < e.seq)
                # Said since ``upto``: theirs as live lines.
                and (upto is None or e.seq <= upto)
                # Lines of those they ignore reach them neither live nor
                # from the past; topics are the room's, and shown.
                and not (
                    ignoring
                    and e.kind != "topic"
                    and self.people.ignores(member, e.sender)
                )
            ]
            if after is None:
                entries = entries[-count:]
        for entry in entries:
            member.send(
                HistoryLine(
                    room.name, entry.ts, entry.kind, entry.sender, entry.text, entry.seq
                )
            )
        return len(entries)

    def resume(self, member: Member, room: str, after: int) -> None:
        """
        Before registering: a client back after a lost connection asks to
        return to ``room`` and to be shown the lines after the id ``after``.
        """
        error = room_error(room)
        if error is not None:
            member.send(Error(error))
            return
        self._resuming[member] = (room.removeprefix("#"), after)

    def show_motd(self, member: Member) -> None:
        """``/motd``: the message of the day again."""
        if self.motd is None or not self.motd.lines:
            member.send(Notice("This server has no message of the day"))
            return
        member.send(Motd(self.motd.lines))

    def show_history(self, member: Member, count: int) -> Waiting:
        """``/history [N]``: the last N lines of your room."""
        room = self.room_of(member)
        history = self.backend.history
        if history is None:
            member.send(Error("history is turned off on this server"))
            return None
        if not history.available:
            member.send(Error("history is unavailable right now"))
            return None
        count = min(count, history.keep)
        if not history.recent(room.key, 1):
            member.send(Notice(f"No history in #{room.name} yet"))
            return None
        if not self._replay(member, room, count):
            member.send(
                Notice(f"No history in #{room.name} from anyone you do not ignore")
            )
        return None

    # What the backend tells us (IListener)

    def room_event(self, room: str, event: RoomEvent, origin: str) -> None:
        if self.lifecycle.closing:
            return
        here = self.rooms.get(room)
        if here is None:
            return
        kind = type(event)
        if kind is Chat or kind is Action:
            assert isinstance(event, Chat | Action)
            deaf = here.ignoring.get(nick_key(event.nick)) if here.ignoring else None
            here.broadcast(event, exclude=self._conns.get(origin), deaf=deaf)
        elif kind is Joined:
            assert isinstance(event, Joined)
            here.announce_join(event, exclude=self._conns.get(origin))
        elif kind is Left:
            assert isinstance(event, Left)
            here.announce_leave(event)
        elif kind is Moderated:
            assert isinstance(event, Moderated)
            if event.action not in SILENT:
                here.broadcast(event)
            for out in self.moderator.heard(here, event):
                self._send_out(here, out)
        else:
            if isinstance(event, Topic):
                here.topic = event.text
            here.broadcast(event)

    def _send_out(self, room: Room, out: Out) -> None:
        """Kicked or banned: out of the room, or from the default room, away."""
        member = out.member
        if member.room is not room:
            return
        if out.disconnect or room.key == room_key(self.default_room):
            member.end(out.reason, Error(out.told))
            return
        member.send(Error(out.told))
        self.background(
            member, self._move(member, room, self.default_room, check=False)
        )

    def private(self, to: str, event: Private) -> None:
        receiver = self.users.get(to)
        if receiver is not None and not self.people.ignores(receiver, event.sender):
            receiver.send(event)

    def not_sent(self, conn: str, sure: bool) -> None:
        member = self._conns.get(conn)
        if member is not None:
            member.send(Error(NOT_SENT if sure else MAYBE_NOT_SENT, unsent=sure))

    def name_lost(self, conn: str) -> None:
        """Another node holds this name now (it expired during an outage)."""
        member = self._conns.get(conn)
        if member is None:
            return
        member.send(
            Error(
                f"your nickname {member.nick} was taken on another server while "
                "this one had lost contact with Redis; reconnect with another name"
            )
        )
        member.quit("nickname taken elsewhere")

    def taken_over(self, conn: str) -> None:
        """Someone logged in to this member's account on another node."""
        member = self._conns.get(conn)
        if member is not None:
            self._take_from(member)


def _members_only(nick: str) -> str:
    return f"{nick} is not registered, and only registered users may chat here"


def _account_key(nick: str) -> str:
    return f"account:{nick_key(nick)}"


def _address_key(member: Member) -> str:
    return f"address:{member.host}"


def _seconds(count: int) -> str:
    return f"{count} second{'' if count == 1 else 's'}"


def _taken(nick: str) -> str:
    return f"nickname {nick}{TAKEN}"


def _registered(nick: str) -> str:
    return f"{nick}{NOW_REGISTERED}"
