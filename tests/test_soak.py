"""
A bounded soak: about 200 clients behaving well and badly at once against
the real ``twistd -n chat`` for a fixed time. Afterwards the server is
alive, every well-behaved client received every line in the same order,
and the server's memory stayed under a stated bound.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater

from .support import WAIT
from .support.net import LineClient, free_port
from .support.proc import Twistd, peak_rss_kib

#: Seconds of mixed traffic.
DURATION = 8.0
#: The server's peak RSS must stay under this (it idles at about 45 MiB).
RSS_BOUND_KIB = 150 * 1024

READERS = 100
SENDERS = 20
FLOODERS = 15
RESETTERS = 20
NICK_CHANGERS = 15
SLOW = 20  # registered, never read


@pytest.fixture
def soak_server(tmp_path: Path) -> Iterator[tuple[int, Twistd]]:
    port = free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1", "--max-clients", "500"]
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        yield port, server


async def _pause(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


async def _client(port: int, nick: str, source: str) -> LineClient:
    """Connect from ``source`` (a loopback address) and register."""
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(source, 0))
    d = connectProtocol(endpoint, LineClient())
    d.addTimeout(WAIT, reactor)
    client: LineClient = await d
    await client.until("? Choose a nickname:")
    client.send(nick)
    welcome = await client.line()
    assert welcome.startswith(f"*** Welcome, {nick}!"), welcome
    return client


@pytest_twisted.ensureDeferred
async def test_mixed_crowd(soak_server: tuple[int, Twistd]) -> None:
    port, server = soak_server
    rng = random.Random(1234)
    # Ten clients per loopback address: the per-address limit stays on.
    sources = (f"127.0.0.{2 + i // 10}" for i in range(1000))

    readers = [await _client(port, f"reader{i}", next(sources)) for i in range(READERS)]
    senders = [await _client(port, f"sender{i}", next(sources)) for i in range(SENDERS)]
    flooders = [
        await _client(port, f"flood{i}", next(sources)) for i in range(FLOODERS)
    ]
    changers = [
        await _client(port, f"nick{i}", next(sources)) for i in range(NICK_CHANGERS)
    ]
    resetters = [
        await _client(port, f"reset{i}", next(sources)) for i in range(RESETTERS)
    ]
    slow = []
    for i in range(SLOW):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.bind((next(sources), 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"slow%d\n" % i)
        slow.append(sock)
    coordinator = await _client(port, "coordinator", next(sources))
    await _pause(1.0)  # joins settle (and are summed up: the room is big)
    coordinator.send("START")
    for reader in readers:
        await reader.until("<coordinator> START")

    elapsed = 0.0
    tick = 0.25
    sent = 0
    while elapsed < DURATION:
        for i, sender in enumerate(senders):
            if rng.random() < 0.35:  # about 1.4 lines/s each: under the limit
                sender.send(f"s{i} {sent} " + "é" * rng.randint(0, 40))
                sent += 1
        if rng.random() < 0.2:
            flooder = rng.choice(flooders)
            flooder.send(*[f"flood {n}" for n in range(rng.randint(20, 200))])
        if rng.random() < 0.3:
            changer = rng.choice(changers)
            changer.send(f"/nick n{rng.randint(0, 10**6)}")
        if resetters and rng.random() < 0.3:
            victim = resetters.pop()
            handle = victim.transport.getHandle()  # type: ignore[union-attr]
            handle.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            victim.transport.abortConnection()  # type: ignore[union-attr]
        await _pause(tick)
        elapsed += tick

    coordinator.send("END")
    sequences = []
    for reader in readers:
        seen = await reader.until("<coordinator> END")
        sequences.append(seen)
        assert not reader.closed.called, "a well-behaved reader was disconnected"
    # Every well-behaved reader saw the very same lines in the same order.
    for seq in sequences[1:]:
        assert seq == sequences[0]
    chat = [line for line in sequences[0] if line.startswith("<sender")]
    assert len(chat) == sent, (len(chat), sent)

    assert server.process.poll() is None, "".join(server.log)
    assert peak_rss_kib(server.process.pid) < RSS_BOUND_KIB
    assert "Traceback" not in "".join(server.log)
    for sock in slow:
        sock.close()
