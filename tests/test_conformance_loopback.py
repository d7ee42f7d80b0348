"""
The same manners on every transport, over real loopback sockets.

One server (built by the plugin's ``makeService``) listens on TCP, TLS and
the web port at once; each test runs once per wire, its users on that wire
talking with users on the others.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    TCP4ClientEndpoint,
    connectProtocol,
)
from twisted.internet.ssl import Certificate, optionsForClientTLS

from twchat.tap import Options, makeService
from twchat.wire import render_line

from .support import WAIT
from .support.certificates import make_certificate
from .support.fakes import event_from_json
from .support.net import LineClient, free_port, within_wait
from .support.web import WSUser, ws_connect

WIRES = ("tcp", "tls", "websocket")


class WebLines:
    """A WebSocket user read as text lines, so every wire reads the same."""

    def __init__(self, user: WSUser) -> None:
        self.user = user

    def send(self, *lines: str) -> None:
        for line in lines:
            self.user.send(line)

    async def line(self) -> str:
        event = event_from_json(await self.user.event())
        return render_line(event).decode().removesuffix("\r\n")

    async def until(self, wanted: str) -> list[str]:
        seen = []
        while True:
            seen.append(await self.line())
            if seen[-1] == wanted:
                return seen

    async def wait_closed(self) -> None:
        await within_wait(self.user.closed)

    def stop_reading(self) -> None:
        ws: Any = self.user.transport
        ws.transport.pauseProducing()
        ws.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


class TextLines:
    """A TCP or TLS user."""

    def __init__(self, client: LineClient) -> None:
        self.client = client

    def send(self, *lines: str) -> None:
        self.client.send(*lines)

    async def line(self) -> str:
        return await self.client.line()

    async def until(self, wanted: str) -> list[str]:
        return await self.client.until(wanted)

    async def wait_closed(self) -> None:
        await self.client.wait_closed()

    def stop_reading(self) -> None:
        transport: Any = self.client.transport
        transport.pauseProducing()
        handle = transport.getHandle()
        if isinstance(handle, socket.socket):
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


Lines = WebLines | TextLines


@dataclass
class Server:
    top: MultiService
    ports: dict[str, int]
    cert: Path

    async def connect(self, wire: str) -> Lines:
        """A user on ``wire`` that has been asked for its nickname."""
        if wire == "websocket":
            return WebLines(await ws_connect(self.ports[wire]))
        if wire == "tls":
            trust = Certificate.loadPEM(self.cert.read_bytes())
            endpoint: Any = SSL4ClientEndpoint(
                reactor,
                "127.0.0.1",
                self.ports[wire],
                optionsForClientTLS("localhost", trustRoot=trust),
            )
        else:
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.ports[wire])
        d = connectProtocol(endpoint, LineClient())
        d.addTimeout(WAIT, reactor)
        user = TextLines(await d)
        await user.until("? Choose a nickname:")
        return user

    async def join(self, wire: str, nick: str) -> Lines:
        user = await self.connect(wire)
        user.send(nick)
        line = await user.line()
        assert line.startswith(f"*** Welcome, {nick}!"), line
        return user


Serve = Callable[..., Awaitable[Server]]


@pytest_twisted.async_yield_fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Start a server on all three wires, with extra options."""
    started: list[MultiService] = []
    key, cert = make_certificate(tmp_path)

    async def start(*args: str) -> Server:
        ports = {wire: free_port() for wire in WIRES}
        options = Options()
        options.parseOptions(
            [
                "--port",
                f"tcp:{ports['tcp']}:interface=127.0.0.1",
                "--port",
                f"ssl:{ports['tls']}:privateKey={key}:certKey={cert}"
                ":interface=127.0.0.1",
                "--web",
                f"tcp:{ports['websocket']}:interface=127.0.0.1",
                "--no-history",
                *args,
            ]
        )
        top = makeService(options, reactor)
        top.startService()
        started.append(top)
        return Server(top, ports, cert)

    yield start
    for top in started:
        if top.running:
            await top.stopService()


