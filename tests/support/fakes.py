"""In-memory users for unit tests: a real Connection on a StringTransport."""

from __future__ import annotations

import itertools
import json
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from argon2 import PasswordHasher
from twisted.enterprise import adbapi
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from twchat.accounts.hashing import BusyError, Hasher
from twchat.backend import IListener, RoomEvent
from twchat.config import ChatConfig
from twchat.connection.connection import Connection
from twchat.events import Event, Private, RoomList
from twchat.hub import Hub
from twchat.jsonwire import TYPES
from twchat.room import Room
from twchat.server import ChatServer
from twchat.wire import render_line, render_tagged

_T = TypeVar("_T")

_ports = itertools.count(40000)


def make_server(**limits: object) -> tuple[ChatServer, Clock]:
    """A started server on a fake clock; flood control off unless asked."""
    limits.setdefault("flood_rate", 0)
    clock = Clock()
    server = ChatServer(clock, ChatConfig(**limits))  # type: ignore[arg-type]
    server.start()
    return server, clock


class FakeUser:
    """One connection, driven byte by byte, read line by line."""

    def __init__(self, server: ChatServer, host: str = "127.0.0.1") -> None:
        address = IPv4Address("TCP", host, next(_ports))
        self.transport = StringTransport(peerAddress=address)
        protocol = self.port(server).buildProtocol(address)
        assert protocol is not None
        self.protocol = protocol
        protocol.makeConnection(self.transport)
        self.server = server
        self.lost = False

    @staticmethod
    def port(server: ChatServer) -> IProtocolFactory:
        """The factory of the port this kind of user connects to."""
        return server.tcp_factory()

    @property
    def chat(self) -> Connection:
        """The connection the hub sees as this user."""
        assert isinstance(self.protocol, Connection)
        return self.protocol

    def send(self, *lines: str | bytes, eol: bytes = b"\n") -> None:
        """Type each line and press Enter, all in one packet."""
        data = b"".join(
            (line.encode() if isinstance(line, str) else line) + eol for line in lines
        )
        self.protocol.dataReceived(data)

    def raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def stir(self) -> None:
        """Traffic that is no line: one byte of a line never finished."""
        self.raw(b"x")

    def read(self) -> list[str]:
        """Lines received since the last read."""
        self.server.reactor.advance(0)  # type: ignore[attr-defined]
        data = self.transport.value()
        self.transport.clear()
        if not data:
            return []
        assert data.endswith(b"\r\n"), data
        lines: list[str] = data.decode("utf-8").split("\r\n")[:-1]
        return lines

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)

    def close(self, clean: bool = True) -> None:
        """The peer hangs up (EOF) or the connection is reset."""
        why = ConnectionDone() if clean else ConnectionLost()
        self.lost = True
        self.protocol.connectionLost(Failure(why))


def register(
    server: ChatServer, nick: str, wire: type[FakeUser] | None = None
) -> FakeUser:
    user = (wire or FakeUser)(server)
    user.send(nick)
    lines = user.read()
    assert lines[-1].startswith(f"*** Welcome, {nick}!"), lines
    return user


def room(
    server: ChatServer, *nicks: str, wire: type[FakeUser] | None = None
) -> list[FakeUser]:
    """Register users one after another and forget the join chatter."""
    users = [register(server, nick, wire) for nick in nicks]
    for user in users:
        user.read()
    return users


class RecordingMember:
    """
    The one transport-free member: what it is sent, as events and bytes,
    and everything as the text lines a TCP user would read, in order.
    """

    def __init__(self, nick: str = "") -> None:
        self.nick = nick
        self.peer = "test"
        self.host = "192.0.2.1"
        self.room: Room | None = None
        self.events: list[Event] = []
        self.written: list[bytes] = []
        self.lines: list[str] = []
        self.quit_reason: str | None = None
        #: The hub it is on, for ``end`` (set by the harness).
        self.hub: Hub | None = None

    #: Renders made by every RecordingMember (a broadcast renders once).
    renders = 0

    @staticmethod
    def renderer(event: Event) -> bytes:
        RecordingMember.renders += 1
        return render_line(event)

    @staticmethod
    def _tagged(event: Event) -> bytes:
        RecordingMember.renders += 1
        return render_tagged(event)

    def tag_lines(self) -> None:
        self.renderer = self._tagged  # type: ignore[method-assign]

    @property
    def outbox(self) -> RecordingMember:
        """A room's lines come to ``write``."""
        return self

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.lines.extend(data.decode().splitlines())

    def send(self, event: Event) -> None:
        if self.room is not None:
            self.room.catch_up(self)  # as a connection does
        self.events.append(event)
        tagged = self.renderer == self._tagged
        line = render_tagged(event) if tagged else render_line(event)
        self.lines.extend(line.decode().splitlines())

    def quit(self, reason: str) -> None:
        self.quit_reason = reason

    def end(self, reason: str, last: Event) -> None:
        """As a connection does: out of the chat, a last line, closed."""
        hub = self.hub
        if hub is not None:
            hub.leave(self, reason)
        self.send(last)
        self.quit_reason = reason

    def take(self) -> list[str]:
        """The lines read since the last take (the room's turn so far too)."""
        if self.room is not None:
            self.room.catch_up(self)
        lines, self.lines = self.lines, []
        return lines


