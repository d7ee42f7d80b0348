#!/usr/bin/env python3
"""
The receive -> broadcast -> outbox path in one process, without sockets.

    python bench/micro.py                 # best of 5, in milliseconds
    python bench/micro.py --reps 1        # for callgrind (see bench/README.md)

100 users on in-memory transports, 10 of them send 200 lines each, every
line reaches the 99 others. Wall-clock time on a busy 2-core machine is
noisy; run it under ``valgrind --tool=callgrind`` with 1 and 3 repetitions
and halve the difference to get the instructions per repetition, which
repeat exactly: a way to tell a real hot-path cost from run-to-run noise.
``PYTHONPATH=OTHER_CHECKOUT`` measures another version of twchat.

``--moderated`` prices moderation on that path: the room holds 1000 address
bans and every user but the last ignores the last one (who never speaks),
so each line goes through the room's ban and ignore bookkeeping; the
deliveries are the same, so the instruction counts compare directly.

``--register`` measures arrivals instead: each repetition connects
``ARRIVALS`` new users one turn at a time (greeting, nickname, welcome), as
a crowd arriving at once reaches the reactor, and checks every welcome.

``--alone`` measures the other shape of load, the latency and crowd
scenarios': each line alone in its reactor turn, to ``ALONE_USERS - 1``
receivers on real sockets (socket pairs, whose other ends are read between
repetitions), so the path to the socket and the ``send`` call itself are
in the count, not an in-memory transport's ``write``.

``--history`` prices history on the reactor thread: every line is recorded
(kept in its room's batch, the batch joined into its row) and the rows go to a
pool that drops them, since the database thread's work is not the
reactor's.

``--redis-read`` measures a Redis node's reading instead, without Redis:
``STREAM_ENTRIES`` chat entries of a room's stream a repetition, as one
``XREAD`` hands them over (dozens to a millisecond), decoded into events
for a listener that drops them; with ``--history`` the node keeps them as
its room's history too, so the difference is what history costs a node.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import sys
import time
from typing import Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import ISystemHandle
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from twchat.backend import IListener
from twchat.backend.memory import MemoryBackend
from twchat.backend.redis.backend import RedisBackend
from twchat.backend.redis.codec import TEXT, chat_fields
from twchat.config import ChatConfig
from twchat.history import History
from twchat.moderation.masks import parse_mask
from twchat.moderation.memory import MemoryModeration
from twchat.moderation.state import Sanction, ban_field, room_scope
from twchat.room import room_key
from twchat.server import ChatServer

USERS, SENDERS, LINES = 100, 10, 200
BANS = 1000
ARRIVALS = 1000
ALONE_USERS, ALONE_LINES = 1000, 20


def _config(users: int) -> ChatConfig:
    """Room for ``users``; no flood control or bound that machine-made load trips."""
    return ChatConfig(
        flood_rate=0, max_recvq=10**7, max_clients=users + 1, max_per_ip=0
    )


def _banned(room: str) -> MemoryModeration:
    """A store holding ``BANS`` bans of addresses nobody connects from."""
    store = MemoryModeration()
    changes: list[tuple[str, str | None]] = []
    for i in range(BANS):
        mask = parse_mask(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}")
        assert mask is not None
        changes.append((ban_field(mask), Sanction(mask, None, "", "", 0).encode()))
    store.change(room_scope(room), changes)
    return store


class _NoRows:
    """A cursor on an empty database that writes nowhere."""

    def execute(self, *args: object) -> None:
        pass

    def executemany(self, *args: object) -> None:
        pass

    def fetchall(self) -> list[Any]:
        return []

    def fetchone(self) -> None:
        return None


class _DroppingPool:
    """Runs each interaction at once on a cursor that keeps nothing."""

    def runInteraction(self, interaction: Any, *args: Any) -> Deferred[Any]:
        return succeed(interaction(_NoRows(), *args))

    def close(self) -> None:
        pass


def _connect(factory: Any, port: int) -> tuple[Any, StringTransport]:
    """A new connection from 127.0.0.1:``port``, on an in-memory transport."""
    address = IPv4Address("TCP", "127.0.0.1", port)
    transport = StringTransport(peerAddress=address)
    protocol = factory.buildProtocol(address)
    assert protocol is not None
    protocol.makeConnection(transport)
    return protocol, transport


@implementer(ISystemHandle)
class _SocketTransport(FileDescriptor):
    """
    A connected socket with a TCP peer's address, as the outbox sees a
    real one (it writes to ``getHandle()`` directly); never in a reactor.
    """

    def __init__(self, sock: socket.socket, port: int) -> None:
        super().__init__()
        self.socket = sock
        self._peer = IPv4Address("TCP", "127.0.0.1", port)

    def getHandle(self) -> socket.socket:
        return self.socket

    def getPeer(self) -> IPv4Address:
        return self._peer

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 6667)

    def fileno(self) -> int:
        return self.socket.fileno()


def _read_all(socks: list[socket.socket]) -> bytes:
    """What waits on each of ``socks``, without blocking."""
    chunks = []
    for sock in socks:
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _alone(reps: int) -> int:
    """``ALONE_LINES`` lines, each alone in its turn, to everyone on sockets."""
    clock = Clock()
    config = _config(ALONE_USERS)
    server = ChatServer(clock, config)
    server.start()
    factory = server.tcp_factory()
    ports = itertools.count(40000)
    users, peers = [], []
    for i in range(ALONE_USERS):
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        transport = _SocketTransport(ours, next(ports))
        protocol = factory.buildProtocol(transport.getPeer())
        assert protocol is not None
        protocol.makeConnection(transport)
        protocol.dataReceived(f"u{i}\n".encode())
        users.append(protocol)
        peers.append(theirs)
        clock.advance(0)
    _read_all(peers)
    lines = [f"line {i} {'x' * 40}\n".encode() for i in range(ALONE_LINES)]
    deliveries = ALONE_LINES * (ALONE_USERS - 1)
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        for line in lines:
            users[0].dataReceived(line)
            clock.advance(0)
        best = min(best, time.perf_counter() - started)
        # Read between repetitions, untimed: the sockets' buffers stay small.
        received = _read_all(peers).count(b"<u0> line ")
        if received != deliveries:
            sys.exit(f"only {received} of {deliveries} deliveries in a repetition")
    print(
        f"{best * 1e9 / deliveries:.0f} ns a delivery, {ALONE_LINES} lines alone "
        f"x {ALONE_USERS - 1} receivers on sockets (best of {reps})"
    )
    return 0


#: Entries a --redis-read repetition hands the node, 40 to a millisecond.
STREAM_ENTRIES = 1000


@implementer(IListener)
class _Dropping:
    """A listener that drops what a node reads (counting the lines)."""

    def __init__(self) -> None:
        self.lines = 0

    def room_event(self, room: str, event: object, origin: str) -> None:
        self.lines += 1

    def private(self, to: str, event: object) -> None:
        pass

    def not_sent(self, conn: str, sure: bool) -> None:
        pass

    def name_lost(self, conn: str) -> None:
        pass

    def taken_over(self, conn: str) -> None:
        pass


def _redis_read(reps: int, history: bool) -> int:
    """A node reading ``STREAM_ENTRIES`` entries of its room's stream."""
    # Nothing connects: the link is never started.
    node = RedisBackend(Clock(), "redis://127.0.0.1:1/0", keep=100 if history else 0)
    listener = _Dropping()
    node.attach(listener)
    room = node._followed("lobby", "lobby")
    room.following = asyncio.new_event_loop().create_future()
    stream = node.keys.stream("lobby")
    first_ms = 1_763_854_000_000
    entries = [
        (
            f"{first_ms + i // 40}-{i % 40}",
            chat_fields("chat", f"u{i % 10}", f"line {i} {'x' * 40}", f"c{i % 10}"),
        )
        for i in range(STREAM_ENTRIES)
    ]
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        node._deliver(stream, entries)
        best = min(best, time.perf_counter() - started)
    if listener.lines != reps * STREAM_ENTRIES:
        sys.exit(f"only {listener.lines} of {reps * STREAM_ENTRIES} entries delivered")
    kept = node.history.recent("lobby", 100) if node.history is not None else []
    if history and [e.text for e in kept] != [e[1][TEXT] for e in entries[-100:]]:
        sys.exit("the history does not hold the last 100 lines")
    print(f"{best * 1e9 / STREAM_ENTRIES:.0f} ns an entry (best of {reps})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--moderated", action="store_true", help="1000 bans, everyone ignoring one"
    )
    parser.add_argument(
        "--history", action="store_true", help="every line recorded (no disk)"
    )
    parser.add_argument(
        "--register", action="store_true", help=f"{ARRIVALS} arrivals a repetition"
    )
    parser.add_argument(
        "--redis-read",
        action="store_true",
        help="a Redis node reading its room's stream (with --history: kept)",
    )
    parser.add_argument(
        "--alone",
        action="store_true",
        help="each line alone in its turn, to receivers on sockets",
    )
    args = parser.parse_args(argv)
    if args.alone:
        return _alone(args.reps)
    if args.register:
        return _arrivals(args.reps)
    if args.redis_read:
        return _redis_read(args.reps, args.history)
    clock = Clock()
    config = _config(USERS)
    moderation = _banned(config.default_room) if args.moderated else None
    backend = None
    history = None
    if args.history:
        history = History(clock, _DroppingPool())
        backend = MemoryBackend(config.default_room, history)
    server = ChatServer(clock, config, backend=backend, moderation=moderation)
    server.start()
    factory = server.tcp_factory()
    ports = itertools.count(40000)
    users = []
    for i in range(USERS):
        protocol, transport = _connect(factory, next(ports))
        protocol.dataReceived(f"u{i}\n".encode())
        users.append((protocol, transport))
    clock.advance(0)
    if args.moderated:
        for protocol, _ in users[:-1]:
            protocol.dataReceived(f"/ignore u{USERS - 1}\n".encode())
        clock.advance(0)
        if not all(b"ignoring u" in t.value() for _, t in users[:-1]):
            sys.exit("an /ignore was not confirmed")
        key = room_key(config.default_room)
        if len(server.hub.moderator._rooms[key].bans) != BANS:
            sys.exit("the room's bans were not loaded")
    payload = b"".join(f"line {i} {'x' * 40}\n".encode() for i in range(LINES))
    best = float("inf")
    for _ in range(args.reps):
        for _, transport in users:
            transport.clear()
        started = time.perf_counter()
        for protocol, _ in users[:: USERS // SENDERS]:
            protocol.dataReceived(payload)
            clock.advance(0)
        for _ in range(20):
            clock.advance(0)
        if history is not None:
            # The fake clock never reaches the commit interval: every line
            # is encoded once, as a flat-out room's commits every 100 ms do.
            history.commit()
        best = min(best, time.perf_counter() - started)
    expected = SENDERS * LINES * (USERS - 1)
    received = sum(t.value().count(b"\r\n") for _, t in users)
    if received < expected:
        sys.exit(f"only {received} of {expected} deliveries in the last repetition")
    print(
        f"{best * 1000:.1f} ms for {SENDERS * LINES} lines x {USERS - 1} receivers "
        f"(best of {args.reps})"
    )
    return 0


def _arrivals(reps: int) -> int:
    """``ARRIVALS`` registrations a repetition, each in a reactor turn."""
    clock = Clock()
    config = _config(reps * ARRIVALS)
    server = ChatServer(clock, config)
    server.start()
    factory = server.tcp_factory()
    ports = itertools.count(40000)
    best = float("inf")
    for rep in range(reps):
        transports = []
        started = time.perf_counter()
        for i in range(ARRIVALS):
            protocol, transport = _connect(factory, next(ports))
            clock.advance(0)
            protocol.dataReceived(f"u{rep}x{i}\n".encode())
            clock.advance(0)
            transports.append(transport)
        best = min(best, time.perf_counter() - started)
        welcomed = sum(b"*** Welcome, u" in t.value() for t in transports)
        if welcomed != ARRIVALS:
            sys.exit(f"only {welcomed} of {ARRIVALS} arrivals were welcomed")
    print(f"{best * 1e6 / ARRIVALS:.1f} us an arrival (best of {reps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
