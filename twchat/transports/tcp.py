"""
Text lines over TCP, TLS or a UNIX socket: the ``nc`` and terminal wire.

A ``LineReceiver`` in a ``Connection``: it cuts the byte stream into lines
and hands each to the connection, which owns every bound and deadline. It
also recognises a peer that speaks the wrong protocol on this port.
"""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING, cast

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.basic import LineReceiver

from ..events import Error
from ..wire import EOL, render_line, render_tagged
from .framing import LineSplitter, TooLong

if TYPE_CHECKING:
    from ..connection.connection import Connection

__all__ = ["ChatProtocol", "LineFactory"]

_HTTP_REQUEST = re.compile(
    rb"(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PRI) \S+ HTTP/\d"
)
_NOT_HTTP = (
    "this is a twchat chat server, not a web server; "
    "connect with nc, telnet or python -m twchat.client"
)
_NOT_TLS = "this port speaks plain text, not TLS; connect without TLS"


class ChatProtocol(LineSplitter, LineReceiver):
    """
    One text-line user: lines in, rendered lines out (through the connection).

    It is its own ``LineSplitter``: a separate one per idle connection was
    64 bytes more.
    """

    delimiter = EOL
    renderer = staticmethod(render_line)
    tagged_renderer = staticmethod(render_tagged)
    keepalive = False  # TCP keepalive is on; no ping in this wire
    # Slots: one of these per connection, thousands of them idle; an
    # instance dictionary grown by a late attribute cost 272 bytes each.
    __slots__ = ("_heard", "_pending", "connected", "transport")

    @property
    def connection(self) -> Connection:
        """Our transport: the connection that owns the bounds."""
        return cast("Connection", self.transport)

    def __init__(self) -> None:
        LineSplitter.__init__(self, 0)  # the limit is the server's, when connected
        self.transport = None
        self.connected = 0
        self._heard = False
        #: Lines cut from the stream but not handled yet (reading was
        #: paused part way through a read); None while there are none: an
        #: empty deque costs 600 bytes.
        self._pending: deque[bytes | TooLong] | None = None

    def connectionMade(self) -> None:
        self.max_length = self.connection.config.max_line
        self.connection.attach(self)

    def dataReceived(self, data: bytes) -> None:
        # LineReceiver's own loop copies the rest of its buffer for every
        # line (a 64 KiB read of 1024 lines: 1.15 ms, against 0.13 ms here),
        # throws away the lines after an over-long one, and knows one
        # delimiter where nc, telnet and old Macs send three. Pausing still means what
        # LineReceiver documents: no lines until resumeProducing.
        if data and not self._heard:
            self._heard = True
            if data[:2] == b"\x16\x03":  # a TLS ClientHello
                self.connection.disconnect(Error(_NOT_TLS))
                return
        pending = self._pending
        if pending is None:
            lines = self.feed(data)
            if not lines:
                return
            pending = self._pending = deque(lines)
        else:
            pending.extend(self.feed(data))
        while pending and not self.paused:
            line = pending.popleft()
            if type(line) is bytes:
                self.lineReceived(line)
            else:
                self.lineLengthExceeded(b"")
        if not pending and self._pending is pending:
            self._pending = None

    def lineReceived(self, line: bytes) -> None:
        connection = self.connection
        if not connection.nick and _HTTP_REQUEST.match(line):
            connection.disconnect(Error(_NOT_HTTP))
            return
        connection.line_received(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        # Refused with an error line; the rest of it is skipped unbuffered
        # and the next line is read as usual.
        self.connection.line_too_long()

    # Wire

    def ping(self) -> None:
        """Never called: ``keepalive`` is False."""

    def close(self) -> None:
        self.connection.loseConnection()


class _Refusal(Protocol):
    """Tells a connection we will not serve why, and closes it."""

    def __init__(self, why: str) -> None:
        self._line = render_line(Error(why))

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self._line)
        self.transport.loseConnection()


class LineFactory(Factory):
    """Builds the text-line protocol; the connection wraps it."""

    protocol = ChatProtocol
    noisy = False
    #: Text lines over TCP, TLS or a UNIX socket.
    web = False

    def buildProtocol(self, addr: IAddress | None) -> ChatProtocol:
        return ChatProtocol()

    def refusal(self, why: str, clock: IReactorTime) -> Protocol:
        return _Refusal(why)
