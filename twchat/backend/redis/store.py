"""
What twchat keeps in Redis: key names and the scripts that change them.

Every key starts with ``twchat:`` so a Redis shared with other programs
stays tidy. A room is a stream of entries (chat, action, topic, join,
leave, nick); presence is a hash per room and a hash per node; each
nickname is a key owned by one node, with an expiry a heartbeat renews.
Changes that must agree with each other (directory and the join/leave
entry with its head count) are one Lua script, so Redis applies them as
one step and the count in the entry is exact in stream order.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template
from typing import TYPE_CHECKING, Any

from ...nicknames import nick_key
from .. import Profile
from .codec import FIELDS, KIND

if TYPE_CHECKING:
    from .link import Command

__all__ = [
    "CLAIM",
    "JOIN",
    "LEAVE",
    "NODE_TTL",
    "RELEASE",
    "RENAME",
    "RESERVE",
    "STREAM_MAX",
    "TAKE",
    "UNRESERVE",
    "Keys",
    "Store",
    "entry_seconds",
]


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names, under one prefix."""

    prefix: str = "twchat:"

    def stream(self, room: str) -> str:
        """The room's entries, in the one order every node delivers."""
        return f"{self.prefix}room:{room}"

    def members(self, room: str) -> str:
        """Hash: nickname key -> ``node<TAB>nick`` for everyone in the room."""
        return f"{self.prefix}members:{room}"

    def topic(self, room: str) -> str:
        return f"{self.prefix}topic:{room}"

    @property
    def rooms(self) -> str:
        """Hash: room key -> room name, for every room with people in it."""
        return f"{self.prefix}rooms"

    def nick(self, nick: str) -> str:
        """String: the node holding this nickname (expires unless renewed)."""
        return f"{self.prefix}nick:{nick}"

    @property
    def nodes(self) -> str:
        """Set of the nodes that have announced themselves."""
        return f"{self.prefix}nodes"

    def alive(self, node: str) -> str:
        """Exists while ``node`` keeps beating."""
        return f"{self.prefix}node:{node}:alive"

    def users(self, node: str) -> str:
        """Hash: nickname key -> ``room<TAB>nick`` for a node's users."""
        return f"{self.prefix}node:{node}:users"

    def inbox(self, node: str) -> str:
        """
        Stream of private messages for a node's users (and wake-ups).

        Written without a length limit and trimmed by its reader up to what
        it has read, so no unread message is ever trimmed; a dead node's
        inbox goes with it when it is reaped.
        """
        return f"{self.prefix}node:{node}:inbox"

    def reaping(self, node: str) -> str:
        """Held by the one node that clears a dead node's users away."""
        return f"{self.prefix}node:{node}:reaping"

    def reaped(self, node: str) -> str:
        """Left behind for a node that was declared dead but comes back."""
        return f"{self.prefix}node:{node}:reaped"

    def account(self, nick: str) -> str:
        """Hash: ``name``, ``hash``, ``operator`` (0/1), ``created``."""
        return f"{self.prefix}account:{nick}"

    @property
    def accounts(self) -> str:
        """Set of the nickname keys that are accounts."""
        return f"{self.prefix}accounts"

    def user(self, nick: str) -> str:
        """Hash: a connected user's profile (see ``IBackend.describe``)."""
        return f"{self.prefix}user:{nick}"

    def moderation(self, scope: str) -> str:
        """Hash: a room's (or the server's) moderation fields."""
        return f"{self.prefix}mod:{scope}"

    @property
    def modlog(self) -> str:
        """List: the moderation log, oldest first."""
        return f"{self.prefix}modlog"

    @property
    def pruning(self) -> str:
        """Held by the one node trimming old entries off the room streams."""
        return f"{self.prefix}pruning"


#: Seconds a node's claims live without a heartbeat: a node that dies
#: loses its users (leave notices everywhere, nicknames free) within
#: NODE_TTL plus one heartbeat (NODE_TTL / 3).
NODE_TTL = 10
#: Entries a room's stream keeps when --history-max-rows sets no limit
#: (roughly: trimmed with MAXLEN ~).
STREAM_MAX = 2**53


def _fields(script: str) -> str:
    """A script with the entry field names of ``codec`` filled in."""
    return Template(script).substitute(FIELDS)


#: Entry times are counted from here, so ids stay below 2**53 (exact as
#: JavaScript numbers) for seventy years: 12 bits of sequence a millisecond.
_ID_EPOCH_MS = 1_704_067_200_000  # 2024-01-01


