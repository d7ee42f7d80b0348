"""
Keeping a node known to the others, and clearing away nodes that died.

Every ``ttl / 3`` seconds a node renews its "alive" key and its users'
nickname claims, counts who is online everywhere, and looks for nodes
whose "alive" key expired: the first node to notice one publishes its
users' leaves (everyone sees them go, their names are free) and removes
its directory. Once an hour's worth of beats, the oldest room entries are
trimmed by age (``--history-max-age``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .link import RedisLink
from .store import Store

__all__ = ["Liveness"]

#: Seconds between trims of the room streams by age.
PRUNE_INTERVAL = 60.0


class Liveness(TimerService):
    """
    The heartbeat of one node, as a service on a timer.

    ``names()`` gives this node's (conn, nickname) pairs; ``lost(conn)`` is
    called for a name another node holds now; ``back()`` once this node
    finds (having just renewed) that it had been declared dead while it was
    stalled.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        link: RedisLink,
        store: Store,
        names: Callable[[], list[tuple[str, str]]],
        lost: Callable[[str], None],
        back: Callable[[], Awaitable[None]],
        lost_reason: str,
        default_room: str,
        max_age: float = 0.0,
    ) -> None:
        super().__init__(store.ttl / 3, self.beat)
        self.clock = clock
        self._clock = clock
        self._link = link
        self._store = store
        self._names = names
        self._lost = lost
        self._back = back
        self._lost_reason = lost_reason
        self._default = default_room
        self._max_age = max_age
        self._last_prune = 0.0

    def beat(self) -> Deferred[None] | None:
        if not self._link.up:
            return None
        return Deferred.fromFuture(asyncio.ensure_future(self._beat()))

    async def _beat(self) -> None:
        try:
            if await self.renew():
                await self._back()
            await self._reap_dead()
            await self._prune()
        except (RedisError, OSError) as e:
            self._link.lost(e)

    async def renew(self) -> bool:
        """Renew this node's claims; True if others had declared it dead."""
        reaped = await self._store.renew()
        names = self._names()
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]
            for position in await self._store.keep_names([n for _, n in chunk]):
                self._lost(chunk[position][0])
        return reaped

    async def _reap_dead(self) -> None:
        for node in await self._store.dead_nodes():
            await self._reap(node)

    async def _reap(self, node: str) -> None:
        """Clear away the users of a node that stopped beating."""
        store = self._store
        users = await store.take_reaping(node)
        if users is None:
            return  # another node is on it
        leaves: list[asyncio.Future[Any]] = []
        for room, nick in users.values():
            command = store.leave(
                "", nick, room, self._lost_reason, "", self._default, True, node
            )
            leaves.append(self._link.write(command))
        await asyncio.gather(*leaves)
        await store.reaped(node)
        self.log.warn(
            "node {node} stopped answering: its {count} users left the chat",
            node=node,
            count=len(users),
        )

    async def _prune(self) -> None:
        if not self._max_age:
            return
        now = self._clock.seconds()
        if now - self._last_prune < PRUNE_INTERVAL:
            return
        self._last_prune = now
        await self._store.prune(int((now - self._max_age) * 1000))
