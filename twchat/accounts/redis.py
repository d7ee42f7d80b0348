"""
Accounts in Redis (Redis mode): every node sees the same accounts.

An account is a hash ``twchat:account:KEY`` plus its key in the set
``twchat:accounts``; a change that must check first (add only if new,
update only if it exists) is one Lua script. Accounts live as long as
Redis keeps its data: run Redis with persistence (AOF, or RDB snapshots)
or a restart of Redis forgets them.

Every nickname chosen is looked up here. In the server the lookup goes
out in the node's pipeline (``queue``: the link's ordered writes), so a
crowd arriving together asks in one round trip, not one pooled command
each, and a lookup comes after whatever this node wrote before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..backend.redis.link import Command
from ..backend.redis.store import Keys
from ..nicknames import nick_key
from . import Account, IAccountStore

__all__ = ["AccountsInRedis", "RedisAccounts"]

_T = TypeVar("_T")

#: KEYS: account, accounts. ARGV: key, name, hash, operator, created.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'hash', ARGV[3],
  'operator', ARGV[4], 'created', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

#: KEYS: account. ARGV: field, value.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def _account(fields: dict[str, str]) -> Account:
    return Account(
        fields["name"],
        fields["hash"],
        fields.get("operator") == "1",
        float(fields.get("created", 0)),
    )


#: Sends one command in a pipeline and gives its reply (``RedisLink.write``).
Queue = Callable[[Command], Awaitable[Any]]


class AccountsInRedis:
    """
    The operations, as coroutines (the admin tool awaits them directly).

    With ``queue``, lookups go through it; without, each is a command of
    its own on ``client``.
    """

    def __init__(
        self, client: Any, keys: Keys | None = None, queue: Queue | None = None
    ) -> None:
        self.client = client
        self.keys = keys or Keys()
        self._queue = queue
        self._add = client.register_script(_ADD)
        self._update = client.register_script(_UPDATE)

    async def get(self, name: str) -> Account | None:
        key = self.keys.account(nick_key(name))
        if self._queue is None:
            fields = await self.client.hgetall(key)
        else:
            fields = await self._queue(lambda pipe: pipe.hgetall(key))
        return _account(fields) if fields else None

    async def add(self, account: Account) -> bool:
        key = nick_key(account.name)
        added = await self._add(
            keys=[self.keys.account(key), self.keys.accounts],
            args=[
                key,
                account.name,
                account.hash,
                int(account.operator),
                account.created,
            ],
        )
        return bool(added)

    async def set_hash(self, name: str, hash: str) -> bool:
        key = self.keys.account(nick_key(name))
        return bool(await self._update(keys=[key], args=["hash", hash]))

    async def set_operator(self, name: str, operator: bool) -> bool:
        key = self.keys.account(nick_key(name))
        return bool(await self._update(keys=[key], args=["operator", int(operator)]))

    async def remove(self, name: str) -> bool:
        key = nick_key(name)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.account(key))
            pipe.srem(self.keys.accounts, key)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def all(self) -> list[Account]:
        keys = sorted(await self.client.smembers(self.keys.accounts))
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self.keys.account(key))
            found = await pipe.execute()
        return [_account(fields) for fields in found if fields]


@implementer(IAccountStore)
class RedisAccounts:
    """The store the server uses: the same operations, as Deferreds."""

    def __init__(
        self, client: Any, keys: Keys | None = None, queue: Queue | None = None
    ) -> None:
        self.redis = AccountsInRedis(client, keys, queue)

    @staticmethod
    def _deferred(work: Coroutine[Any, Any, _T]) -> Deferred[_T]:
        return Deferred.fromFuture(asyncio.ensure_future(work))

    def get(self, name: str) -> Deferred[Account | None]:
        return self._deferred(self.redis.get(name))

    def add(self, account: Account) -> Deferred[bool]:
        return self._deferred(self.redis.add(account))

    def set_hash(self, name: str, hash: str) -> Deferred[bool]:
        return self._deferred(self.redis.set_hash(name, hash))

    def set_operator(self, name: str, operator: bool) -> Deferred[bool]:
        return self._deferred(self.redis.set_operator(name, operator))

    def remove(self, name: str) -> Deferred[bool]:
        return self._deferred(self.redis.remove(name))

    def all(self) -> Deferred[list[Account]]:
        return self._deferred(self.redis.all())