#: Real argon2id, with the cheapest parameters: tests stay fast.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class SyncHasher(Hasher):
    """The hasher, run at once on the calling thread (no reactor needed)."""

    def __init__(self, busy: bool = False) -> None:
        super().__init__(Clock(), hasher=_CHEAP)  # type: ignore[arg-type]
        #: Refuse every check, as a hasher with a full queue does.
        self.busy = busy
        self.runs = 0

    def _run(self, work: Callable[..., _T], *args: object) -> Deferred[_T]:
        if self.busy:
            return fail(BusyError())
        self.runs += 1
        return succeed(work(*args))


class SyncPool:
    """adbapi's ConnectionPool, but run at once on one SQLite connection."""

    #: What adbapi.Transaction asks of its pool.
    reconnect = False
    noisy = False

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)
        self.failing = False
        self.closed = False

    def runInteraction(self, interaction: Any, *args: Any) -> Deferred[Any]:
        if self.failing:
            return fail(sqlite3.OperationalError("database or disk is full"))
        # adbapi's own cursor wrapper: only what it relays works here too
        # (it is not iterable, for one).
        cursor = adbapi.Transaction(self, self.connection)
        result = interaction(cursor, *args)
        self.connection.commit()
        return succeed(result)

    def close(self) -> None:
        self.closed = True
        self.connection.close()


# The browser's wire, in memory: a real web Connection on a StringTransport.

_JSON_EVENTS = {name: kind for kind, name in TYPES.items()}


def event_from_json(payload: dict[str, Any]) -> Event:
    """The event a JSON object stands for (the inverse of render_json)."""
    kind = _JSON_EVENTS[payload["type"]]
    values = {k: v for k, v in payload.items() if k != "type"}
    if kind is RoomList:
        values["rooms"] = tuple(
            (r["name"], r["users"], r["topic"]) for r in values["rooms"]
        )
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    event: Event = kind(**values)
    return event


def client_frame(payload: bytes, opcode: int = 1, final: bool = True) -> bytes:
    """A masked client frame (the all-zero mask leaves the payload as is)."""
    size = len(payload)
    first = (0x80 if final else 0) | opcode
    if size < 126:
        head = bytes((first, 0x80 | size))
    elif size < 0x10000:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    return head + b"\0\0\0\0" + payload


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each complete unmasked frame in ``data``."""
    frames = []
    while len(data) >= 2:
        length, start = data[1] & 0x7F, 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, 2)
            start = 4
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, 2)
            start = 10
        frames.append((data[0] & 0x0F, data[start : start + length]))
        data = data[start + length :]
    return frames


UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class FakeWebUser(FakeUser):
    """A browser on the web port: HTTP upgrade, then WebSocket frames."""

    def __init__(self, server: ChatServer, host: str = "127.0.0.1") -> None:
        super().__init__(server, host)
        self.control: list[tuple[int, bytes]] = []
        self.protocol.dataReceived(UPGRADE)
        server.reactor.advance(0)  # type: ignore[attr-defined]
        head, _, rest = self.transport.value().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.transport.clear()
        self._early = rest

    @staticmethod
    def port(server: ChatServer) -> IProtocolFactory:
        return server.web_factory()

    def send(self, *lines: str | bytes, eol: bytes = b"") -> None:
        """Each line as one WebSocket message, all in one packet."""
        frames = []
        for line in lines:
            data = (line.encode() if isinstance(line, str) else line) + eol
            try:
                data.decode()
                frames.append(client_frame(data))
            except UnicodeDecodeError:  # only a binary message can carry it
                frames.append(client_frame(data, opcode=2))
        self.protocol.dataReceived(b"".join(frames))

    def stir(self) -> None:
        """Traffic that is no line: a pong, as browsers answer pings."""
        self.raw(client_frame(b"", opcode=10))

    def read(self) -> list[str]:
        """Text lines for the JSON events received since the last read."""
        self.server.reactor.advance(0)  # type: ignore[attr-defined]
        data, self._early = self._early + self.transport.value(), b""
        self.transport.clear()
        lines = []
        for opcode, payload in server_frames(data):
            if opcode != 1:
                self.control.append((opcode, payload))
                continue
            for text in payload.decode().splitlines():
                event = event_from_json(json.loads(text))
                lines.append(render_line(event).decode().removesuffix("\r\n"))
        return lines


#: Each wire's in-memory user, for tests that must hold on every transport.
WIRES: dict[str, type[FakeUser]] = {"tcp": FakeUser, "websocket": FakeWebUser}


@implementer(IListener)
class RecordingListener:
    """A backend's listener that keeps what it was told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, object]] = []

    def room_event(self, room: str, event: RoomEvent, origin: str) -> None:
        self.told.append((room, event))

    def private(self, to: str, event: Private) -> None:
        self.told.append((to, event))

    def not_sent(self, conn: str, sure: bool) -> None:
        self.told.append((conn, "not sent" if sure else "maybe not sent"))

    def name_lost(self, conn: str) -> None:
        self.told.append((conn, "name lost"))

    def taken_over(self, conn: str) -> None:
        self.told.append((conn, "taken over"))
