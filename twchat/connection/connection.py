"""
One client connection, whatever it speaks: the manners every transport shares.

A ``Connection`` wraps the transport's own protocol the way the wrappers of
``twisted.protocols.policies`` do: it is that protocol's transport, so every
byte in and every byte out passes through it. TCP and TLS wrap a
``LineReceiver``; the web port wraps Twisted's HTTP channel, which becomes a
WebSocket. What the wrapped protocol decodes comes back here as lines, and
here live all the bounds and deadlines:

- the inbox: lines received but not handled yet (flood control, lines per
  turn, a line whose action is still under way), bounded by ``max_recvq``;
- the outbox: every byte to the peer (chat lines, HTTP answers, WebSocket
  pongs and close frames alike), bounded by ``max_sendq`` and the stall
  deadline;
- the deadlines: the web request before its upgrade, registration, idle,
  keepalive pings, and the grace a closing peer gets to read its last line;
- closing, with the reason everyone else is told.

The connection is also the ``Member`` the hub talks to. What differs per
wire (how an event is rendered, how a goodbye or a ping is said) comes from
the ``Wire`` the transport attaches once it can chat.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast
from typing import Protocol as Interface

from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IProducer,
    IProtocol,
    IPullProducer,
    IPushProducer,
    ISSLTransport,
    ITCPTransport,
    ITransport,
)
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from .._address import describe_address
from ..commands import handle_line
from ..events import Error, Event, Notice, PasswordPrompt
from ..text import clean_text
from ..wire import IDLE_FOR, Renderer, render_line
from .flood import TokenBucket
from .outbox import Outbox

if TYPE_CHECKING:
    from ..config import ChatConfig
    from ..room import Room
    from ..server import ChatServer
    from .factory import ConnectionFactory

__all__ = [
    "CLOSE_GRACE",
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "Connection",
    "Inspector",
    "Wire",
]

_CLEAN_CLOSE = Failure(ConnectionDone())

#: Seconds a closing connection gets to take its last lines before it is
#: cut: a peer that never reads would otherwise keep it open for ever.
CLOSE_GRACE = 10.0
#: Seconds between keepalive pings to a quiet peer whose wire can ping.
PING_INTERVAL = 30.0
#: Seconds without any sign of life before such a peer is taken for gone.
PING_TIMEOUT = 75.0

#: Marks a line that was over the limit, in the inbox's order.
_TOO_LONG = object()


class Wire(Interface):
    """What a transport tells the connection once its peer can chat."""

    @property
    def renderer(self) -> Renderer:
        """Turns an event into this wire's bytes (shared by all its users)."""

    @property
    def tagged_renderer(self) -> Renderer:
        """The same, with history ids and rooms marked (``/ids``)."""

    @property
    def keepalive(self) -> bool:
        """Whether ``ping`` asks the peer for a sign of life."""

    def ping(self) -> None:
        """Ask the peer to answer (only called when ``keepalive``)."""

    def close(self) -> None:
        """Say goodbye the wire's way, then ``loseConnection`` this connection."""


class Inspector(Interface):
    """Looks at raw bytes before the wrapped protocol parses them."""

    def feed(self, data: bytes) -> tuple[str, str] | None:
        """None, or (reason for the room, message to the peer) to close."""


#: One empty set for every connection that is reading (most of them).
_NOT_PAUSED: frozenset[str] = frozenset()


