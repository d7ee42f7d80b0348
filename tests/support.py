"""In-memory users for unit tests: a real ChatProtocol on a StringTransport."""

from __future__ import annotations

import itertools

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from twchat.config import ChatConfig
from twchat.factory import ChatFactory
from twchat.protocol import ChatProtocol

_ports = itertools.count(40000)


def make_factory(**limits: object) -> tuple[ChatFactory, Clock]:
    """A started factory on a fake clock; flood control off unless asked."""
    limits.setdefault("flood_rate", 0)
    clock = Clock()
    factory = ChatFactory(clock, ChatConfig(**limits))  # type: ignore[arg-type]
    factory.doStart()
    return factory, clock


class FakeUser:
    """One connection, driven byte by byte, read line by line."""

    def __init__(self, factory: ChatFactory, host: str = "127.0.0.1") -> None:
        address = IPv4Address("TCP", host, next(_ports))
        self.transport = StringTransport(peerAddress=address)
        protocol = factory.buildProtocol(address)
        assert protocol is not None
        self.protocol = protocol
        protocol.makeConnection(self.transport)
        self.factory = factory
        self.lost = False

    @property
    def chat(self) -> ChatProtocol:
        assert isinstance(self.protocol, ChatProtocol)
        return self.protocol

    def send(self, *lines: str | bytes, eol: bytes = b"\n") -> None:
        """Type each line and press Enter, all in one packet."""
        data = b"".join(
            (line.encode() if isinstance(line, str) else line) + eol for line in lines
        )
        self.protocol.dataReceived(data)

    def raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def read(self) -> list[str]:
        """Lines received since the last read."""
        self.factory.reactor.advance(0)  # type: ignore[attr-defined]
        data = self.transport.value()
        self.transport.clear()
        if not data:
            return []
        assert data.endswith(b"\r\n"), data
        return data.decode("utf-8").split("\r\n")[:-1]

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)

    def close(self, clean: bool = True) -> None:
        """The peer hangs up (EOF) or the connection is reset."""
        why = ConnectionDone() if clean else ConnectionLost()
        self.lost = True
        self.protocol.connectionLost(Failure(why))


def register(factory: ChatFactory, nick: str) -> FakeUser:
    user = FakeUser(factory)
    user.send(nick)
    lines = user.read()
    assert lines[-1].startswith(f"*** Welcome, {nick}!"), lines
    return user


def room(factory: ChatFactory, *nicks: str) -> list[FakeUser]:
    """Register users one after another and forget the join chatter."""
    users = [register(factory, nick) for nick in nicks]
    for user in users:
        user.read()
    return users


class RecordingMember:
    """A transport-free member: keeps the events and bytes it was given."""

    def __init__(self, nick: str = "") -> None:
        self.nick = nick
        self.peer = "test"
        self.room = None
        self.events: list[object] = []
        self.written: list[bytes] = []
        self.quit_reason: str | None = None

    @staticmethod
    def renderer(event: object) -> bytes:
        RecordingMember.renders += 1
        return repr(event).encode()

    renders = 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def send(self, event: object) -> None:
        self.events.append(event)

    def quit(self, reason: str) -> None:
        self.quit_reason = reason