def entry_number(entry_id: str) -> int:
    """
    A stream entry's ID as one growing integer (milliseconds, then the
    sequence within them): the history id both wires carry. A room's
    stream cannot take 4096 entries in one millisecond (Redis appends a
    few hundred thousand a second, to all streams together).
    """
    global _last_ms
    ms, _, seq = entry_id.partition("-")
    last, high = _last_ms
    if ms != last:
        high = (int(ms) - _ID_EPOCH_MS) << 12
        _last_ms = (ms, high)
    number = int(seq) if seq else 0
    return high | (number if number < 4096 else 4095)


#: The last entry's milliseconds, and what they make of its number: the
#: entries a node reads come dozens to a millisecond, and turning 13 digits
#: into an int was most of this function's cost (for every line read).
_last_ms = ("", 0)


def entry_seconds(entry_id: str) -> float:
    """When Redis stored an entry: its ID starts with milliseconds."""
    return int(entry_id.partition("-")[0]) / 1000.0


#: Make sure a room exists before anyone enters it, within the room limit:
#: the count and the creation are one step, so no two nodes (or two users
#: of one node) can both take the last free place.
#: KEYS: rooms. ARGV: room key, room name, max rooms.
#: Returns the room's name as its creator gave it, or nil when it does not
#: exist and ``max rooms`` rooms do.
RESERVE = """
local name = redis.call('HGET', KEYS[1], ARGV[1])
if name then return name end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ARGV[2]
"""

#: A room reserved for someone who left before entering it goes again,
#: unless someone is in it (or it is the default room).
#: KEYS: rooms, members. ARGV: room key, default room key.
UNRESERVE = """
if ARGV[1] ~= ARGV[2] and redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

#: Someone enters a room.
#: KEYS: members, rooms, node users, stream.
#: ARGV: nick key, node, nick, room key, room name, conn, came from,
#: stream max length, announce (1: add a join entry; 0: only restore).
#: A restore that finds them gone (Redis lost its data) adds a "back"
#: entry, which users are not shown: the nodes' rosters follow the stream.
#: Returns {entry id or "", people in the room}.
JOIN = _fields("""
local added = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t' .. ARGV[3])
redis.call('HSETNX', KEYS[2], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4] .. '\\t' .. ARGV[3])
local n = redis.call('HLEN', KEYS[1])
local id = ''
if ARGV[9] == '1' then
  id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*',
    '$KIND', 'join', '$NICK', ARGV[3], '$CONN', ARGV[6], '$ONLINE', n,
    '$CAME_FROM', ARGV[7])
elseif added == 1 then
  id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*',
    '$KIND', 'back', '$NICK', ARGV[3], '$CONN', ARGV[6], '$ONLINE', n)
end
return {id, n}
""")

#: Someone leaves a room (and, if ARGV[10] is 1, the chat: their
#: nickname is freed). Only the node that holds them can take them out;
#: if nobody holds them (Redis lost its data) the leave is still told,
#: unless ARGV[11] is 1 (a login elsewhere may have told it already).
#: An emptied room's topic stays, as its stream (its history) does: the
#: room has it again when someone comes back.
#: KEYS: members, rooms, node users, stream, topic, nick.
#: ARGV: nick key, node, nick, room key, reason, went to, stream max
#: length, default room key, conn, free the nickname (1/0), must hold (1/0).
#: Returns {entry id or "" if they were not there, people left}.
LEAVE = _fields("""
local held = redis.call('HGET', KEYS[1], ARGV[1])
local mine = ARGV[2] .. '\\t'
if ARGV[10] == '1' and redis.call('GET', KEYS[6]) == ARGV[2] then
  redis.call('DEL', KEYS[6])
end
local entry = redis.call('HGET', KEYS[3], ARGV[1])
if entry and string.sub(entry, 1, #ARGV[4] + 1) == ARGV[4] .. '\\t' then
  redis.call('HDEL', KEYS[3], ARGV[1])
end
if held and string.sub(held, 1, #mine) ~= mine then
  return {'', -1}
end
if not held and ARGV[11] == '1' then
  return {'', -1}
end
redis.call('HDEL', KEYS[1], ARGV[1])
local n = redis.call('HLEN', KEYS[1])
if n == 0 and ARGV[4] ~= ARGV[8] then
  redis.call('HDEL', KEYS[2], ARGV[4])
end
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*',
  '$KIND', 'leave', '$NICK', ARGV[3], '$CONN', ARGV[9], '$ONLINE', n,
  '$REASON', ARGV[5], '$WENT_TO', ARGV[6])
return {id, n}
""")

#: A nickname change, once the new name is claimed.
#: KEYS: members, node users, stream, old nick.
#: ARGV: old key, new key, node, old nick, new nick, room key, conn,
#: stream max length.
RENAME = _fields("""
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '\\t' .. ARGV[5])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[6] .. '\\t' .. ARGV[5])
if ARGV[1] ~= ARGV[2] and redis.call('GET', KEYS[4]) == ARGV[3] then
  redis.call('DEL', KEYS[4])
