"""
Commands to Redis packed in C.

redis-py's synchronous client packs each command with hiredis; its asyncio
client, which a node uses, packs them in Python: 8.5 µs for the XADD of a
chat line against hiredis's 1.1 µs on this machine, paid by the node for
every line its users say (a sixth of a node's reactor time in the
two-node load). ``pack_in_c`` gives a client's connections hiredis's
packing, with redis-py's own for whatever hiredis refuses, so the bytes
sent and the errors raised stay redis-py's.
"""

from __future__ import annotations

import codecs
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

__all__ = ["pack_in_c"]


class _PackedInC(AbstractConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        # As redis-py does: a first argument "CONFIG GET" is two words.
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            # bytearray, memoryview, or an invalid type: redis-py's packing
            # takes the first two and says what is wrong with the rest.
            return super().pack_command(*args)


def pack_in_c(client: Redis) -> None:
    """Have ``client``'s connections pack commands with hiredis."""
    pool = client.connection_pool
    # hiredis encodes text as UTF-8, redis-py as the URL's ?encoding= says.
    try:
        encoding = codecs.lookup(pool.connection_kwargs.get("encoding", "utf-8"))
    except LookupError:
        return  # redis-py says what is wrong with it when it connects
    if encoding.name != "utf-8":
        return
    base = pool.connection_class
    if not issubclass(base, _PackedInC):
        pool.connection_class = type(base.__name__, (_PackedInC, base), {})
