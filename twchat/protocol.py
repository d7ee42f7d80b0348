"""
The TCP line protocol: bytes in, events out.

Deliberately thin: it frames and decodes lines and hands them to the
shared command parser; everything a user can do lives in the hub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ITCPTransport
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from ._address import describe_address
from .commands import handle_line
from .events import Error, Event, NickPrompt, Notice
from .framing import TOO_LONG, LineSplitter
from .outbox import Outbox
from .wire import EOL, render_line

if TYPE_CHECKING:
    from .factory import ChatFactory

__all__ = ["ChatProtocol"]

_CLEAN_CLOSE = Failure(ConnectionDone())


class ChatProtocol(LineReceiver):
    """One TCP user: frames lines, decodes UTF-8 and dispatches them."""

    log = Logger()
    delimiter = EOL
    renderer = staticmethod(render_line)
    factory: ChatFactory
    transport: ITCPTransport

    nick = ""
    peer = ""
    #: Set once we decided to close: later input from this user is ignored.
    _closing = False

    def connectionMade(self) -> None:
        factory = self.factory
        if ITCPTransport.providedBy(self.transport):
            # Chat lines are small and latency matters: no Nagle delay.
            self.transport.setTcpNoDelay(True)
            self.transport.setTcpKeepAlive(True)
        self.peer = describe_address(self.transport.getPeer())
        self._splitter = LineSplitter(factory.config.max_line)
        self._outbox = Outbox(
            self.transport,
            factory.flusher,
            factory.config.max_sendq,
            self._send_queue_exceeded,
            factory.reactor.seconds,
        )
        self.factory.connected(self)
        self.factory.hub.greet(self)

    def dataReceived(self, data: bytes) -> None:
        for line in self._splitter.feed(data):
            if self._closing:
                return
            if line is TOO_LONG:
                limit = self.factory.config.max_line
                self._refuse(f"line too long (max {limit} bytes); it was not sent")
            else:
                assert isinstance(line, bytes)
                self.lineReceived(line)

    def lineReceived(self, line: bytes) -> None:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._refuse("your line was not valid UTF-8; it was not sent")
            return
        handle_line(self.factory.hub, self, text)

    def _refuse(self, why: str) -> None:
        self.send(Error(why))
        if not self.nick:
            self.send(NickPrompt())

    # Member interface

    def write(self, data: bytes) -> None:
        self._outbox.write(data)

    def send(self, event: Event) -> None:
        self._outbox.write(render_line(event))

    def quit(self, reason: str) -> None:
        self.factory.hub.leave(self, reason)
        self.disconnect(Notice("Goodbye!"))

    def disconnect(self, event: Event) -> None:
        """Send a last line and close once it has been written."""
        self._closing = True
        self.send(event)
        self._outbox.close()
        self.transport.loseConnection()

    def abort(self) -> None:
        """Close at once, dropping whatever the peer has not read."""
        self._closing = True
        self._outbox.discard()
        self.transport.abortConnection()

    def _send_queue_exceeded(self) -> None:
        # The client is not reading: nothing more can reach it, so the
        # reason goes to the log and to everyone else.
        self.log.info(
            "{nick} ({peer}) is not reading: send queue exceeded",
            nick=self.nick,
            peer=self.peer,
        )
        self.factory.hub.leave(self, "send queue exceeded")
        self.abort()

    def connectionLost(self, reason: Failure = _CLEAN_CLOSE) -> None:
        self._closing = True
        closed = reason.check(ConnectionDone) is not None
        self.factory.hub.leave(
            self, "connection closed" if closed else "connection lost"
        )
        self.factory.disconnected(self)