end
return redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*',
  '$KIND', 'nick', '$OLD', ARGV[4], '$NICK', ARGV[5], '$CONN', ARGV[7])
""")

#: The heartbeat: keep (or take back) this node's nicknames.
#: KEYS: nick keys. ARGV: node, seconds to live.
#: Returns the 1-based positions of names another node holds now.
CLAIM = """
local lost = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
  elseif v == ARGV[1] then
    redis.call('EXPIRE', key, ARGV[2])
  else
    table.insert(lost, i)
  end
end
return lost
"""

#: A login takes a nickname whoever holds it. KEYS: nick. ARGV: node, ttl.
#: Returns the node that held it ("" if none).
TAKE = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return old or ''
"""

#: Free a nickname this node holds. KEYS: nick. ARGV: node.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _node_and_nick(entry: str) -> tuple[str, str]:
    """A directory value ``node<TAB>nick`` (or ``room<TAB>nick``) split."""
    first, _, nick = entry.partition("\t")
    return first, nick


def _nicks(held: dict[str, str]) -> dict[str, str]:
    """A members hash as nickname key -> nickname."""
    return {key: _node_and_nick(v)[1] for key, v in held.items()}


class Store:
    """
    The shared state's operations as typed methods.

    Methods that return a ``Command`` are queued on the link, in order with
    the node's other writes; ``async`` ones are asked directly. Errors are
    redis-py's (``RedisError``, ``OSError``): the backend turns them into
    what the hub understands.
    """

    def __init__(
        self, client: Any, keys: Keys, node: str, ttl: int, stream_max: int
    ) -> None:
        self.client = client
        self.keys = keys
        self.node = node
        self.ttl = ttl
        self.stream_max = stream_max
        self._join = client.register_script(JOIN)
        self._leave = client.register_script(LEAVE)
        self._rename = client.register_script(RENAME)
        self._reserve = client.register_script(RESERVE)
        self._unreserve = client.register_script(UNRESERVE)
        self._claim = client.register_script(CLAIM)
        self._release = client.register_script(RELEASE)
        self._take = client.register_script(TAKE)

    # Ordered writes

    def join(
        self,
        conn: str,
        nick: str,
        room: str,
        name: str,
        came_from: str,
        announce: bool = True,
        node: str = "",
    ) -> Command:
        """Enter ``room`` (created as ``name``); a join entry if ``announce``."""
        keys = self.keys
        return lambda pipe: self._join(
            keys=[
                keys.members(room),
                keys.rooms,
                keys.users(node or self.node),
                keys.stream(room),
            ],
            args=[
                nick_key(nick),
                node or self.node,
                nick,
                room,
                name,
                conn,
                came_from,
                self.stream_max,
                1 if announce else 0,
            ],
            client=pipe,
        )

    def leave(
        self,
        conn: str,
        nick: str,
        room: str,
        reason: str,
        went_to: str,
        default: str,
        free: bool,
        node: str = "",
        must_hold: bool = False,
    ) -> Command:
        """
        Leave ``room`` (and free the nickname if ``free``), with its entry;
        if ``must_hold``, only if the directory still has them there.
        """
        keys = self.keys
        key = nick_key(nick)
        return lambda pipe: self._leave(
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
                default,
                conn,
                1 if free else 0,
                1 if must_hold else 0,
            ],
            client=pipe,
        )

    def rename(self, conn: str, room: str, old: str, new: str) -> Command:
        keys = self.keys
        return lambda pipe: self._rename(
            keys=[
                keys.members(room),
                keys.users(self.node),
                keys.stream(room),
                keys.nick(nick_key(old)),
            ],
            args=[
                nick_key(old),
                nick_key(new),
                self.node,
                old,
                new,
                room,
                conn,
                self.stream_max,
            ],
            client=pipe,
        )

    def append(self, room: str, fields: dict[Any, Any]) -> Command:
        """Add an entry to the room's stream."""
        stream = self.keys.stream(room)
        return lambda pipe: pipe.xadd(stream, fields, maxlen=self.stream_max)

    def set_topic(self, room: str, text: str) -> Command:
        return lambda pipe: pipe.set(self.keys.topic(room), text)

    def restore_topic(self, room: str, text: str) -> Command:
        """Put a topic back after Redis lost it, unless someone set a new one."""
        return lambda pipe: pipe.set(self.keys.topic(room), text, nx=True)

    def deliver(self, node: str, fields: dict[Any, Any]) -> Command:
        """Add a private message to ``node``'s inbox (never trimmed unread)."""
        return lambda pipe: pipe.xadd(self.keys.inbox(node), fields)

    def wake(self) -> Command:
        """An entry in this node's inbox, so that its reader reads anew."""
        return lambda pipe: pipe.xadd(self.keys.inbox(self.node), {KIND: "wake"})

    def trim_inbox(self, upto: str) -> Command:
        """Forget inbox entries this node has read, up to ``upto``."""
        return lambda pipe: pipe.xtrim(self.keys.inbox(self.node), minid=upto)

    def release(self, nick: str) -> Command:
        key = self.keys.nick(nick_key(nick))
        return lambda pipe: self._release(keys=[key], args=[self.node], client=pipe)

    def describe(self, profile: Profile) -> Command:
        key = self.keys.user(nick_key(profile.nick))
        fields: dict[Any, Any] = {
            "nick": profile.nick,
            "account": profile.account or "",
            "host": profile.host,
            "operator": int(profile.operator),
            "since": profile.since,
            "room": profile.room,
            "active": profile.active,
            "away": profile.away,
            "node": self.node,
        }
        # Every field is written: nothing of an earlier profile remains.
        return lambda pipe: pipe.hset(key, mapping=fields)

    def forget(self, nick: str) -> Command:
        """This node's user ``nick`` left or changed their name."""
        key = self.keys.user(nick_key(nick))
        return lambda pipe: pipe.delete(key)

    async def profile(self, nick: str) -> Profile | None:
        """The profile of ``nick`` if the node that wrote it holds it now."""
        key = nick_key(nick)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.user(key))
            pipe.get(self.keys.nick(key))
            fields, node = await pipe.execute()
        if not fields or fields.get("node") != node:
            return None
        return Profile(
            fields["nick"],
            fields["account"] or None,
            fields["host"],
            fields["operator"] == "1",
            float(fields["since"]),
            fields.get("room", ""),
            float(fields.get("active", 0)),
            fields.get("away", ""),
        )

    # Atomic steps, queued behind this node's earlier writes: a name
    # released or a room emptied here is free for the next claim from here.

    def claim(self, nick: str) -> Command:
        """Take a free nickname for this node, for ``ttl`` seconds (reply: truthy)."""
        key = self.keys.nick(nick_key(nick))
        return lambda pipe: pipe.set(key, self.node, nx=True, ex=self.ttl)

    def take(self, nick: str) -> Command:
        """Take a nickname from whoever holds it (reply: their node, or "")."""
        key = self.keys.nick(nick_key(nick))
        return lambda pipe: self._take(
            keys=[key], args=[self.node, self.ttl], client=pipe
        )

    def reserve(self, room: str, name: str, limit: int) -> Command:
        """Create ``room`` within ``limit`` rooms (reply: its name, or None)."""
        return lambda pipe: self._reserve(
            keys=[self.keys.rooms], args=[room, name, limit], client=pipe
        )

    def unreserve(self, room: str, default: str) -> Command:
        keys = [self.keys.rooms, self.keys.members(room)]
        return lambda pipe: self._unreserve(
            keys=keys, args=[room, default], client=pipe
        )

    # Questions

    async def opening(
        self, room: str, count: int
    ) -> tuple[list[Any], str, dict[str, str]]:
        """
        A room's newest ``count`` entries (newest first), its topic, and
        who is in it as of the newest entry (one transaction: the scripts
        change the members and add the entries in one step).
        """
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xrevrange(self.keys.stream(room), count=count)
            pipe.get(self.keys.topic(room))
            pipe.hgetall(self.keys.members(room))
            newest, topic, held = await pipe.execute()
        return newest, topic or "", _nicks(held)

    async def members(self, room: str) -> dict[str, str]:
        """Nickname key -> nickname of everyone in ``room``."""
        return _nicks(await self.client.hgetall(self.keys.members(room)))

    async def roster(self, room: str) -> tuple[str | None, list[str]]:
        """
        The room's name (None if it does not exist) and who is in it, in
        key order (the hash is keyed by nickname key: plain string sort).
        """
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.members(room))
            pipe.hget(self.keys.rooms, room)
            held, name = await pipe.execute()
        return name, [_node_and_nick(held[key])[1] for key in sorted(held)]

    async def rooms(
        self, default: str, default_name: str
    ) -> list[tuple[str, int, str]]:
        names: dict[str, str] = await self.client.hgetall(self.keys.rooms)
        names.setdefault(default, default_name)
        ordered = list(names)
        async with self.client.pipeline(transaction=False) as pipe:
            for key in ordered:
                pipe.hlen(self.keys.members(key))
                pipe.get(self.keys.topic(key))
            replies = await pipe.execute()
        return [
            (names[key], int(replies[2 * i]), replies[2 * i + 1] or "")
            for i, key in enumerate(ordered)
        ]

    async def whereabouts(self, node: str, nick: str) -> tuple[str, str] | None:
        """(room key, nickname as spelled) of ``node``'s user ``nick``, or None."""
        entry = await self.client.hget(self.keys.users(node), nick_key(nick))
        return None if entry is None else _node_and_nick(entry)

    async def holder(self, nick: str) -> tuple[str, str] | None:
        """(node, nickname as spelled) of a registered user, or None."""
        key = nick_key(nick)
        node = await self.client.get(self.keys.nick(key))
        if node is None:
            return None
        entry = await self.client.hget(self.keys.users(node), key)
        if entry is None:
            return None
        return node, _node_and_nick(entry)[1]

    # Liveness

    async def renew(self) -> bool:
        """This node is alive; True if others had declared it dead."""
        keys = self.keys
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(keys.alive(self.node), "1", ex=self.ttl)
            pipe.sadd(keys.nodes, self.node)
            pipe.exists(keys.reaped(self.node))
            _, _, reaped = await pipe.execute()
        return bool(reaped)

    async def keep_names(self, nicks: list[str]) -> list[int]:
        """Renew (or take back) names; the 0-based positions of lost ones."""
        lost = await self._claim(
            keys=[self.keys.nick(nick_key(n)) for n in nicks],
            args=[self.node, self.ttl],
        )
        return [int(position) - 1 for position in lost]

    async def everyone(self) -> int:
        """People in every room, on every node."""
        rooms = await self.client.hkeys(self.keys.rooms)
        async with self.client.pipeline(transaction=False) as pipe:
            for key in rooms:
                pipe.hlen(self.keys.members(key))
            return sum(await pipe.execute())

    async def dead_nodes(self) -> list[str]:
        """Other nodes that stopped beating."""
        keys = self.keys
        nodes = [n for n in await self.client.smembers(keys.nodes) if n != self.node]
        if not nodes:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for node in nodes:
                pipe.exists(keys.alive(node))
            alive = await pipe.execute()
        return [n for n, up in zip(nodes, alive, strict=True) if not up]

    async def take_reaping(self, node: str) -> dict[str, tuple[str, str]] | None:
        """
        Become the one node clearing ``node`` away: its users' nickname key
        -> (room, nick); None if another node is on it.
        """
        if not await self.client.set(
            self.keys.reaping(node), self.node, nx=True, ex=60
        ):
            return None
        users = await self.client.hgetall(self.keys.users(node))
        return {key: _node_and_nick(v) for key, v in users.items()}

    async def reaped(self, node: str) -> None:
        keys = self.keys
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.delete(keys.users(node), keys.inbox(node))
            pipe.srem(keys.nodes, node)
            pipe.set(keys.reaped(node), self.node, ex=86400)
            await pipe.execute()

    async def back_from_the_dead(self) -> bool:
        """Clear this node's "reaped" mark; True if it was there."""
        return bool(await self.client.delete(self.keys.reaped(self.node)))

    async def retire(self) -> None:
        """A node stopping cleanly removes its traces."""
        keys = self.keys
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.srem(keys.nodes, self.node)
            pipe.delete(
                keys.alive(self.node), keys.users(self.node), keys.inbox(self.node)
            )
            await pipe.execute()

    async def prune(self, older_than_ms: int) -> int:
        """
        Trim every room stream to entries newer than ``older_than_ms``
        (``--history-max-age``); done by one node at a time.
        """
        if not await self.client.set(self.keys.pruning, self.node, nx=True, ex=30):
            return 0
        streams = 0
        async for stream in self.client.scan_iter(
            match=self.keys.stream("*"), count=500
        ):
            await self.client.xtrim(stream, minid=f"{older_than_ms}-0")
            streams += 1
        return streams