@implementer(ITransport, IConsumer, IPushProducer)
class Connection(Protocol):
    """
    One peer: its inbox, outbox, deadlines and close, on any transport.

    Shaped like ``twisted.protocols.policies.ProtocolWrapper`` (the wrapped
    protocol's transport), but with the transport's methods spelled out:
    ProtocolWrapper's ``__getattr__`` would send every attribute lookup on
    this hot object through Python's slow path (measured: twice the cost of
    each ``member.renderer`` in a broadcast).
    """

    log = Logger()

    # Slots, not an instance dictionary: thousands of idle connections at
    # ~800 bytes of dictionary each was a third of the memory of each.
    # (Protocol has no slots, so a dictionary still exists for the rare
    # extra attribute, such as zope's ``__provides__`` on TLS.)
    __slots__ = (
        "_asked_password",
        "_bucket",
        "_budget",
        "_closing",
        "_cut",
        "_held",
        "_inbox",
        "_inbox_bytes",
        "_inner_paused",
        "_inner_producer",
        "_inner_streaming",
        "_inspector",
        "_last_ping",
        "_now",
        "_paused",
        "_pull_due",
        "_resume",
        "_why",
        "_wire",
        "attached_at",
        "config",
        "connected",
        "connected_at",
        "disconnecting",
        "factory",
        "host",
        "last_heard",
        "last_line",
        "nick",
        "outbox",
        "renderer",
        "room",
        "server",
        "transport",
        "transport_name",
        "wrappedProtocol",
    )

    def __init__(self, factory: ConnectionFactory, wrapped: IProtocol) -> None:
        self.factory = factory
        self.transport: ITransport | None = None
        self.connected = 0
        self.wrappedProtocol = wrapped
        self.server: ChatServer = factory.server
        self.config: ChatConfig = factory.server.config
        self.disconnecting = False
        # The Member interface (see member.py).
        self.nick = ""
        self.room: Room | None = None
        self.renderer: Renderer = render_line
        #: The peer's host, for the per-address connection limit.
        self.host = ""
        #: Which transport: tcp, tls, unix, websocket or websocket-tls.
        self.transport_name = ""
        self.connected_at = 0.0
        #: When the wire was attached (registration is counted from there).
        self.attached_at = 0.0
        #: When the peer last sent anything (the keepalive deadline).
        self.last_heard = 0.0
        #: When the peer last sent a line (the idle deadline: answers to our
        #: pings and unfinished lines are not the user saying anything).
        self.last_line = 0.0
        #: Asked for a password before registering (its deadline restarted).
        self._asked_password = False
        self.outbox: Outbox
        self._wire: Wire | None = None
        self._inspector: Inspector | None = None
        #: Input is no longer handled (a close is under way or done).
        self._closing = False
        # Lines waiting to be handled; None while nothing waits.
        self._inbox: deque[bytes | object] | None = None
        self._inbox_bytes = 0
        self._bucket: TokenBucket | None = None
        self._budget = 0
        #: When what is being handled (the connection, a read) happened.
        self._now = 0.0
        self._resume: IDelayedCall | None = None
        #: Why reading is paused: "flood" (ours) and/or "inner" (the wrapped
        #: protocol's own back-pressure).
        self._paused: frozenset[str] = _NOT_PAUSED
        self._held = False
        self._last_ping = 0.0
        self._cut: IDelayedCall | None = None
        self._inner_producer: IProducer | None = None
        self._inner_streaming = False
        self._inner_paused = False
        self._pull_due = False
        #: Why the connection is ending, as counted (see ``stats``).
        self._why: str | None = None

    # Lifetime

    def makeConnection(self, transport: ITransport) -> None:
        if ISSLTransport.providedBy(transport):
            alsoProvides(self, ISSLTransport)  # HTTPS pages know they are
        super().makeConnection(transport)
        self.factory.registerProtocol(self)
        self.wrappedProtocol.makeConnection(self)

    def connectionMade(self) -> None:
        server = self.server
        now = server.reactor.seconds()
        self.connected_at = self.last_heard = self.last_line = self._now = now
        transport = self.transport
        assert transport is not None
        if ITCPTransport.providedBy(transport):
            # Chat lines are small and latency matters: no Nagle delay.
            transport.setTcpNoDelay(True)
            transport.setTcpKeepAlive(True)
        address = transport.getPeer()
        secure = ISSLTransport.providedBy(transport)
        if self.factory.wrappedFactory.web:
            self.transport_name = "websocket-tls" if secure else "websocket"
        elif isinstance(address, UNIXAddress):
            self.transport_name = "unix"
        else:
            self.transport_name = "tls" if secure else "tcp"
        self.host = getattr(address, "host", "")
        self.outbox = Outbox(
            transport,
            server.flusher,
            self.config.max_sendq,
            self,
            server.reactor.seconds,
        )

    def attach(self, wire: Wire) -> None:
        """The peer can chat now: greet it and ask for its nickname."""
        self._wire = wire
        self.renderer = wire.renderer
        # Attached while the connection or a read is being handled (_now):
        # on TCP that is the connection's own time, and no new float to keep.
        self.attached_at = self.last_heard = self.last_line = self._now
        config = self.config
        if config.flood_rate > 0:
            self._bucket = TokenBucket(
                config.flood_rate, config.flood_burst, self.attached_at
            )
        waiting = self.server.hub.greet(self)
        if waiting is not None:
            self._hold(waiting)  # lines typed meanwhile wait for the prompt

    def inspect_with(self, inspector: Inspector) -> None:
        """Show every byte received from now on to ``inspector`` first."""
        self._inspector = inspector

    @property
    def chatting(self) -> bool:
        return self._wire is not None

    # Reading

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        now = self.server.reactor.seconds()
        self.last_heard = self._now = now
        self._budget = self.config.lines_per_turn
        inspector = self._inspector
        if inspector is not None:
            verdict = inspector.feed(data)
            if verdict is not None:
                self.kick(*verdict)
                return
        self.wrappedProtocol.dataReceived(data)

    def line_received(self, line: bytes) -> None:
        """One line from the peer (without its end), in order."""
        self.last_line = self._now
        if len(line) > self.config.max_line:
            self._take(_TOO_LONG, 1)
        else:
            self._take(line, len(line))

    def line_too_long(self) -> None:
        """A line over ``max_line`` was cut out of the stream here."""
        self.last_line = self._now
        self._take(_TOO_LONG, 1)

    def _take(self, line: bytes | object, size: int) -> None:
        """Handle a line now if nothing waits and flood control allows."""
        if self._closing:
            return
        if self._inbox is None and self._may_handle():
            self._handle(line)
        else:
            self._queue(line, size)

    def _may_handle(self) -> bool:
        """Spend one line of this turn's budget and of the flood bucket."""
        if self._budget <= 0:
            # Others get their turn; the rest of ours comes next turn.
            self._pause_reading(0)
            return False
        bucket = self._bucket
        if bucket is not None:
            wait = bucket.take(self._now)
            if wait:
                self.server.stats.flood_pauses += 1
                self._pause_reading(wait)
                return False
        self._budget -= 1
        return True

    def _queue(self, line: bytes | object, size: int) -> None:
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(line)
        self._inbox_bytes += size
        if self._held:
            # More lines while one is still being answered: TCP pushes back.
            self._pause_reading(None)
        if self._inbox_bytes > self.config.max_recvq:
            limit = self.config.max_recvq
            self.kick("excess flood", f"excess flood: more than {limit} bytes unread")

    def _handle(self, line: bytes | object) -> None:
        self.server.stats.lines_in += 1
        if line is _TOO_LONG:
            self._refuse_too_long()
            return
        assert isinstance(line, bytes)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._refuse("your line was not valid UTF-8; it was not sent")
            return
        waiting = handle_line(self.server.hub, self, text)
        if waiting is not None and not self._closing:
            self._hold(waiting)

    def _drain(self) -> None:
        """Handle waiting lines, as fast as flood control allows."""
        self._resume = None
        self._now = self.server.reactor.seconds()
        self._budget = self.config.lines_per_turn
        inbox = self._inbox
        while inbox and not self._closing and not self._held:
            if not self._may_handle():
                return
            line = inbox.popleft()
            self._inbox_bytes -= len(line) if type(line) is bytes else 1
            self._handle(line)
        if self._held or self._closing:
            return
        self._inbox_drained()

    def _inbox_drained(self) -> None:
        """Nothing waits any more: reading goes on."""
        self._inbox = None
        self._inbox_bytes = 0
        self._resume_reading("flood")

    def _pause_reading(self, seconds: float | None) -> None:
        # TCP pushes back on the sender instead of us buffering its lines.
        self._set_paused(self._paused | {"flood"})
        if seconds is not None and self._resume is None:
            self._resume = self.server.reactor.callLater(seconds, self._drain)

    def _resume_reading(self, why: str) -> None:
        self._set_paused(self._paused - {why})

    def _set_paused(self, paused: frozenset[str]) -> None:
        # An empty set difference is a new object (216 bytes), and most
        # connections are left holding one after their greeting: share one.
        was, self._paused = self._paused, paused or _NOT_PAUSED
        if self._closing or bool(was) == bool(paused):
            return
        transport: Any = self.transport
        if paused:
            transport.pauseProducing()
        else:
            # The idle and keepalive clocks did not run while we did not
            # read: the peer was not silent, we were not listening.
            self.last_heard = self.last_line = self.server.reactor.seconds()
            transport.resumeProducing()

    def _hold(self, waiting: Deferred[None]) -> None:
        """Take no more lines from this user until ``waiting`` fires."""
        self._held = True
        if self._inbox is None:
            self._inbox = deque()
        # Reading goes on: most clients wait for the answer, and pausing and
        # resuming would cost each of them two system calls for nothing.
        # A line that comes meanwhile waits in the inbox and pauses reading.
        waiting.addErrback(
            lambda f: self.log.failure("handling a line of {nick}", f, nick=self.nick)
        )
        waiting.addBoth(self._release)

    def _release(self, _: object) -> None:
        self._held = False
        if self._closing or self._resume is not None:
            return
        if self._inbox:
            self._resume = self.server.reactor.callLater(0, self._drain)
        else:
            self._inbox_drained()  # nothing came meanwhile: no turn to run

    def _refuse_too_long(self) -> None:
        limit = self.config.max_line
        self._refuse(f"line too long (max {limit} bytes); it was not sent")

    def _refuse(self, why: str) -> None:
        self.server.hub.line_refused(self, why)

    # The wrapped protocol's own flow control, as its transport.

    def pauseProducing(self) -> None:
        self._set_paused(self._paused | {"inner"})

    def resumeProducing(self) -> None:
        self._resume_reading("inner")

    def stopProducing(self) -> None:
        self.abortConnection()

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        # The outbox is the real transport's producer. What the wrapped
        # protocol produces is held back while the outbox cannot send, as a
        # transport holds back its producer: a push producer is paused until
        # the outbox drains; a pull producer is asked for more each time the
        # outbox can take it.
        self._inner_producer = producer
        self._inner_streaming = streaming
        self._inner_paused = False
        if not streaming:
            self._want_more()

    def unregisterProducer(self) -> None:
        self._inner_producer = None
        self.outbox.on_drain = None

    def _want_more(self) -> None:
        """Ask a pull producer for its next piece once the outbox can take it."""
        if not self.outbox.writable:
            self.outbox.on_drain = self._inner_drained
        elif not self._pull_due:
            self._pull_due = True
            self.server.reactor.callLater(0, self._pull)

    def _pull(self) -> None:
        self._pull_due = False
        producer = self._inner_producer
        if producer is not None and not self._inner_streaming and not self._closing:
            cast(IPullProducer, producer).resumeProducing()

    def _inner_drained(self) -> None:
        self.outbox.on_drain = None
        producer = self._inner_producer
        if producer is None:
            return
        if not self._inner_streaming:
            self._pull()
        elif self._inner_paused:
            self._inner_paused = False
            cast(IPushProducer, producer).resumeProducing()

    # Writing

    def write(self, data: bytes) -> None:
        """Bytes from the wrapped protocol (HTTP, WebSocket frames)."""
        self.outbox.write(data)
        producer = self._inner_producer
        if producer is None:
            return
        if not self._inner_streaming:
            self._want_more()
        elif not self.outbox.writable and not self._inner_paused:
            self._inner_paused = True
            cast(IPushProducer, producer).pauseProducing()
            self.outbox.on_drain = self._inner_drained

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    # Member interface

    def send(self, event: Event) -> None:
        room = self.room
        if room is not None:
            room.catch_up(self)  # the room's lines of this turn go first
        elif type(event) is PasswordPrompt and not self._asked_password:
            # A password takes time to type too: the first prompt for one
            # restarts the deadline, once, so a slot is held at most twice it.
            self._asked_password = True
            self.attached_at = self.server.reactor.seconds()
        self.outbox.write(self.renderer(event))

    def tag_lines(self) -> None:
        if self._wire is not None:
            self.renderer = self._wire.tagged_renderer

    def quit(self, reason: str) -> None:
        self._ending("quit")
        self.server.hub.leave(self, reason)
        self.disconnect(Notice("Goodbye!"))

    # Closing

    def disconnect(self, event: Event) -> None:
        """Send a last line and close once it has been written."""
        if self.disconnecting:
            return
        self._stop_reading()
        wire = self._wire
        if wire is None:
            self.loseConnection()
            return
        self.send(event)
        wire.close()

    def loseConnection(self) -> None:
        """Close after what is queued; cut the peer if it will not read it."""
        if self.disconnecting:
            return
        self.disconnecting = True
        self._stop_reading()
        self.outbox.close()
        assert self.transport is not None
        self.transport.loseConnection()
        self._cut = self.server.reactor.callLater(CLOSE_GRACE, self.abortConnection)

    def abortConnection(self) -> None:
        """Close at once, dropping whatever the peer has not read."""
        self._stop_reading()
        self.disconnecting = True
        if self._cut is not None and self._cut.active():
            self._cut.cancel()
        self._cut = None
        self.outbox.discard()
        transport: Any = self.transport
        transport.abortConnection()

    def _stop_reading(self) -> None:
        self._closing = True
        self._inbox = None
        self._inner_producer = None
        if self._resume is not None and self._resume.active():
            self._resume.cancel()
        self._resume = None

    def kick(self, reason: str, why: str) -> None:
        """Close for misbehaving: ``reason`` to the room, ``why`` to them."""
        self._ending(reason)
        self.end(reason, Error(why))

    def end(self, reason: str, last: Event) -> None:
        """Close: ``reason`` to the room, ``last`` to them."""
        if self._closing:
            return
        self._ending("refused" if not reason else "removed")
        self.log.info(
            "closing {nick} ({peer}): {reason}",
            nick=self.nick or "unregistered connection",
            peer=self.peer,
            reason=reason,
        )
        self.server.hub.leave(self, reason)
        self.disconnect(last)

    def send_queue_exceeded(self) -> None:
        # Called from inside a broadcast: leaving now would change the room
        # while it is being iterated, and tell later members about the
        # leave before the line being delivered. The outbox already takes
        # nothing more; the rest happens next turn.
        if not self._closing:
            self._closing = True
            self.server.reactor.callLater(0, self._drop_slow_reader)

    def _ending(self, why: str) -> None:
        if self._why is None:
            self._why = why

    def _drop_slow_reader(self) -> None:
        # The peer is not reading: nothing more can reach it, so the
        # reason goes to the log and to everyone else.
        self._ending("send queue exceeded")
        self.server.stats.sendq_cuts += 1
        self.log.info(
            "{nick} ({peer}) is not reading: send queue exceeded",
            nick=self.nick or "unregistered connection",
            peer=self.peer,
        )
        self.server.hub.leave(self, "send queue exceeded")
        self.abortConnection()

    # Deadlines

    @property
    def sweep_always(self) -> bool:
        """Whether every sweep must look at this one (keepalive pings)."""
        wire = self._wire
        return wire is not None and wire.keepalive

    def check_deadlines(self, now: float) -> None:
        """Called about once a second by the pool's sweep."""
        if self._closing:
            return
        config = self.config
        wire = self._wire
        if wire is None:
            if now - self.connected_at >= config.web_request_timeout:
                self.log.info(
                    "closing {peer}: no WebSocket after {seconds:g} seconds",
                    peer=self.peer,
                    seconds=config.web_request_timeout,
                )
                self.abortConnection()
            return
        if not self.nick and now - self.attached_at >= config.register_timeout:
            what = "password" if self._asked_password else "nickname"
            self.kick(
                "registration timeout",
                f"no {what} after {config.register_timeout:g} seconds; closing",
            )
            return
        since = self.outbox.waiting_since
        if since is not None and now - since >= config.sendq_timeout:
            self._closing = True
            self._drop_slow_reader()
            return
        if "flood" in self._paused:
            return  # not listening: the peer's silence would be ours
        idle = config.idle_timeout
        if idle and now - self.last_line >= idle:
            self.kick("idle timeout", f"{IDLE_FOR}{idle:g} seconds; closing")
            return
        if wire.keepalive:
            if now - self.last_heard >= PING_TIMEOUT:
                self.kick("ping timeout", f"no answer for {PING_TIMEOUT:g} seconds")
                return
            if now - max(self.last_heard, self._last_ping) >= PING_INTERVAL:
                self._last_ping = now
                wire.ping()

    def connectionLost(self, reason: Failure = _CLEAN_CLOSE) -> None:
        self._stop_reading()
        if self._cut is not None and self._cut.active():
            self._cut.cancel()
        self._cut = None
        closed = reason.check(ConnectionDone) is not None
        if self._why is None:
            closing = self.server.lifecycle.closing
            self._why = "shutdown" if closing else "closed" if closed else "lost"
        self.server.stats.disconnected(self._why)
        self.server.hub.leave(
            self, "connection closed" if closed else "connection lost"
        )
        self.factory.unregisterProtocol(self)
        self.wrappedProtocol.connectionLost(reason)

    # The rest of the transport interface, for the wrapped protocol.

    def getPeer(self) -> IAddress:
        assert self.transport is not None
        return self.transport.getPeer()

    def getHost(self) -> IAddress:
        assert self.transport is not None
        return self.transport.getHost()

    def getPeerCertificate(self) -> Any:
        transport: Any = self.transport
        return transport.getPeerCertificate()

    @property
    def peer(self) -> str:
        """
        Where the peer is (``127.0.0.1:5000``), for the log. Made when
        asked, not kept: few connections are logged about after they join,
        and thousands of idle ones kept 64 bytes each.
        """
        transport = self.transport
        return "" if transport is None else describe_address(transport.getPeer())

    def logPrefix(self) -> str:
        return clean_text(self.peer) or "Connection"