def _others(wire: str) -> tuple[str, str]:
    first, second = (w for w in WIRES if w != wire)
    return first, second


pytestmark = pytest.mark.parametrize("wire", WIRES)


@pytest_twisted.ensureDeferred
async def test_chat_with_users_on_the_other_wires(wire: str, serve: Serve) -> None:
    server = await serve("--flood-rate", "0")
    other1, other2 = _others(wire)
    a = await server.join(other1, "a")
    b = await server.join(other2, "b")
    assert await a.line() == "*** b joined (2 here)"
    me = await server.join(wire, "me")
    assert await a.line() == "*** me joined (3 here)"
    assert await b.line() == "*** me joined (3 here)"
    me.send("hello", "/me waves", "/msg a psst")
    assert [await a.line() for _ in range(3)] == [
        "<me> hello",
        "* me waves",
        "*me* psst",
    ]
    assert [await b.line() for _ in range(2)] == ["<me> hello", "* me waves"]
    assert await me.line() == "-> *a* psst"
    b.send("hi me")
    assert await me.line() == "<b> hi me"


@pytest_twisted.ensureDeferred
async def test_one_order(wire: str, serve: Serve) -> None:
    server = await serve("--flood-rate", "0")
    other1, other2 = _others(wire)
    s1 = await server.join(wire, "s1")
    s2 = await server.join(other1, "s2")
    watcher = await server.join(other2, "watcher")
    await s1.until("*** watcher joined (3 here)")
    await s2.until("*** watcher joined (3 here)")
    for n in range(50):
        s1.send(f"1:{n}")
        s2.send(f"2:{n}")
    seen = [await watcher.line() for _ in range(100)]
    assert [x for x in seen if x.startswith("<s1>")] == [
        f"<s1> 1:{n}" for n in range(50)
    ]
    from_s2 = [await s1.line() for _ in range(50)]
    assert from_s2 == [x for x in seen if x.startswith("<s2>")]


@pytest_twisted.ensureDeferred
async def test_limits(wire: str, serve: Serve) -> None:
    server = await serve("--max-line", "100")
    user = await server.join(wire, "user")
    user.send("x" * 101, "/nope")
    assert await user.line() == "! line too long (max 100 bytes); it was not sent"
    assert await user.line() == "! unknown command /nope; /help lists the commands"


@pytest_twisted.ensureDeferred
async def test_registration_deadline(wire: str, serve: Serve) -> None:
    server = await serve("--register-timeout", "1")
    user = await server.connect(wire)
    assert await user.line() == "! no nickname after 1 seconds; closing"
    await user.wait_closed()


@pytest_twisted.ensureDeferred
async def test_a_slow_reader_is_cut_and_others_get_everything(
    wire: str, serve: Serve
) -> None:
    server = await serve(
        "--flood-rate", "0", "--max-recvq", "1048576", "--max-sendq", "65536"
    )
    other1, other2 = _others(wire)
    slow = await server.join(wire, "slow")
    talker = await server.join(other1, "talker")
    watcher = await server.join(other2, "watcher")
    await talker.until("*** watcher joined (3 here)")
    slow.stop_reading()
    text = "y" * 400
    lines = 30000  # 12 MB: more than the kernel's buffers on both sides hold
    for n in range(lines):
        talker.send(f"{n} {text}")
    got = 0
    while True:
        line = await watcher.line()
        if line.startswith("<talker>"):
            assert line == f"<talker> {got} {text}"
            got += 1
        elif line == "*** slow left (2 here): send queue exceeded":
            break
    assert got < lines
    while got < lines:
        assert await watcher.line() == f"<talker> {got} {text}"
        got += 1


@pytest_twisted.ensureDeferred
async def test_shutdown(wire: str, serve: Serve) -> None:
    server = await serve()
    user = await server.join(wire, "user")
    await server.top.stopService()
    assert await user.line() == "*** Server is shutting down. Bye!"
    await user.wait_closed()
