"""Real loopback clients for integration tests, with every wait bounded."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from . import WAIT

#: Ports handed out in this run: none is handed out twice.
_given: set[int] = set()


def free_port() -> int:
    """
    A loopback port nobody listens on right now, and not one given before
    in this run: two asked for back to back (a chat port and a web port)
    were sometimes the same one, since neither is bound in between.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _given:
            _given.add(port)
            return port


class LineClient(Protocol):
    """A raw TCP user: writes bytes, reads CRLF lines."""

    def __init__(self) -> None:
        self.queue: DeferredQueue[str] = DeferredQueue()
        self._buffer = b""
        self.closed: Deferred[None] = Deferred()
        self.received: list[str] = []

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\r\n")
        for line in lines:
            text = line.decode("utf-8")
            self.received.append(text)
            self.queue.put(text)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.closed.callback(None)

    def send(self, *lines: str | bytes) -> None:
        for line in lines:
            self.transport.write(  # type: ignore[union-attr]
                (line.encode() if isinstance(line, str) else line) + b"\n"
            )

    async def line(self) -> str:
        d = self.queue.get()
        d.addTimeout(WAIT, reactor)
        return await d

    async def lines(self, count: int) -> list[str]:
        return [await self.line() for _ in range(count)]

    async def until(self, wanted: str) -> list[str]:
        """Every line up to and including ``wanted``."""
        seen = []
        while True:
            line = await self.line()
            seen.append(line)
            if line == wanted:
                return seen

    async def wait_closed(self) -> None:
        await within_wait(self.closed)


async def within_wait(closed: Deferred[None]) -> None:
    """Wait for ``closed`` to fire, at most WAIT seconds (it is not consumed)."""
    d: Deferred[Any] = Deferred()
    closed.addBoth(lambda r: d.callback(r) if not d.called else None)
    d.addTimeout(WAIT, reactor)
    await d


async def connect_raw(port: int) -> LineClient:
    """A TCP connection that has not read anything yet."""
    d = connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), LineClient())
    d.addTimeout(WAIT, reactor)
    client: LineClient = await d
    return client


async def connect(port: int) -> LineClient:
    """A connection that has been asked for its nickname."""
    client = await connect_raw(port)
    await client.until("? Choose a nickname:")
    return client


async def join(port: int, nick: str) -> LineClient:
    client = await connect(port)
    client.send(nick)
    line = await client.line()
    assert line.startswith(f"*** Welcome, {nick}!"), line
    return client
