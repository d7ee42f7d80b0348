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

__all__ = [
    "CLAIM",
    "JOIN",
    "LEAVE",
    "NODE_TTL",
    "RELEASE",
    "RENAME",
    "RESERVE",
    "STREAM_MAX",
    "UNRESERVE",
    "Keys",
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


#: Seconds a node's claims live without a heartbeat: a node that dies
#: loses its users (leave notices everywhere, nicknames free) within
#: NODE_TTL plus one heartbeat (NODE_TTL / 3).
NODE_TTL = 10
#: Entries a room's stream keeps (roughly: trimmed with MAXLEN ~).
STREAM_MAX = 10000


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
#: Returns {entry id or "", people in the room}.
JOIN = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t' .. ARGV[3])
redis.call('HSETNX', KEYS[2], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4] .. '\\t' .. ARGV[3])
local n = redis.call('HLEN', KEYS[1])
local id = ''
if ARGV[9] == '1' then
  id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*',
    'k', 'join', 'n', ARGV[3], 'c', ARGV[6], 'u', n, 'f', ARGV[7])
end
return {id, n}
"""

#: Someone leaves a room (and, if ARGV[10] is 1, the chat: their
#: nickname is freed). Only the node that holds them can take them out;
#: if nobody holds them (Redis lost its data) the leave is still told.
#: KEYS: members, rooms, node users, stream, topic, nick.
#: ARGV: nick key, node, nick, room key, reason, went to, stream max
#: length, default room key, conn, free the nickname (1/0).
#: Returns {entry id or "" if they were not there, people left}.
LEAVE = """
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
redis.call('HDEL', KEYS[1], ARGV[1])
local n = redis.call('HLEN', KEYS[1])
if n == 0 and ARGV[4] ~= ARGV[8] then
  redis.call('HDEL', KEYS[2], ARGV[4])
  redis.call('DEL', KEYS[5])
end
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*',
  'k', 'leave', 'n', ARGV[3], 'c', ARGV[9], 'u', n, 'r', ARGV[5], 'w', ARGV[6])
return {id, n}
"""

#: A nickname change, once the new name is claimed.
#: KEYS: members, node users, stream, old nick.
#: ARGV: old key, new key, node, old nick, new nick, room key, conn,
#: stream max length.
RENAME = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '\\t' .. ARGV[5])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[6] .. '\\t' .. ARGV[5])
if ARGV[1] ~= ARGV[2] and redis.call('GET', KEYS[4]) == ARGV[3] then
  redis.call('DEL', KEYS[4])
end
return redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*',
  'k', 'nick', 'o', ARGV[4], 'n', ARGV[5], 'c', ARGV[7])
"""

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

#: Free a nickname this node holds. KEYS: nick. ARGV: node.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
