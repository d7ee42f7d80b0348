"""
Moderation state in Redis (Redis mode), shared by every node: a hash
``twchat:mod:SCOPE`` per scope and the list ``twchat:modlog``. Like
accounts, it lasts as long as Redis keeps its data (run it persistent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..backend.redis.store import Keys
from .state import Change
from .store import LOG_KEEP, IModerationStore

__all__ = ["RedisModeration"]

_T = TypeVar("_T")


@implementer(IModerationStore)
class RedisModeration:
    def __init__(self, client: Any, keys: Keys | None = None) -> None:
        self._client = client
        self._keys = keys or Keys()

    @staticmethod
    def _deferred(work: Coroutine[Any, Any, _T]) -> Deferred[_T]:
        return Deferred.fromFuture(asyncio.ensure_future(work))

    def fields(self, scope: str) -> Deferred[dict[str, str]]:
        return self._deferred(self._fields(scope))

    async def _fields(self, scope: str) -> dict[str, str]:
        return dict(await self._client.hgetall(self._keys.moderation(scope)))

    def change(self, scope: str, changes: list[Change]) -> Deferred[None]:
        return self._deferred(self._change(scope, changes))

    async def _change(self, scope: str, changes: list[Change]) -> None:
        key = self._keys.moderation(scope)
        async with self._client.pipeline(transaction=True) as pipe:
            for field, value in changes:
                if value is None:
                    pipe.hdel(key, field)
                else:
                    pipe.hset(key, field, value)
            await pipe.execute()

    def add_new(self, scope: str, field: str, value: str) -> Deferred[bool]:
        return self._deferred(self._add_new(scope, field, value))

    async def _add_new(self, scope: str, field: str, value: str) -> bool:
        key = self._keys.moderation(scope)
        return bool(await self._client.hsetnx(key, field, value))

    def record(self, entry: str) -> Deferred[None]:
        return self._deferred(self._record(entry))

    async def _record(self, entry: str) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(self._keys.modlog, entry)
            pipe.ltrim(self._keys.modlog, -LOG_KEEP, -1)
            await pipe.execute()

    def records(self, count: int) -> Deferred[list[str]]:
        return self._deferred(self._records(count))

    async def _records(self, count: int) -> list[str]:
        if count <= 0:
            return []
        return list(await self._client.lrange(self._keys.modlog, -count, -1))
