"""Hostile and broken clients against a real server over loopback TCP."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from .support.net import LineClient, connect, connect_raw, join
from .test_integration import _serve


@pytest_twisted.async_yield_fixture
async def server() -> AsyncIterator[int]:
    port, top = await _serve(
        "--flood-rate", "0", "--max-sendq", "65536", "--max-recvq", "1048576"
    )
    yield port
    await top.stopService()


async def _settle() -> None:
    await deferLater(reactor, 0.05, lambda: None)


def _raw(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    sock.connect_ex(("127.0.0.1", port))
    return sock


@pytest_twisted.ensureDeferred
async def test_a_client_that_never_reads_is_dropped_and_others_get_everything(
    server: int,
) -> None:
    fast = await join(server, "fast")
    sender = await join(server, "sender")
    slow = _raw(server, rcvbuf=4096)
    await _settle()
    slow.send(b"slow\n")  # registers, then never reads a byte
    await fast.until("*** slow joined (3 here)")
    count = 12000
    payload = "x" * 230
    sender.transport.write(  # type: ignore[union-attr]
        b"".join(b"%d %s\n" % (i, payload.encode()) for i in range(count))
    )
    got: list[str] = []
    left = None
    while len(got) < count:
        line = await fast.line()
        if line.startswith("*** slow left"):
            left = line
        else:
            got.append(line)
    assert got == [f"<sender> {i} {payload}" for i in range(count)]
    if left is None:
        left = await fast.line()
    assert left == "*** slow left (2 here): send queue exceeded"
    slow.close()
    fast.transport.loseConnection()  # type: ignore[union-attr]
    sender.transport.loseConnection()  # type: ignore[union-attr]


@pytest_twisted.ensureDeferred
async def test_reset_in_the_middle_of_a_broadcast(server: int) -> None:
    watcher = await join(server, "watcher")
    sender = await join(server, "sender")
    victim = _raw(server)
    await _settle()
    victim.send(b"victim\n")
    await watcher.until("*** victim joined (3 here)")
    sender.send(*[f"line {i}" for i in range(500)])
    await watcher.until("<sender> line 10")
    # SO_LINGER 0: close() sends an RST instead of a FIN.
    victim.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    victim.close()
    seen = await watcher.until("<sender> line 499")
    lines = [line for line in seen if line.startswith("<sender>")]
    assert lines == [f"<sender> line {i}" for i in range(11, 500)]
    notes = [line for line in seen if not line.startswith("<sender>")]
    if not notes:
        notes.append(await watcher.line())
    # Twisted reports a reset as "lost", or as "closed" when the socket
    # hangs up with nothing left to read: either way, everyone is told.
    assert notes[0] in (
        "*** victim left (2 here): connection lost",
        "*** victim left (2 here): connection closed",
    )


@pytest_twisted.ensureDeferred
async def test_two_clients_claim_one_nickname_at_the_same_moment(server: int) -> None:
    first, second = await connect(server), await connect(server)
    first.send("alice")
    second.send("alice")
    answers = sorted([await first.line(), await second.line()])
    assert answers[0] == "! nickname alice is already taken"
    assert answers[1].startswith("*** Welcome, alice!")


@pytest_twisted.ensureDeferred
async def test_one_byte_per_send_with_a_split_emoji(server: int) -> None:
    watcher = await join(server, "watcher")
    typist = await connect(server)
    for byte in "typist\nhi 🙂 there\n".encode():
        typist.transport.write(bytes([byte]))  # type: ignore[union-attr]
        await deferLater(reactor, 0.002, lambda: None)
    await watcher.until("*** typist joined (2 here)")
    assert await watcher.line() == "<typist> hi 🙂 there"


@pytest_twisted.ensureDeferred
async def test_16k_line_without_newline(server: int) -> None:
    watcher = await join(server, "watcher")
    pusher = await join(server, "pusher")
    await watcher.line()
    pusher.transport.write(b"z" * 16384)  # type: ignore[union-attr]
    assert await pusher.line() == "! line too long (max 512 bytes); it was not sent"
    pusher.send("\nnormal again")
    assert await watcher.line() == "<pusher> normal again"


@pytest_twisted.ensureDeferred
async def test_http_request(server: int) -> None:
    browser = await connect_raw(server)
    browser.transport.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # type: ignore[union-attr]
    await browser.wait_closed()
    assert browser.received[-1].startswith("! this is a twchat chat server")


@pytest_twisted.ensureDeferred
async def test_seventeenth_connection_from_one_address() -> None:
    port, top = await _serve()
    try:
        clients: list[LineClient] = [await connect(port) for _ in range(16)]
        extra = await connect_raw(port)
        assert await extra.line() == (
            "! too many connections from your address (limit 16); try again later"
        )
        await extra.wait_closed()
        for client in clients:
            client.transport.loseConnection()  # type: ignore[union-attr]
            await client.wait_closed()
    finally:
        await top.stopService()
