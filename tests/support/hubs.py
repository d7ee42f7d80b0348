"""
Hubs in one process over either backend, driven line by line.

``Hubs("memory")`` is one hub on a fake clock; ``Hubs("redis", url)`` runs
hubs (nodes) sharing a real redis-server on one asyncio event loop (the
asyncio reactor is made, not installed: the suite's reactor stays the
default one). Tests say what users type and read what they were sent;
``settle`` waits until everything said so far has reached every node.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from twchat.accounts import IAccountStore
from twchat.accounts.logins import Logins
from twchat.accounts.redis import RedisAccounts
from twchat.accounts.sqlite import SQLiteAccounts
from twchat.backend.memory import MemoryBackend
from twchat.backend.redis.backend import RedisBackend
from twchat.commands import handle_line
from twchat.history import History
from twchat.hub import NODE_LOST, Hub
from twchat.moderation.redis import RedisModeration
from twchat.moderation.sqlite import SQLiteModeration
from twchat.moderation.store import IModerationStore
from twchat.room import PresencePolicy
from twchat.statefile import prepare_state

from . import WAIT
from .fakes import RecordingMember, SyncHasher, SyncPool

__all__ = ["BACKENDS", "PASSWORD", "Chat", "Hubs", "SlowRoomState"]

#: The password the helpers register accounts with.
PASSWORD = "correct-horse"

#: Every way to run the rules: one process, one Redis node, users spread
#: over two Redis nodes. A rule must read the same on all of them.
BACKENDS = ("memory", "redis", "redis-2-nodes")


def _entry_id(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


class Hubs:
    """The hubs of one test, over one kind of backend."""

    def __init__(self, kind: str, redis_url: str = "", directory: Path | None = None):
        self.kind = kind
        self.redis_url = redis_url
        self.directory = directory
        self.hubs: list[Hub] = []
        self._next = itertools.count()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clock: Clock | None = None
        #: What bans and mutes expire by, on every backend.
        self.wall = Clock()
        if kind == "memory":
            self.clock = self.wall
            self.reactor: Any = self.clock
        else:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.reactor = AsyncioSelectorReactor(self.loop)

    # Building

    def hub(
        self,
        url: str = "",
        history: bool = True,
        max_rooms: int = 100,
        history_replay: int = 20,
        presence: PresencePolicy | None = None,
        ttl: int = 10,
        registration: bool = True,
        require_account: bool = False,
    ) -> Hub:
        """A new hub (a new node in Redis mode), started."""
        backend: Any
        accounts: IAccountStore
        if self.kind == "memory":
            store = None
            assert self.directory is not None, "the state file needs a directory"
            path = self.directory / f"state{len(self.hubs)}.sqlite3"
            prepare_state(str(path))
            pool = SyncPool(path)
            if history:
                store = History(self.reactor, pool, keep=100)
            backend = MemoryBackend("lobby", store)
            accounts = SQLiteAccounts(pool, self.wall)
            moderation: IModerationStore = SQLiteModeration(pool)
        else:
            backend = RedisBackend(
                self.reactor,
                url or self.redis_url,
                lost_reason=NODE_LOST,
                keep=100 if history else 0,
                ttl=ttl,
            )
            accounts = RedisAccounts(backend.link.client, queue=backend.link.write)
            moderation = RedisModeration(backend.link.client)
        logins = Logins(
            accounts,
            SyncHasher(),
            self.reactor,
            registration=registration,
            required=require_account,
        )
        hub = Hub(
            backend,
            self.reactor,
            presence,
            max_rooms=max_rooms,
            history_replay=history_replay if history else 0,
            logins=logins,
            moderation=moderation,
        )
        hub.wall = self.wall
        hub.start()
        self.hubs.append(hub)
        return hub

    def nodes(self, **options: Any) -> list[Hub]:
        """The hubs users are spread over: one, or two Redis nodes."""
        count = 2 if self.kind == "redis-2-nodes" else 1
        return [self.hub(**options) for _ in range(count)]

    # Driving

    def until(self, check: Callable[[], object], timeout: float = WAIT) -> None:
        """Wait for ``check()`` to hold (at once, in one process)."""
        if self.loop is None:
            assert self.clock is not None
            self.clock.advance(0)
            assert check(), "the condition does not hold"
            return

        async def wait() -> None:
            deadline = asyncio.get_event_loop().time() + timeout
            while not check():
                assert asyncio.get_event_loop().time() < deadline, "timed out"
                await asyncio.sleep(0.005)

        self.loop.run_until_complete(wait())

    def later(self, seconds: float) -> None:
        """
        Let ``seconds`` pass on the fake clock: in one process, everything's;
        in Redis mode, the moderation clock's (the rest is real time).
        """
        self.wall.advance(seconds)

    def done(self, d: Deferred[Any] | None) -> None:
        """Run until an action has finished."""
        if d is None:
            return
        if self.loop is None:
            assert d.called, "in one process every action is done at once"
            return
        self.loop.run_until_complete(asyncio.wait_for(d.asFuture(self.loop), WAIT))

    def type(self, hub: Hub, member: RecordingMember, *lines: str) -> None:
        """``member`` types lines; each is acted on before the next, as a
        connection does."""
        for line in lines:
            self.done(self.type_later(hub, member, line))

    def type_later(
        self, hub: Hub, member: RecordingMember, line: str
    ) -> Deferred[None] | None:
        """``member`` types ``line``; what it waits on is left to ``done``."""
        member.hub = hub
        return handle_line(hub, member, line)

    def join(self, hub: Hub, nick: str, host: str = "") -> RecordingMember:
        """A user registered as ``nick`` on ``hub``, with the greeting read."""
        member = RecordingMember()
        if host:
            member.host = host
        self.until(lambda: hub.backend.up)
        self.type(hub, member, nick)
        assert member.nick == nick, member.lines
        self.settle()
        member.take()
        return member

    def settle(self) -> None:
        """Everything said so far has been delivered on every node."""
        if self.loop is None:
            assert self.clock is not None
            self.clock.advance(0)  # the turn's end
            return
        for hub in self.hubs:
            backend = hub.backend
            assert isinstance(backend, RedisBackend)
            self.loop.run_until_complete(self._barrier(backend))

    async def _barrier(self, backend: RedisBackend) -> None:
        # Every node's writes are out; a marker then added to this node's
        # inbox comes back in an XREAD that also returns everything added
        # to the rooms' streams before it.
        for hub in self.hubs:
            other = hub.backend
            assert isinstance(other, RedisBackend)
            await other.link.drained()
        link = backend.link
        marker = _entry_id(await link.client.xadd(link.inbox, {"k": "wake"}))
        deadline = asyncio.get_event_loop().time() + WAIT
        while _entry_id(link.cursors[link.inbox].replace("$", "0-0")) < marker:
            assert asyncio.get_event_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.002)

    def close(self) -> None:
        for hub in self.hubs:
            hub.close()
            self.done(hub.stop())
        if self.loop is not None:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            asyncio.set_event_loop(None)


#: A history line's time stamp, for reading lines without it.
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d )?\d\d:\d\d\] ")


class Chat:
    """Users on the hubs of one test, placed round-robin over the nodes."""

    def __init__(self, hubs: Hubs, **options: object) -> None:
        self.hubs = hubs
        self.nodes = hubs.nodes(**options)
        self.users: dict[str, tuple[Hub, RecordingMember]] = {}

    def join(self, *nicks: str, host: str = "") -> list[RecordingMember]:
        members = []
        for nick in nicks:
            hub = self.nodes[len(self.users) % len(self.nodes)]
            member = self.hubs.join(hub, nick, host)
            self.users[nick] = (hub, member)
            members.append(member)
        self.hubs.settle()
        for member in members:
            member.take()
        return members

    def register(
        self, nick: str, password: str = PASSWORD, host: str = ""
    ) -> RecordingMember:
        """``nick`` online, their name made an account with ``password``."""
        (member,) = self.join(nick, host=host)
        self.type(nick, f"/register {password}")
        assert member.take() == [
            f"*** {nick} is now registered; "
            "next time you will be asked for its password"
        ]
        return member

    def login(
        self, nick: str, password: str = PASSWORD, host: str = ""
    ) -> RecordingMember:
        """A new connection logged in to the account ``nick``."""
        hub, member = self.connect()
        if host:
            member.host = host
        self.hubs.type(hub, member, nick, password)
        assert member.nick == nick, member.lines
        self.users[nick] = (hub, member)
        self.hubs.settle()
        member.take()
        return member

    def operator(self, nick: str, host: str = "") -> RecordingMember:
        """``nick`` logged in to an account with the server operator flag."""
        self.register(nick, host=host)
        hub = self.users[nick][0]
        self.hubs.done(hub.logins.store.set_operator(nick, True))
        self.quit(nick)
        return self.login(nick, host=host)

    def connect(self) -> tuple[Hub, RecordingMember]:
        """A connection that has not chosen a nickname yet."""
        hub = self.nodes[len(self.users) % len(self.nodes)]
        member = RecordingMember()
        member.hub = hub
        self.hubs.until(lambda: hub.backend.up)
        self.hubs.done(hub.greet(member))
        return hub, member

    def type(self, nick: str, *lines: str) -> None:
        hub, member = self.users[nick]
        self.hubs.type(hub, member, *lines)
        self.hubs.settle()

    def quit(self, nick: str, reason: str = "") -> None:
        hub, member = self.users.pop(nick)
        hub.leave(member, reason)
        self.hubs.settle()

    def sent_back(self, nick: str, room: str = "lobby") -> None:
        """Wait until ``nick``, sent out of a room, reads ``room``'s roll call."""
        _, member = self.users[nick]
        wanted = f"*** #{room} has "
        self.hubs.until(lambda: any(line.startswith(wanted) for line in member.lines))

    def clear(self) -> None:
        """Forget what everyone read so far."""
        self.hubs.settle()
        for _, member in self.users.values():
            member.take()

    def read(self, nick: str) -> list[str]:
        """What ``nick`` read since last asked, history stamps removed."""
        self.hubs.settle()
        return [_STAMP.sub("[T] ", line) for line in self.users[nick][1].take()]


class SlowRoomState:
    """
    A hub whose rooms' moderation state takes until ``arrive`` to read, as
    the first entry into a room on a node does (``Moderator.entered``):
    whoever enters meanwhile waits for it, already in the room.
    """

    def __init__(self, hub: Hub) -> None:
        self.moderator = hub.moderator
        self._entered = hub.moderator.entered
        self._waiting: list[tuple[Any, Deferred[None]]] = []
        hub.moderator.entered = self._slow  # type: ignore[method-assign]

    def _slow(self, room: Any) -> Deferred[None]:
        read: Deferred[None] = Deferred()
        self._waiting.append((room, read))
        return read

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def arrive(self) -> None:
        """The state is read: those waiting go on; later entries do not wait."""
        self.moderator.entered = self._entered  # type: ignore[method-assign]
        waiting, self._waiting = self._waiting, []
        for room, read in waiting:
            real = self._entered(room)
            if real is None:
                read.callback(None)
            else:
                real.chainDeferred(read)
