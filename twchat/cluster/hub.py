"""
The chat's rules across several processes, with Redis in the middle.

Same commands, same lines as the single-process ``Hub``; what changes is
where things happen. A room's lines are not handed to its members
directly: they go into the room's Redis stream, and every node delivers
what it reads back from the streams of the rooms its users are in, its
own users' lines included, so everyone everywhere sees one order. Who
is online, in which room, under which nickname, lives in Redis; a node
renews its claims with a heartbeat and clears away the users of a node
that stopped beating.

While Redis cannot be reached, users stay connected: lines, nickname
changes and moves get an error line saying they were not done; nothing
is queued to surprise them later.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from ..events import (
    Action,
    Chat,
    Error,
    NickChanged,
    NickPrompt,
    Private,
    PrivateSent,
    RoomInfo,
    RoomList,
    Topic,
    Welcome,
)
from ..hub import WELCOME_NAMES, Hub, Waiting
from ..member import Member
from ..nicknames import nick_key
from ..room import PresencePolicy, Room, room_key
from ..text import clean_text
from .history import StreamHistory
from .link import Command, Entry, RedisLink
from .schema import (
    CLAIM,
    JOIN,
    LEAVE,
    NODE_TTL,
    RELEASE,
    RENAME,
    RESERVE,
    STREAM_MAX,
    UNRESERVE,
    Keys,
)

__all__ = ["ClusterHub", "ClusterRoom"]

#: Entries read from a stream's end when a node starts following it.
PRELOAD = 500

UNAVAILABLE = "the chat has lost contact with its Redis server; try again shortly"
NOT_SENT = (
    "the chat has lost contact with its Redis server; "
    "your line was not sent, try again shortly"
)
SHUTTING_DOWN = "server shutting down"
NODE_LOST = "their server stopped answering"


@dataclass(eq=False)
class _Arrival:
    """Someone on their way into a room, until their join entry is read."""

    member: Member
    came_from: str
    welcome: bool
    #: Who was in the room (nick key -> nick) just before the join entry
    #: was queued...
    roster: dict[str, str] = field(default_factory=dict)
    #: ...and the joins, leaves and renames read since the arrival began:
    #: replayed onto the roster when the join entry is read. Entries the
    #: roster already reflects change nothing when replayed (set changes,
    #: in stream order), so the roll call is exact as of the join entry.
    changes: list[tuple[str, str]] = field(default_factory=list)
    #: Their join entry has been queued: a later leave must be announced.
    queued: bool = False
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_event_loop().create_future()
    )


def _restore_topic(key: str, topic: str) -> Command:
    """Put a topic back after Redis lost it, unless someone set a new one."""
    return lambda pipe: pipe.set(key, topic, nx=True)


class ClusterRoom(Room):
    """A room as one node sees it: its local members, counts from Redis."""

    def __init__(
        self, name: str, clock: IReactorTime, presence: PresencePolicy | None = None
    ) -> None:
        super().__init__(name, clock, presence)
        self._online = 0
        #: Local users whose join entry has not been read back yet, by conn.
        self.pending: dict[str, _Arrival] = {}
        #: Fires once the node reads the room's stream.
        self.following: asyncio.Future[None] | None = None

    @property
    def online(self) -> int:
        """People in the room on every node, as of the last entry read."""
        return self._online

    @online.setter
    def online(self, count: int) -> None:
        self._online = count


class ClusterHub(Hub):
    """The hub of one node among several sharing Redis at ``url``."""

    def __init__(
        self,
        clock: IReactorTime,
        url: str,
        presence: PresencePolicy | None = None,
        default_room: str = "lobby",
        max_rooms: int = 100,
        history_replay: int = 20,
        keep: int = 100,
        ttl: int = NODE_TTL,
        stream_max: int = STREAM_MAX,
        keys: Keys | None = None,
    ) -> None:
        self.node = f"{os.uname().nodename}.{os.getpid()}.{secrets.token_hex(3)}"
        self.keys = keys if keys is not None else Keys()
        self.ttl = ttl
        self.stream_max = stream_max
        self.streams = StreamHistory(keep)
        self._by_stream: dict[str, ClusterRoom] = {}
        super().__init__(
            clock,
            presence,
            default_room=default_room,
            max_rooms=max_rooms,
            history=self.streams,
            history_replay=history_replay,
        )
        self.link = RedisLink(
            url,
            self.keys.inbox(self.node),
            self._deliver,
            self._recovered,
            name=f"twchat-{self.node}",
        )
        client = self.link.client
        self._join_script = client.register_script(JOIN)
        self._reserve_script = client.register_script(RESERVE)
        self._unreserve_script = client.register_script(UNRESERVE)
        self._leave_script = client.register_script(LEAVE)
        self._rename_script = client.register_script(RENAME)
        self._claim_script = client.register_script(CLAIM)
        self._release_script = client.register_script(RELEASE)
        #: conn id -> local registered member, and back.
        self._conns: dict[str, Member] = {}
        self._conn_of: dict[Member, str] = {}
        self._serial = 0
        #: Connections between a free-looking nickname and registration.
        self._claiming: set[Member] = set()
        #: Leaves that could not be published; published on recovery.
        self._unsent: list[tuple[str, str, str, str]] = []
        #: Everyone online on every node (renewed by the heartbeat).
        self._cluster_online = 0
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = clock
        self._tasks: set[asyncio.Future[Any]] = set()

    # Plumbing

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run ``work`` in the background, keeping it referenced."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _act(
        self,
        member: Member,
        work: Awaitable[None],
        refusal: str = UNAVAILABLE,
        prompt: bool = False,
    ) -> Deferred[None]:
        """Run a user's action; if Redis fails them, they are told."""

        async def run() -> None:
            try:
                await work
            except (RedisError, OSError) as e:
                self.link.lost(e)
                member.send(Error(refusal))
                if prompt:
                    member.send(NickPrompt())

        return Deferred.fromFuture(self._spawn(run()))

    def _cut_off(self, member: Member, refusal: str = UNAVAILABLE) -> bool:
        """While Redis is known to be away, say so instead of trying."""
        if self.link.up:
            return False
        member.send(Error(refusal))
        return True

    def _create(self, name: str) -> Room:
        room = ClusterRoom(name, self._clock, self._presence)
        self.rooms[room.key] = room
        self._by_stream[self.keys.stream(room.key)] = room
        return room

    def _vacate(self, room: Room) -> None:
        """Stop reading a room nobody here is in (or on the way into)."""
        assert isinstance(room, ClusterRoom)
        if len(room) or room.pending:
            return
        room.stop()
        room.following = None
        stream = self.keys.stream(room.key)
        self.link.unfollow(stream)
        self.streams.drop(room.key)
        if room is not self.default_room:
            self.rooms.pop(room.key, None)
            self._by_stream.pop(stream, None)

    def _local_room(self, name: str) -> ClusterRoom:
        room = self.rooms.get(room_key(name))
        if room is None:
            room = self._create(name)
        assert isinstance(room, ClusterRoom)
        return room

    async def _follow(self, room: ClusterRoom) -> None:
        """Start reading the room's stream (history first), once."""
        if room.following is None:
            room.following = asyncio.get_event_loop().create_future()
            following = room.following
            stream = self.keys.stream(room.key)
            try:
                async with self.link.client.pipeline(transaction=False) as pipe:
                    pipe.xrevrange(stream, count=PRELOAD)
                    pipe.get(self.keys.topic(room.key))
                    newest, topic = await pipe.execute()
            except BaseException as e:
                room.following = None
                following.set_exception(e)
                following.exception()  # retrieved: others get it by awaiting
                raise
            self.streams.load(room.key, newest)
            room.topic = topic or ""
            self.link.follow(stream, newest[0][0] if newest else "0-0")
            # Wake the reader so that its next XREAD includes the stream.
            self.link.send(lambda p: p.xadd(self.link.inbox, {"k": "wake"}))
            following.set_result(None)
        await asyncio.shield(room.following)

    # Lifetime

    def start(self) -> None:
        """Connect; the node announces itself once Redis answers."""
        self.link.start()
        self._beat.start(self.ttl / 3, now=False)

    def stop(self) -> Deferred[None]:
        """After the goodbyes: publish the leaves, retire the node."""

        async def retire() -> None:
            if self._beat.running:
                self._beat.stop()
            try:
                await asyncio.wait_for(self._retire(), 5.0)
            except (TimeoutError, RedisError, OSError) as e:
                self.log.warn("could not retire from Redis: {error}", error=e)
            await self.link.close()

        return Deferred.fromFuture(asyncio.ensure_future(retire()))

    async def _retire(self) -> None:
        await self.link.drained()
        keys = self.keys
        async with self.link.client.pipeline(transaction=False) as pipe:
            pipe.srem(keys.nodes, self.node)
            pipe.delete(
                keys.alive(self.node), keys.users(self.node), keys.inbox(self.node)
            )
            await pipe.execute()

    # Presence

    @property
    def online(self) -> int:
        return max(len(self.users), self._cluster_online)

    def _publish_leave(
        self,
        room: str,
        nick: str,
        conn: str,
        reason: str,
        went_to: str = "",
        node: str = "",
        free_nick: bool = True,
    ) -> asyncio.Future[Any]:
        keys = self.keys
        key = nick_key(nick)
        return self.link.write(
            lambda p: self._leave_script(
                keys=[
                    keys.members(room),
                    keys.rooms,
                    keys.users(node or self.node),
                    keys.stream(room),
                    keys.topic(room),
                    keys.nick(key),
                ],
                args=[
                    key,
                    node or self.node,
                    nick,
                    room,
                    reason,
                    went_to,
                    self.stream_max,
                    self.default_room.key,
                    conn,
                    1 if free_nick else 0,
                ],
                client=p,
            )
        )

    def _publish_join(
        self, member: Member, room: Room, came_from: str, announce: bool = True
    ) -> asyncio.Future[Any]:
        keys = self.keys
        key = nick_key(member.nick)
        conn = self._conn_of[member]
        return self.link.write(
            lambda p: self._join_script(
                keys=[
                    keys.members(room.key),
                    keys.rooms,
                    keys.users(self.node),
                    keys.stream(room.key),
                ],
                args=[
                    key,
                    self.node,
                    member.nick,
                    room.key,
                    room.name,
                    conn,
                    came_from,
                    self.stream_max,
                    1 if announce else 0,
                ],
                client=p,
            )
        )

    def _release_nick(self, nick: str) -> None:
        key = self.keys.nick(nick_key(nick))
        self.link.send(
            lambda p: self._release_script(keys=[key], args=[self.node], client=p)
        )

    # Registration and leaving

    def _admit(self, member: Member, nick: str) -> Waiting:
        if self._cut_off(member):
            member.send(NickPrompt())
            return None
        self._claiming.add(member)
        return self._act(member, self._register(member, nick), prompt=True)

    async def _register(self, member: Member, nick: str) -> None:
        key = nick_key(nick)
        try:
            claimed = await self.link.client.set(
                self.keys.nick(key), self.node, nx=True, ex=self.ttl
            )
        except BaseException:
            self._claiming.discard(member)
            raise
        if member not in self._claiming:
            if claimed:
                self._release_nick(nick)
            return  # they left meanwhile
        self._claiming.discard(member)
        if not claimed or self.find(nick) is not None:
            member.send(Error(f"nickname {nick} is already taken"))
            member.send(NickPrompt())
            return
        member.nick = nick
        self.users[key] = member
        self._serial += 1
        conn = f"{self.node}.{self._serial}"
        self._conns[conn] = member
        self._conn_of[member] = conn
        self.log.info("{nick} joined from {peer}", nick=nick, peer=member.peer)
        try:
            await self._enter(member, self.default_room, "", welcome=True)
        except (RedisError, OSError):
            if member.room is None or member not in member.room:
                # Not in: back to choosing a nickname.
                self._forget(member)
                member.room = None
                self._release_nick(nick)
                member.nick = ""
            raise

    async def _enter(
        self, member: Member, room: Room, came_from: str, welcome: bool
    ) -> None:
        """Bring ``member`` into ``room``: done once their join entry is read."""
        assert isinstance(room, ClusterRoom)
        conn = self._conn_of[member]
        arrival = _Arrival(member, came_from, welcome)
        room.pending[conn] = arrival
        member.room = room
        try:
            await self._follow(room)
            held = await self.link.client.hgetall(self.keys.members(room.key))
            arrival.roster = {key: v.partition("\t")[2] for key, v in held.items()}
            if room.pending.get(conn) is not arrival:
                return  # they left meanwhile
            arrival.queued = True
            await self._publish_join(member, room, came_from)
        except BaseException:
            if room.pending.get(conn) is arrival:
                del room.pending[conn]
                self._vacate(room)
            raise
        await arrival.done

    def _arrived(self, room: ClusterRoom, arrival: _Arrival) -> None:
        """Their join entry was read: roll call, topic, history, then live."""
        member = arrival.member
        roster = arrival.roster
        for gone, came in arrival.changes:
            roster.pop(nick_key(gone), None)
            if came:
                roster[nick_key(came)] = came
        roster.pop(nick_key(member.nick), None)
        others = sorted(roster.values(), key=nick_key)
        if arrival.welcome:
            names = (*others, member.nick)[:WELCOME_NAMES]
            member.send(Welcome(member.nick, room.name, room.online, names))
        else:
            names = tuple(sorted((*others, member.nick), key=nick_key))
            member.send(RoomInfo(room.name, room.online, names))
        room.add(member)
        self._entered(member, room, arrival.came_from)
        if not arrival.done.done():
            arrival.done.set_result(None)

    def _forget(self, member: Member) -> str | None:
        conn = self._conn_of.pop(member, None)
        if conn is not None:
            self._conns.pop(conn, None)
        if self.users.get(nick_key(member.nick)) is member:
            del self.users[nick_key(member.nick)]
        return conn

    def leave(self, member: Member, reason: str = "") -> None:
        self._claiming.discard(member)
        if self.users.get(nick_key(member.nick)) is not member:
            return
        conn = self._forget(member) or ""
        reason = clean_text(reason)
        if self.closing:
            reason = SHUTTING_DOWN
        self.log.info("{nick} left: {reason}", nick=member.nick, reason=reason)
        room = member.room
        member.room = None
        announce = True
        if isinstance(room, ClusterRoom):
            arrival = room.pending.pop(conn, None)
            if arrival is not None:
                announce = arrival.queued
                if not arrival.done.done():
                    arrival.done.set_result(None)
            room.remove(member)
            self._vacate(room)
        if room is None or not announce:
            self._release_nick(member.nick)
            return
        self._leave_later(room.key, member.nick, conn, reason)

    def _leave_later(self, room: str, nick: str, conn: str, reason: str) -> None:
        """Publish a leave now, or as soon as Redis is back."""
        future = self._publish_leave(room, nick, conn, reason)

        def done(f: asyncio.Future[Any]) -> None:
            if f.exception() is not None:
                self._unsent.append((room, nick, conn, reason))

        future.add_done_callback(done)

    # Reading the streams

    def _deliver(self, stream: str, entries: list[Entry]) -> None:
        if stream == self.link.inbox:
            self._private(entries)
            return
        room = self._by_stream.get(stream)
        if room is None or room.following is None:
            return
        conns = self._conns
        for entry_id, f in entries:
            kind = f.get("k")
            if kind == "chat":
                room.broadcast(Chat(f["n"], f["t"]), exclude=conns.get(f.get("c", "")))
            elif kind == "action":
                room.broadcast(
                    Action(f["n"], f["t"]), exclude=conns.get(f.get("c", ""))
                )
            elif kind == "topic":
                room.topic = f["t"]
                room.broadcast(Topic(room.name, f["t"], setter=f["n"]))
            elif kind == "join":
                room.online = int(f["u"])
                self._roll_call(room, "", f["n"])
                arrival = room.pending.pop(f["c"], None)
                if arrival is not None:
                    self._arrived(room, arrival)
                else:
                    room.announce_join(
                        f["n"], f.get("f", ""), exclude=conns.get(f["c"])
                    )
            elif kind == "leave":
                room.online = int(f["u"])
                self._roll_call(room, f["n"], "")
                room.announce_leave(f["n"], f.get("r", ""), f.get("w", ""))
            elif kind == "nick":
                self._roll_call(room, f["o"], f["n"])
                room.broadcast(NickChanged(f["o"], f["n"]))
            self.streams.add(room.key, entry_id, f)

    def _roll_call(self, room: ClusterRoom, gone: str, came: str) -> None:
        """Note a change of who is in ``room`` for those on their way in."""
        for arrival in room.pending.values():
            arrival.changes.append((gone, came))

    def _private(self, entries: list[Entry]) -> None:
        for _, f in entries:
            if f.get("k") == "msg":
                receiver = self.users.get(f["to"])
                if receiver is not None:
                    receiver.send(Private(f["from"], f["t"]))
        # The inbox is trimmed only here, up to what this node has read: a
        # length limit on writing would drop a burst nobody had read yet.
        read = entries[-1][0]
        self.link.send(lambda p: p.xtrim(self.link.inbox, minid=read))

    # Chat

    def _post(self, member: Member, kind: str, text: str) -> Waiting:
        """Put a line into the room's stream; everyone gets it from there."""
        if self._cut_off(member, NOT_SENT):
            return None
        room = self._room_of(member)
        stream = self.keys.stream(room.key)
        fields = {"k": kind, "n": member.nick, "t": text, "c": self._conn_of[member]}
        future = self.link.write(
            lambda p: p.xadd(stream, fields, maxlen=self.stream_max)  # type: ignore[arg-type]
        )

        def done(f: asyncio.Future[Any]) -> None:
            if f.exception() is not None:
                member.send(Error(NOT_SENT))

        future.add_done_callback(done)
        return None

    def _tell_elsewhere(self, member: Member, target: str, text: str) -> Waiting:
        """The target may be on another node: its inbox stream."""
        return self._act(member, self._tell(member, target, text), NOT_SENT)

    async def _tell(self, member: Member, target: str, text: str) -> None:
        key = nick_key(target)
        node = await self.link.client.get(self.keys.nick(key))
        entry = None
        if node is not None:
            entry = await self.link.client.hget(self.keys.users(node), key)
        if node is None or entry is None:
            super()._tell_elsewhere(member, target, text)  # nowhere
            return
        fields = {"k": "msg", "from": member.nick, "to": key, "t": text}
        await self.link.write(
            lambda p: p.xadd(self.keys.inbox(node), fields)  # type: ignore[arg-type]
        )
        member.send(PrivateSent(entry.partition("\t")[2], text))

    def _rename(self, member: Member, old: str, new: str) -> Waiting:
        if self._cut_off(member):
            return None
        return self._act(member, self._renamed(member, old, new))

    async def _renamed(self, member: Member, old: str, new: str) -> None:
        keys = self.keys
        if nick_key(new) != nick_key(old):
            claimed = await self.link.client.set(
                keys.nick(nick_key(new)), self.node, nx=True, ex=self.ttl
            )
            if not claimed:
                member.send(Error(f"nickname {new} is already taken"))
                return
        if self.users.get(nick_key(old)) is not member:
            self._release_nick(new)
            return  # gone meanwhile
        del self.users[nick_key(old)]
        member.nick = new
        self.users[nick_key(new)] = member
        room = self._room_of(member)
        room.renamed(member, old)
        self.log.info("{old} is now known as {new}", old=old, new=new)
        conn = self._conn_of[member]
        try:
            await self.link.write(
                lambda p: self._rename_script(
                    keys=[
                        keys.members(room.key),
                        keys.users(self.node),
                        keys.stream(room.key),
                        keys.nick(nick_key(old)),
                    ],
                    args=[
                        nick_key(old),
                        nick_key(new),
                        self.node,
                        old,
                        new,
                        room.key,
                        conn,
                        self.stream_max,
                    ],
                    client=p,
                )
            )
        except (RedisError, OSError):
            # Redis has the new name claimed; the directory catches up when
            # it is back (the heartbeat restores it).
            self.log.warn("{new}: rename not published", new=new)
            raise

    # Rooms

    def who(self, member: Member, name: str = "") -> Waiting:
        room = self._room_of(member)
        if self._cut_off(member):
            return None
        return self._act(member, self._who(member, room_key(name or room.key), name))

    async def _who(self, member: Member, key: str, asked: str) -> None:
        async with self.link.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.members(key))
            pipe.hget(self.keys.rooms, key)
            held, name = await pipe.execute()
        if not held and key != self.default_room.key:
            self._no_such_room(member, asked)
            return
        names = sorted((v.partition("\t")[2] for v in held.values()), key=nick_key)
        member.send(RoomInfo(name or key, len(names), tuple(names)))

    def list_rooms(self, member: Member) -> Waiting:
        if self._cut_off(member):
            return None
        return self._act(member, self._list_rooms(member))

    async def _list_rooms(self, member: Member) -> None:
        keys = self.keys
        names: dict[str, str] = await self.link.client.hgetall(keys.rooms)
        names.setdefault(self.default_room.key, self.default_room.name)
        ordered = sorted(names)
        async with self.link.client.pipeline(transaction=False) as pipe:
            for key in ordered:
                pipe.hlen(keys.members(key))
                pipe.get(keys.topic(key))
            replies = await pipe.execute()
        rooms = tuple(
            (names[key], int(replies[2 * i]), replies[2 * i + 1] or "")
            for i, key in enumerate(ordered)
        )
        member.send(RoomList(rooms))

    def _set_topic(self, member: Member, room: Room, text: str) -> Waiting:
        if self._cut_off(member):
            return None
        self._log_topic(member, room)
        keys = self.keys
        fields = {"k": "topic", "n": member.nick, "t": text, "c": self._conn_of[member]}
        self.link.send(lambda p: p.set(keys.topic(room.key), text))
        published = self.link.write(
            lambda p: p.xadd(keys.stream(room.key), fields, maxlen=self.stream_max)  # type: ignore[arg-type]
        )
        return self._act(member, published)

    def _move(self, member: Member, here: Room, name: str) -> Waiting:
        if self._cut_off(member):
            return None
        return self._act(member, self._moving(member, here, name))

    async def _moving(self, member: Member, here: Room, name: str) -> None:
        key = room_key(name)
        keys = self.keys
        # The room limit and the room's creation in one step, for all nodes.
        known = await self._reserve_script(
            keys=[keys.rooms], args=[key, name, self.max_rooms]
        )
        if known is None and key not in self.rooms:
            self._no_room_left(member)
            return
        if member.room is not here:
            # Gone meanwhile: a room reserved for them alone goes again.
            await self._unreserve_script(
                keys=[keys.rooms, keys.members(key)],
                args=[key, self.default_room.key],
            )
            return
        # A room that exists keeps the name its creator gave it.
        target = self._local_room(known or name)
        here.remove(member)
        self._vacate(here)
        self._publish_leave(
            here.key,
            member.nick,
            self._conn_of[member],
            "",
            went_to=target.name,
            free_nick=False,
        )
        try:
            await self._enter(member, target, here.name, welcome=False)
        except (RedisError, OSError):
            if member.room is target and member not in target:
                # Somewhere to be: locally in the target room; the heartbeat
                # writes the directory once Redis is back.
                target.add(member)
            raise

    # Heartbeat, dead nodes, recovery

    def _heartbeat(self) -> None:
        if self.link.up:
            self._spawn(self._beat_once())

    async def _beat_once(self) -> None:
        try:
            if await self._renew():
                # Declared dead while stalled (but never cut off): come back.
                await self._reassert(renewed=True)
            await self._reap_dead()
        except (RedisError, OSError) as e:
            self.link.lost(e)

    async def _renew(self) -> bool:
        """Renew this node's claims; True if others had declared it dead."""
        keys = self.keys
        async with self.link.client.pipeline(transaction=False) as pipe:
            pipe.set(keys.alive(self.node), "1", ex=self.ttl)
            pipe.sadd(keys.nodes, self.node)
            pipe.exists(keys.reaped(self.node))
            _, _, reaped = await pipe.execute()
        members = list(self.users.values())
        for start in range(0, len(members), 1000):
            chunk = members[start : start + 1000]
            lost = await self._claim_script(
                keys=[keys.nick(nick_key(m.nick)) for m in chunk],
                args=[self.node, self.ttl],
            )
            for position in lost:
                self._taken_away(chunk[int(position) - 1])
        rooms = await self.link.client.hkeys(keys.rooms)
        async with self.link.client.pipeline(transaction=False) as pipe:
            for key in rooms:
                pipe.hlen(keys.members(key))
            self._cluster_online = sum(await pipe.execute())
        return bool(reaped)

    def _taken_away(self, member: Member) -> None:
        """Another node holds this name now (it expired during an outage)."""
        if self.users.get(nick_key(member.nick)) is not member:
            return
        member.send(
            Error(
                f"your nickname {member.nick} was taken on another server while "
                "this one had lost contact with Redis; reconnect with another name"
            )
        )
        member.quit("nickname taken elsewhere")

    async def _reap_dead(self) -> None:
        keys = self.keys
        nodes = [
            n for n in await self.link.client.smembers(keys.nodes) if n != self.node
        ]
        if not nodes:
            return
        async with self.link.client.pipeline(transaction=False) as pipe:
            for node in nodes:
                pipe.exists(keys.alive(node))
            alive = await pipe.execute()
        for node, exists in zip(nodes, alive, strict=True):
            if not exists:
                await self._reap(node)

    async def _reap(self, node: str) -> None:
        """Clear away the users of a node that stopped beating."""
        keys = self.keys
        if not await self.link.client.set(
            keys.reaping(node), self.node, nx=True, ex=60
        ):
            return  # another node is on it
        users: dict[str, str] = await self.link.client.hgetall(keys.users(node))
        leaves = []
        for entry in users.values():
            room, _, nick = entry.partition("\t")
            leaves.append(self._publish_leave(room, nick, "", NODE_LOST, node=node))
        await asyncio.gather(*leaves)
        async with self.link.client.pipeline(transaction=False) as pipe:
            pipe.delete(keys.users(node), keys.inbox(node))
            pipe.srem(keys.nodes, node)
            pipe.set(keys.reaped(node), self.node, ex=86400)
            await pipe.execute()
        self.log.warn(
            "node {node} stopped answering: its {count} users left the chat",
            node=node,
            count=len(users),
        )

    def _recovered(self) -> None:
        self._spawn(self._reassert())

    async def _reassert(self, renewed: bool = False) -> None:
        """
        After first contact or an outage: be known again.

        If the others declared this node dead meanwhile, its users are
        announced as joining again; if Redis lost everything (a restart),
        the directory is quietly written back.
        """
        keys = self.keys
        try:
            reaped = await self.link.client.delete(keys.reaped(self.node))
            # Names first: whoever lost theirs meanwhile is let go, and is
            # not written back over the new holder.
            if not renewed:
                await self._renew()
            joins = [
                self._publish_join(member, member.room, "", announce=bool(reaped))
                for member in list(self.users.values())
                if member.room is not None and member in member.room
            ]
            for room in list(self.rooms.values()):
                if room.topic and len(room):
                    self.link.send(_restore_topic(keys.topic(room.key), room.topic))
            unsent, self._unsent = self._unsent, []
            for room_key_, nick, conn, reason in unsent:
                self._leave_later(room_key_, nick, conn, reason)
            await asyncio.gather(*joins)
        except (RedisError, OSError) as e:
            self.link.lost(e)
