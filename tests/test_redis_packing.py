"""A node's Redis commands are packed by hiredis, byte for byte as redis-py's."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import DataError

from twchat.backend.redis.link import connect

#: Commands as a node sends them (a chat line's XADD with its fields),
#: and the kinds of argument redis-py takes.
COMMANDS: list[tuple[Any, ...]] = [
    (
        "XADD",
        "twchat:stream:lobby",
        "MAXLEN",
        "~",
        2**53,
        "*",
        "k",
        "chat",
        "n",
        "alice",
        "t",
        "héllo 😀 \x01",
        "c",
        "node.1:17",
    ),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"twchat"),
    ("SET", "k", 0.1, -3, 1e20, 2**70, b"\xff\x00"),
    ("SET", "k", bytearray(b"raw"), memoryview(b"view")),
    ("XREAD", "COUNT", 1000, "BLOCK", 2000, "STREAMS", "a", "b", "0-0", "$"),
]


def _packed(connection: Connection, command: tuple[Any, ...]) -> bytes:
    return b"".join(bytes(part) for part in connection.pack_command(*command))


def test_the_clients_connections_pack_in_c() -> None:
    client = connect("redis://127.0.0.1:6379/0")
    connection = client.connection_pool.make_connection()
    # redis-py's own packing, as the asyncio client does it.
    plain = Connection()
    assert type(connection).pack_command is not Connection.pack_command
    for command in COMMANDS:
        assert _packed(connection, command) == _packed(plain, command)
    # One piece per command: hiredis packed it (redis-py's packing splits
    # the arguments it does not copy, such as a memoryview).
    assert len(connection.pack_command(*COMMANDS[0])) == 1


@pytest.mark.parametrize("bad", [None, True, object()])
def test_what_redis_py_refuses_is_refused_the_same_way(bad: object) -> None:
    connection = connect("redis://127.0.0.1:6379/0").connection_pool.make_connection()
    with pytest.raises(DataError, match="Invalid input of type"):
        connection.pack_command("SET", "k", bad)


def test_tls_connections_pack_in_c_too() -> None:
    pool = connect("rediss://127.0.0.1:6380/0").connection_pool
    assert issubclass(pool.connection_class, SSLConnection)
    assert pool.connection_class.pack_command is not Connection.pack_command


def test_another_encoding_keeps_redis_pys_packing() -> None:
    # hiredis writes text as UTF-8; a URL may ask for another encoding.
    pool = connect("redis://127.0.0.1:6379/0?encoding=latin-1").connection_pool
    assert pool.connection_class is Connection
    connection = pool.make_connection()
    assert _packed(connection, ("SET", "k", "é")).endswith(b"$1\r\n\xe9\r\n")
