"""
The TCP line protocol: bytes in, events out.

Deliberately thin: it frames and decodes lines and hands them to the
shared command parser; everything a user can do lives in the hub. What it
does own is the connection's manners: how fast lines are taken in (flood
control), and when a connection is closed for not behaving.
"""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IPushProducer, ITCPTransport
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from ._address import describe_address
from .commands import handle_line
from .events import Error, Event, NickPrompt, Notice
from .flood import TokenBucket
from .framing import LineSplitter, TooLong
from .outbox import Outbox
from .wire import EOL, render_line

if TYPE_CHECKING:
    from .factory import ChatFactory
    from .room import Room

__all__ = ["CLOSE_GRACE", "ChatProtocol"]

_CLEAN_CLOSE = Failure(ConnectionDone())

#: Seconds a closing connection gets to take its last lines before it is
#: cut: a peer that never reads would otherwise keep it open for ever.
CLOSE_GRACE = 10.0

_HTTP_REQUEST = re.compile(
    rb"(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PRI) \S+ HTTP/\d"
)
_NOT_HTTP = (
    "this is a twchat chat server, not a web server; "
    "connect with nc, telnet or python -m twchat.client"
)
_NOT_TLS = "this port speaks plain text, not TLS; connect without TLS"


class ChatProtocol(LineReceiver):
    """One TCP user: frames lines, decodes UTF-8 and dispatches them."""

    log = Logger()
    delimiter = EOL
    renderer = staticmethod(render_line)
    factory: ChatFactory
    transport: ITCPTransport

    nick = ""
    peer = ""
    room: Room | None = None
    #: The peer's host, for the per-address connection limit.
    host = ""
    connected_at = 0.0
    #: When the peer last sent anything (for --idle-timeout).
    last_heard = 0.0
    #: Set once we decided to close: later input from this user is ignored.
    _closing = False
    #: Call check_deadlines every sweep (the factory otherwise calls it only
    #: for connections that are due).
    sweep_always = False
    _heard = False
    # Lines read but not yet handled (flood control, per-turn limit).
    _inbox: deque[bytes | TooLong] | None = None
    _inbox_bytes = 0
    _bucket: TokenBucket | None = None
    _resume: IDelayedCall | None = None
    _reading_paused = False
    #: A line's action is still under way (Redis mode): later lines wait.
    _held = False
    _cut: IDelayedCall | None = None

    def connectionMade(self) -> None:
        factory = self.factory
        config = factory.config
        now = factory.reactor.seconds()
        self.connected_at = self.last_heard = now
        if ITCPTransport.providedBy(self.transport):
            # Chat lines are small and latency matters: no Nagle delay.
            self.transport.setTcpNoDelay(True)
            self.transport.setTcpKeepAlive(True)
        address = self.transport.getPeer()
        self.peer = describe_address(address)
        self.host = getattr(address, "host", "")
        self._splitter = LineSplitter(config.max_line)
        if config.flood_rate > 0:
            self._bucket = TokenBucket(config.flood_rate, config.flood_burst, now)
        self.outbox = Outbox(
            self.transport,
            factory.flusher,
            config.max_sendq,
            self._send_queue_exceeded,
            factory.reactor.seconds,
        )
        factory.connected(self)
        factory.hub.greet(self)

    # Reading

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        if not self._heard:
            self._heard = True
            if data[:2] == b"\x16\x03" and not self.nick:
                self.disconnect(Error(_NOT_TLS))  # a TLS ClientHello
                return
        self.last_heard = self.factory.reactor.seconds()
        lines = self._splitter.feed(data)
        if not lines:
            return
        size = sum(len(line) if type(line) is bytes else 1 for line in lines)
        if self._inbox is None:
            self._inbox = deque(lines)
            self._inbox_bytes = size
        else:
            self._inbox.extend(lines)
            self._inbox_bytes += size
        if self._inbox_bytes > self.factory.config.max_recvq:
            self._excess_flood()
        elif self._resume is None and not self._held:
            self._drain()

    def _drain(self) -> None:
        """Handle waiting lines, as fast as flood control allows."""
        self._resume = None
        inbox = self._inbox
        reactor = self.factory.reactor
        bucket = self._bucket
        now = reactor.seconds()
        budget = self.factory.config.lines_per_turn
        while inbox:
            if self._closing:
                break
            if budget == 0:
                # Others get their turn; the rest of ours comes next turn.
                self._pause_reading(0)
                return
            if bucket is not None:
                wait = bucket.take(now)
                if wait:
                    self._pause_reading(wait)
                    return
            line = inbox.popleft()
            budget -= 1
            if type(line) is bytes:
                self._inbox_bytes -= len(line)
                self.lineReceived(line)
                if self._held:
                    self._pause_reading(None)
                    return
            else:
                self._inbox_bytes -= 1
                limit = self.factory.config.max_line
                self._refuse(f"line too long (max {limit} bytes); it was not sent")
        self._inbox = None
        self._inbox_bytes = 0
        if self._reading_paused and not self._closing:
            self._reading_paused = False
            cast(IPushProducer, self.transport).resumeProducing()

    def _pause_reading(self, seconds: float | None) -> None:
        # TCP pushes back on the sender instead of us buffering its lines.
        if not self._reading_paused:
            self._reading_paused = True
            cast(IPushProducer, self.transport).pauseProducing()
        if seconds is not None:
            self._resume = self.factory.reactor.callLater(seconds, self._drain)

    def _hold(self, waiting: Deferred[None]) -> None:
        """Take no more lines from this user until ``waiting`` fires."""
        self._held = True
        waiting.addErrback(
            lambda f: self.log.failure("handling a line of {nick}", f, nick=self.nick)
        )
        waiting.addBoth(self._release)

    def _release(self, _: object) -> None:
        self._held = False
        if not self._closing and self._resume is None:
            self._resume = self.factory.reactor.callLater(0, self._drain)

    def lineReceived(self, line: bytes) -> None:
        if not self.nick and _HTTP_REQUEST.match(line):
            self.disconnect(Error(_NOT_HTTP))
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._refuse("your line was not valid UTF-8; it was not sent")
            return
        waiting = handle_line(self.factory.hub, self, text)
        if waiting is not None:
            self._hold(waiting)

    def _refuse(self, why: str) -> None:
        self.send(Error(why))
        if not self.nick:
            self.send(NickPrompt())

    # Member interface

    def write(self, data: bytes) -> None:
        self.outbox.write(data)

    def send(self, event: Event) -> None:
        self.outbox.write(self.renderer(event))

    def quit(self, reason: str) -> None:
        self.factory.hub.leave(self, reason)
        self.disconnect(Notice("Goodbye!"))

    # Closing

    def disconnect(self, event: Event) -> None:
        """Send a last line and close once it has been written."""
        if self._closing:
            return
        self._stop_reading()
        self.send(event)
        self.outbox.close()
        self.transport.loseConnection()
        self._cut = self.factory.reactor.callLater(CLOSE_GRACE, self.abort)

    def abort(self) -> None:
        """Close at once, dropping whatever the peer has not read."""
        self._stop_reading()
        self._cut = None
        self.outbox.discard()
        self.transport.abortConnection()

    def _stop_reading(self) -> None:
        self._closing = True
        self._inbox = None
        if self._resume is not None and self._resume.active():
            self._resume.cancel()
        self._resume = None

    def kick(self, reason: str, why: str) -> None:
        """Close for misbehaving: ``reason`` to the room, ``why`` to them."""
        self.log.info(
            "closing {nick} ({peer}): {reason}",
            nick=self.nick or "unregistered connection",
            peer=self.peer,
            reason=reason,
        )
        self.factory.hub.leave(self, reason)
        self.disconnect(Error(why))

    def _excess_flood(self) -> None:
        limit = self.factory.config.max_recvq
        self.kick("excess flood", f"excess flood: more than {limit} bytes unread")

    def _send_queue_exceeded(self) -> None:
        # Called from inside a broadcast: leaving now would change the room
        # while it is being iterated, and tell later members about the
        # leave before the line being delivered. The outbox already takes
        # nothing more; the rest happens next turn.
        if not self._closing:
            self._closing = True
            self.factory.reactor.callLater(0, self._drop_slow_reader)

    def _drop_slow_reader(self) -> None:
        # The client is not reading: nothing more can reach it, so the
        # reason goes to the log and to everyone else.
        self.log.info(
            "{nick} ({peer}) is not reading: send queue exceeded",
            nick=self.nick or "unregistered connection",
            peer=self.peer,
        )
        self.factory.hub.leave(self, "send queue exceeded")
        self.abort()

    def check_deadlines(self, now: float) -> None:
        """Called about once a second by the factory's sweep."""
        if self._closing:
            return
        config = self.factory.config
        if not self.nick and now - self.connected_at >= config.register_timeout:
            self.kick(
                "registration timeout",
                f"no nickname after {config.register_timeout:g} seconds; closing",
            )
            return
        idle = config.idle_timeout
        if idle and now - self.last_heard >= idle:
            self.kick("idle timeout", f"idle for {idle:g} seconds; closing")
            return
        since = self.outbox.waiting_since
        if since is not None and now - since >= config.sendq_timeout:
            self._closing = True
            self._drop_slow_reader()

    def connectionLost(self, reason: Failure = _CLEAN_CLOSE) -> None:
        self._stop_reading()
        if self._cut is not None and self._cut.active():
            self._cut.cancel()
        self._cut = None
        closed = reason.check(ConnectionDone) is not None
        self.factory.hub.leave(
            self, "connection closed" if closed else "connection lost"
        )
        self.factory.disconnected(self)
