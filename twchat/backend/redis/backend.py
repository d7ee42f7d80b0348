"""
The Redis backend: the shared state of several nodes, in Redis.

A room's events are not handed to its members directly: they go into
the room's Redis stream, and every node delivers what it reads back from
the streams of the rooms its users are in, its own users' lines
included, so everyone everywhere sees one order. Who is online, in which
room, under which nickname, lives in Redis; the liveness service renews
this node's claims and clears away the users of nodes that stopped.

While Redis cannot be reached, every call fails with ``UnavailableError`` at
once (``up`` is False); leaves are kept and published once it is back. A
call that was on its way when Redis was lost fails with
``UnconfirmedError``: it may have been carried out.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.exceptions import RedisError
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ...events import Moderated, Private
from ...nicknames import nick_key
from ...room import room_key
from ...stats import WriteStats
from .. import (
    Entered,
    IBackend,
    IListener,
    Profile,
    UnavailableError,
    UnconfirmedError,
)
from ..roster import Roster
from .codec import (
    HISTORY_KINDS,
    KIND,
    NICK,
    OLD,
    ONLINE,
    TEXT,
    chat_fields,
    decode,
    decode_eviction,
    decode_private,
    eviction_fields,
    moderated_fields,
    private_fields,
    topic_fields,
)
from .history import StreamHistory
from .link import Command, Entry, RedisLink, UnansweredError
from .liveness import Liveness
from .store import NODE_TTL, STREAM_MAX, Keys, Store, entry_number

__all__ = ["PRELOAD", "RedisBackend"]

#: Entries read from a stream's end when a node starts following it.
PRELOAD = 500

_T = TypeVar("_T")


def _change(roster: Roster, gone: str, came: str) -> None:
    """``gone`` left (or was renamed), ``came`` came (or is the new name)."""
    if gone:
        roster.remove(nick_key(gone))
    if came:
        roster.add(nick_key(came), came)


@dataclass(eq=False)
class _Arrival:
    """Someone on their way into a room, until their join entry is read."""

    conn: str
    nick: str
    came_from: str
    #: How many names (in key order) the newcomer is shown; None: all.
    limit: int | None = None
    done: Deferred[Entered | None] = field(default_factory=Deferred)
    #: Their join entry has been queued: a later leave must be published.
    queued: bool = False


@dataclass(eq=False)
class _Followed:
    """A room this node reads, because someone here is in it (or arriving)."""

    key: str
    name: str
    topic: str = ""
    #: People in the room on every node, as of the last entry read...
    online: int = 0
    #: ...and who they are: read with the stream's position when the node
    #: starts following, then kept by the joins, leaves and renames read.
    #: A newcomer is shown it as it stands when their join entry is read.
    roster: Roster = field(default_factory=Roster)
    #: While the roster is read anew (after an outage): the changes read
    #: meanwhile, replayed onto what Redis answers.
    recording: list[tuple[str, str]] | None = None
    #: Connections here that are in the room.
    conns: set[str] = field(default_factory=set)
    pending: dict[str, _Arrival] = field(default_factory=dict)
    #: Fires once the node reads the room's stream.
    following: asyncio.Future[None] | None = None


@dataclass(eq=False)
class _Local:
    """A registered user of this node, as the directory should show them."""

    nick: str
    room: str
    #: Their join is in Redis (or they are being brought back in).
    published: bool = False
    #: A login elsewhere took their name (and may have told their leave).
    evicted: bool = False


@implementer(IBackend)
class RedisBackend:
    """The backend of one node among several sharing Redis at ``url``."""

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        url: str,
        default_room: str = "lobby",
        lost_reason: str = "",
        keep: int = 100,
        ttl: int = NODE_TTL,
        stream_max: int = STREAM_MAX,
        max_age: float = 0.0,
        keys: Keys | None = None,
    ) -> None:
        self.node = f"{os.uname().nodename}.{os.getpid()}.{secrets.token_hex(3)}"
        self.keys = keys if keys is not None else Keys()
        #: None with --no-history (keep=0): streams still order the rooms.
        self.history = StreamHistory(keep) if keep else None
        self._default = room_key(default_room)
        self._default_name = default_room.removeprefix("#")
        self.link = RedisLink(
            url,
            self.keys.inbox(self.node),
            self._deliver,
            self._recovered,
            name=f"twchat-{self.node}",
        )
        self.store = Store(self.link.client, self.keys, self.node, ttl, stream_max)
        self.liveness = Liveness(
            clock,
            self.link,
            self.store,
            self._names,
            self._name_lost,
            self._back_from_the_dead,
            lost_reason,
            self._default,
            max_age,
        )
        self._listener: IListener | None = None
        self._local: dict[str, _Local] = {}
        #: Nickname key -> conn of this node's users.
        self._here: dict[str, str] = {}
        self._rooms: dict[str, _Followed] = {}
        self._by_stream: dict[str, _Followed] = {}
        #: Leaves that could not be published: published on recovery.
        self._unsent: list[tuple[str, str, str, str, str, bool, bool]] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        #: Re-asserting presence after first contact or an outage, if under way.
        self._recovery: asyncio.Future[Any] | None = None
        #: The head count being asked for, if it is (see ``count``).
        self._counting: asyncio.Future[int] | None = None

    shared = True

    @property
    def up(self) -> bool:
        return self.link.up

    @property
    def writes(self) -> WriteStats:
        writes: WriteStats = self.link.writes
        return writes

    def probe(self) -> Deferred[float]:
        return Deferred.fromFuture(asyncio.ensure_future(self.link.ping()))

    def count(self) -> Deferred[int]:
        # Greetings that come together share one question: a crowd arriving
        # asked Redis every room's size once per connection.
        counting = self._counting
        if counting is None or counting.done():
            if not self.link.up:
                return fail(UnavailableError("Redis is unreachable"))
            counting = self._counting = self._spawn(self._asked(self.store.everyone()))
        return Deferred.fromFuture(asyncio.shield(counting))

    # Plumbing

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run ``work`` in the background, keeping it referenced."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _ask(self, work: Coroutine[Any, Any, _T]) -> Deferred[_T]:
        """``work`` as a Deferred; Redis errors become ``UnavailableError``."""

        if not self.link.up:
            work.close()  # never started
            return fail(UnavailableError("Redis is unreachable"))
        return Deferred.fromFuture(self._spawn(self._asked(work)))

    async def _asked(self, work: Awaitable[_T]) -> _T:
        try:
            return await work
        except (RedisError, OSError) as e:
            self.link.lost(e)
            # A write that went out and got no answer may have been done.
            unsure = isinstance(e, UnansweredError)
            raise (UnconfirmedError if unsure else UnavailableError)(str(e)) from e

    async def _in_order(self, command: Command) -> Any:
        """``command``'s reply, sent after every write queued before it."""
        return await self.link.write(command)

    def _names(self) -> list[tuple[str, str]]:
        return [(conn, local.nick) for conn, local in self._local.items()]

    def _name_lost(self, conn: str) -> None:
        if self._listener is not None and conn in self._local:
            self._listener.name_lost(conn)

    # Lifetime

    def attach(self, listener: IListener) -> None:
        self._listener = listener

    def start(self) -> None:
        """Connect; the node announces itself once Redis answers."""
        self.link.start()
        self.liveness.startService()

    def stop(self) -> Deferred[None]:
        """After the goodbyes: publish the leaves, retire the node."""

        async def retire() -> None:
            await self.liveness.stopService()
            try:
                await asyncio.wait_for(self._retire(), 5.0)
            except (TimeoutError, RedisError, OSError) as e:
                self.log.warn("could not retire from Redis: {error}", error=e)
            await self.link.close()
            recovery = self._recovery
            if recovery is not None and not recovery.done():
                # Still re-asserting (Redis came back just now): that ends
                # with the node, not with the event loop under it.
                recovery.cancel()
                await asyncio.gather(recovery, return_exceptions=True)

        return Deferred.fromFuture(asyncio.ensure_future(retire()))

    async def _retire(self) -> None:
        await self.link.drained()
        await self.store.retire()

    # Names

    def claim(self, nick: str) -> Deferred[bool]:
        return self._ask(self._in_order(self.store.claim(nick))).addCallback(bool)

    def release(self, nick: str) -> None:
        self.link.send(self.store.release(nick))

    def takeover(self, nick: str, reason: str) -> Deferred[None]:
        return self._ask(self._takeover(nick, reason))

    async def _takeover(self, nick: str, reason: str) -> None:
        old = await self.link.write(self.store.take(nick))
        if not old or old == self.node:
            return  # free, or ours: the hub has taken care of its own
        # The eviction first: their node closes the connection before it
        # reads the leave below, so they do not read their own leave.
        self.link.send(self.store.deliver(old, eviction_fields(nick_key(nick))))
        found = await self.store.whereabouts(old, nick)
        if found is not None:
            room, spelled = found
            # Told at once, even if their node is slow to answer; whichever
            # of the two leaves comes first is the one told.
            await self.link.write(
                self.store.leave(
                    "",
                    spelled,
                    room,
                    reason,
                    "",
                    self._default,
                    free=False,
                    node=old,
                    must_hold=True,
                )
            )

    # Rooms

    def describe(self, profile: Profile) -> None:
        self.link.send(self.store.describe(profile))

    def profile(self, nick: str) -> Deferred[Profile | None]:
        return self._ask(self.store.profile(nick))

    def reserve(self, name: str, limit: int) -> Deferred[str | None]:
        reserve = self.store.reserve(room_key(name), name.removeprefix("#"), limit)
        return self._ask(self._in_order(reserve))

    def unreserve(self, room: str) -> None:
        self.link.send(self.store.unreserve(room, self._default))

    def _followed(self, key: str, name: str) -> _Followed:
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = _Followed(key, name)
            self._by_stream[self.keys.stream(key)] = room
        return room

    def _unfollow_if_unused(self, room: _Followed) -> None:
        """Stop reading a room nobody here is in (or on the way into)."""
        if room.conns or room.pending:
            return
        stream = self.keys.stream(room.key)
        self.link.unfollow(stream)
        if self.history is not None:
            self.history.drop(room.key)
        self._rooms.pop(room.key, None)
        self._by_stream.pop(stream, None)

    async def _follow(self, room: _Followed) -> None:
        """Start reading the room's stream (history first), once."""
        if room.following is None:
            room.following = asyncio.get_event_loop().create_future()
            following = room.following
            try:
                newest, topic, members = await self.store.opening(room.key, PRELOAD)
            except BaseException as e:
                room.following = None
                following.set_exception(e)
                following.exception()  # retrieved: others get it by awaiting
                raise
            if self.history is not None:
                self.history.load(room.key, newest)
            room.topic = topic
            room.roster = Roster(members)
            self.link.follow(
                self.keys.stream(room.key), newest[0][0] if newest else "0-0"
            )
            # Wake the reader so that its next XREAD includes the stream.
            self.link.send(self.store.wake())
            following.set_result(None)
        await asyncio.shield(room.following)

    def enter(
        self,
        conn: str,
        nick: str,
        room: str,
        came_from: str = "",
        limit: int | None = None,
    ) -> Deferred[Entered | None]:
        key = room_key(room)
        followed = self._followed(key, room.removeprefix("#"))
        self._local[conn] = _Local(nick, key)
        self._here[nick_key(nick)] = conn
        arrival = _Arrival(conn, nick, came_from, limit)
        followed.pending[conn] = arrival
        self._spawn(self._prepare(followed, arrival))
        return arrival.done

    async def _prepare(self, room: _Followed, arrival: _Arrival) -> None:
        """Read the room, then queue the join entry; done once it is read."""
        conn = arrival.conn
        try:
            await self._follow(room)
            if room.pending.get(conn) is not arrival:
                return  # they left meanwhile
            arrival.queued = True
            self._local[conn].published = True
            await self.link.write(
                self.store.join(
                    conn, arrival.nick, room.key, room.name, arrival.came_from
                )
            )
        except (RedisError, OSError) as e:
            self.link.lost(e)
            if room.pending.get(conn) is arrival:
                del room.pending[conn]
                # Counted in: written to the directory once Redis is back.
                room.conns.add(conn)
                local = self._local.get(conn)
                if local is not None:
                    local.published = False
            if not arrival.done.called:
                arrival.done.errback(Failure(UnavailableError(str(e))))

    def _arrived(self, room: _Followed, arrival: _Arrival) -> None:
        """Their join entry was read: the room as they find it."""
        room.conns.add(arrival.conn)
        names = room.roster.names(arrival.limit)
        arrival.done.callback(Entered(room.name, room.online, names, room.topic))

    def leave(
        self,
        conn: str,
        nick: str,
        room: str,
        reason: str,
        went_to: str = "",
        free: bool = True,
    ) -> None:
        local = self._local.pop(conn, None)
        if free:
            self.link.send(self.store.forget(nick))
        published = local is not None and local.published
        evicted = local is not None and local.evicted
        if self._here.get(nick_key(nick)) == conn:
            del self._here[nick_key(nick)]
        followed = self._rooms.get(room)
        if followed is not None:
            followed.conns.discard(conn)
            arrival = followed.pending.pop(conn, None)
            if arrival is not None:
                published = arrival.queued
                if not arrival.done.called:
                    arrival.done.callback(None)
            self._unfollow_if_unused(followed)
        if not published:
            if free:
                self.release(nick)
            else:
                self.unreserve(room)
            return
        self._leave_later(conn, nick, room, reason, went_to, free, evicted)

    def _leave_later(
        self,
        conn: str,
        nick: str,
        room: str,
        reason: str,
        went_to: str,
        free: bool,
        must_hold: bool = False,
    ) -> None:
        """Publish a leave now, or as soon as Redis is back."""
        command = self.store.leave(
            conn, nick, room, reason, went_to, self._default, free, must_hold=must_hold
        )
        future = self.link.write(command)

        def done(f: asyncio.Future[Any]) -> None:
            if f.exception() is not None:
                self._unsent.append(
                    (conn, nick, room, reason, went_to, free, must_hold)
                )

        future.add_done_callback(done)

    def rename(self, conn: str, room: str, old: str, new: str) -> Deferred[None]:
        local = self._local.get(conn)
        if local is not None:
            local.nick = new
        self._here.pop(nick_key(old), None)
        self._here[nick_key(new)] = conn
        self.link.send(self.store.forget(old))
        return self._ask(self._write(self.store.rename(conn, room, old, new)))

    async def _write(self, command: Any) -> None:
        await self.link.write(command)

    # What is said

    def post(self, conn: str, room: str, kind: str, nick: str, text: str) -> None:
        fields = chat_fields(kind, nick, text, conn)
        future = self.link.write(self.store.append(room, fields))
        if future.done():  # refused at once: Redis is known to be away
            self._not_sent(future, conn)
        else:
            future.add_done_callback(lambda f: self._not_sent(f, conn))

    def _not_sent(self, future: asyncio.Future[Any], conn: str) -> None:
        error = future.exception()
        if error is not None and self._listener is not None:
            self._listener.not_sent(conn, sure=not isinstance(error, UnansweredError))

    def set_topic(self, conn: str, room: str, nick: str, text: str) -> Deferred[None]:
        self.link.send(self.store.set_topic(room, text))
        return self._ask(
            self._write(self.store.append(room, topic_fields(nick, text, conn)))
        )

    def moderate(self, conn: str, room: str, event: Moderated) -> Deferred[None]:
        return self._ask(
            self._write(self.store.append(room, moderated_fields(event, conn)))
        )

    def tell(self, sender: str, target: str, text: str) -> Deferred[str | None]:
        key = nick_key(target)
        local = self._local.get(self._here.get(key, ""))
        if local is not None and self._listener is not None:
            # Someone on this node: delivered here, even during an outage.
            self._listener.private(key, Private(sender, text))
            return succeed(local.nick)
        return self._ask(self._tell(sender, target, text))

    async def _tell(self, sender: str, target: str, text: str) -> str | None:
        found = await self.store.holder(target)
        if found is None:
            return None
        node, spelled = found
        await self.link.write(
            self.store.deliver(node, private_fields(sender, nick_key(target), text))
        )
        return spelled

    # Looking around

    def roster(self, room: str) -> Deferred[tuple[str, tuple[str, ...]] | None]:
        return self._ask(self._roster(room))

    async def _roster(self, room: str) -> tuple[str, tuple[str, ...]] | None:
        name, names = await self.store.roster(room)
        if name is None:
            if room != self._default:
                return None
            name = self._default_name
        return name, tuple(names)

    def rooms(self) -> Deferred[list[tuple[str, int, str]]]:
        return self._ask(self.store.rooms(self._default, self._default_name))

    # Reading the streams

    def _deliver(self, stream: str, entries: list[Entry]) -> None:
        if stream == self.link.inbox:
            self._private(entries)
            return
        room = self._by_stream.get(stream)
        if room is None or room.following is None:
            return
        listener = self._listener
        assert listener is not None, "attached"
        key, name = room.key, room.name
        keep = None if self.history is None else self.history.keeper(key)
        for entry in entries:
            entry_id, fields = entry
            kind = fields.get(KIND, "")
            # An id only where history is kept: it is what resuming asks for.
            kept = keep is not None and kind in HISTORY_KINDS
            id = entry_number(entry_id) if kept else 0
            decoded = decode(name, fields, id)
            if decoded is None:
                if kind == "back":
                    self._note(room, kind, fields)
                continue
            event, origin = decoded
            if kind != "chat" and kind != "action" and kind != "mod":
                self._note(room, kind, fields)
            listener.room_event(key, event, origin)
            if kind == "join":
                arrival = room.pending.pop(origin, None)
                if arrival is not None:
                    self._arrived(room, arrival)
            if kept and keep is not None:
                keep(entry)

    def _note(self, room: _Followed, kind: str, fields: dict[str, str]) -> None:
        """What this node keeps of a room from entries other than lines."""
        if kind == "topic":
            room.topic = fields[TEXT]
        elif kind == "nick":
            self._roll_call(room, fields[OLD], fields[NICK])
        elif kind == "join" or kind == "leave" or kind == "back":
            room.online = int(fields[ONLINE])
            if kind == "leave":
                self._roll_call(room, fields[NICK], "")
            else:
                self._roll_call(room, "", fields[NICK])

    def _roll_call(self, room: _Followed, gone: str, came: str) -> None:
        """Note a change of who is in ``room``."""
        _change(room.roster, gone, came)
        if room.recording is not None:
            room.recording.append((gone, came))

    async def _reread_roster(self, room: _Followed) -> None:
        """
        Read who is in ``room`` anew: after an outage Redis may have lost
        its data, and with it users of nodes that stopped meanwhile.

        The changes read while Redis answers are replayed onto its answer.
        Those it already reflects change nothing (each sets or clears one
        name; in stream order the last one stands), and every entry after
        it is read after the recording began: the roster is exact.
        """
        changes: list[tuple[str, str]] = []
        room.recording = changes
        try:
            members = await self.store.members(room.key)
        finally:
            mine = room.recording is changes
            if mine:
                room.recording = None
        if not mine:
            return  # another reading began meanwhile; it decides
        roster = Roster(members)
        for gone, came in changes:
            _change(roster, gone, came)
        room.roster = roster

    def _private(self, entries: list[Entry]) -> None:
        listener = self._listener
        assert listener is not None, "attached"
        for _, fields in entries:
            message = decode_private(fields)
            if message is not None:
                listener.private(*message)
                continue
            evicted = decode_eviction(fields)
            conn = self._here.get(evicted, "") if evicted is not None else ""
            local = self._local.get(conn)
            if local is not None:
                local.evicted = True
                listener.taken_over(conn)
        # The inbox is trimmed only here, up to what this node has read: a
        # length limit on writing would drop a burst nobody had read yet.
        self.link.send(self.store.trim_inbox(entries[-1][0]))

    # Recovery

    def _recovered(self) -> None:
        self._recovery = self._spawn(self._reassert())

    async def _back_from_the_dead(self) -> None:
        """The heartbeat found this node declared dead; it has just renewed."""
        await self._reassert(renewed=True)

    async def _reassert(self, renewed: bool = False) -> None:
        """
        After first contact or an outage: be known again.

        If the others declared this node dead meanwhile, its users are
        announced as joining again; if Redis lost everything (a restart),
        the directory is quietly written back.
        """
        try:
            reaped = await self.store.back_from_the_dead()
            # Names first: whoever lost theirs meanwhile is let go, and is
            # not written back over the new holder.
            if not renewed:
                await self.liveness.renew()
            joins = []
            for conn, local in list(self._local.items()):
                room = self._rooms.get(local.room)
                if room is None or conn not in room.conns:
                    continue  # on the way in: their arrival publishes them
                local.published = True
                command = self.store.join(
                    conn, local.nick, room.key, room.name, "", announce=reaped
                )
                joins.append(self.link.write(command))
            for room in list(self._rooms.values()):
                if room.topic and room.conns:
                    self.link.send(self.store.restore_topic(room.key, room.topic))
            unsent, self._unsent = self._unsent, []
            for leave in unsent:
                self._leave_later(*leave)
            await asyncio.gather(*joins)
            followed = [
                room
                for room in self._rooms.values()
                if room.following is not None and room.following.done()
            ]
            await asyncio.gather(*(self._reread_roster(r) for r in followed))
        except (RedisError, OSError) as e:
            self.link.lost(e)
