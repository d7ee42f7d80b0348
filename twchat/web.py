"""
The browser transport: a page and a WebSocket on one port.

A browser user is an ordinary ``ChatProtocol`` (same nickname rules,
rooms, commands, history, flood control, send queue, deadlines) whose
lines travel as WebSocket messages and whose events are rendered as JSON
instead of text lines. ``_WebSocketAsTransport`` makes the WebSocket look
like the byte transport the protocol expects: what the protocol writes
(newline-separated JSON, one batch per turn) leaves as one text message;
each message received is one line typed.

Twisted's WebSocket resource has no Origin check, no size cap and no
keepalive; ``ChatWebSocketResource`` and ``WebChatProtocol`` add them.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.interfaces import IAddress, IPushProducer, ITCPTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from twisted.web.static import File
from twisted.web.websocket import WebSocketResource, WebSocketTransport

from .events import Error
from .factory import ChatFactory
from .jsonwire import render_json
from .protocol import ChatProtocol

__all__ = [
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "ChatWebSocketResource",
    "WebChatProtocol",
    "web_site",
]

#: Seconds between keepalive pings to a quiet browser.
PING_INTERVAL = 30.0
#: Seconds without any sign of life before a browser is taken for gone.
PING_TIMEOUT = 75.0
#: A message this many times the line limit closes the WebSocket (1009):
#: no typist sends that, and Twisted has buffered it whole already.
HARD_CAP_LINES = 16

_log = Logger()


class _WebSocketAsTransport:
    """The bits of ``ITCPTransport`` a ChatProtocol uses, over a WebSocket."""

    def __init__(
        self, ws: WebSocketTransport, peer: IAddress, tcp: ITCPTransport | None
    ) -> None:
        self._ws = ws
        self._peer = peer
        self._tcp = tcp
        self.disconnecting = False

    def write(self, data: bytes) -> None:
        if not self.disconnecting:
            self._ws.sendTextMessage(data.decode("utf-8"))

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if not self.disconnecting:
            self.disconnecting = True
            self._ws.loseConnection()

    def abortConnection(self) -> None:
        self.disconnecting = True
        if self._tcp is not None:
            self._tcp.abortConnection()
        else:
            self._ws.loseConnection()

    def getPeer(self) -> IAddress:
        return self._peer

    def getHost(self) -> IAddress:
        return self._tcp.getHost() if self._tcp is not None else self._peer

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        try:
            self._ws.attachProducer(producer)
        except RuntimeError:
            # After the upgrade the HTTP channel is still registered as the
            # connection's producer (Twisted 26.10 leaves it there), which
            # makes attachProducer fail; the channel no longer owns the
            # connection, so it steps aside for the outbox.
            if self._tcp is not None:
                self._tcp.unregisterProducer()  # type: ignore[attr-defined]
            self._ws.attachProducer(producer)

    def unregisterProducer(self) -> None:
        self._ws.detachProducer()

    # Flood control pauses reading: stop reading the TCP connection.

    def pauseProducing(self) -> None:
        if self._tcp is not None:
            self._tcp.pauseProducing()  # type: ignore[attr-defined]

    def resumeProducing(self) -> None:
        if self._tcp is not None:
            self._tcp.resumeProducing()  # type: ignore[attr-defined]

    def stopProducing(self) -> None:
        self.abortConnection()


class WebChatProtocol(ChatProtocol):
    """A chat user in a browser: JSON out, WebSocket keepalive."""

    renderer = staticmethod(render_json)
    sweep_always = True  # for the keepalive pings
    _last_ping = 0.0

    def check_deadlines(self, now: float) -> None:
        if not self._closing:
            if now - self.last_heard >= PING_TIMEOUT:
                self.kick("ping timeout", f"no answer for {PING_TIMEOUT:g} seconds")
                return
            quiet = now - max(self.last_heard, self._last_ping)
            if quiet >= PING_INTERVAL:
                self._last_ping = now
                self.websocket.ping(b"twchat")
        super().check_deadlines(now)

    websocket: WebSocketTransport


class _WebSocketUser:
    """Twisted's WebSocketProtocol, handing everything to a WebChatProtocol."""

    def __init__(self, factory: ChatFactory, request: Request) -> None:
        self.factory = factory
        self.request = request
        self.chat: WebChatProtocol | None = None
        self._ws: WebSocketTransport | None = None
        #: Bytes received since the last complete message.
        self._unread = 0

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self._ws = transport

    def negotiationFinished(self) -> None:
        assert self._ws is not None
        peer = self.request.getClientAddress()
        tcp = self.request.channel.transport
        why = self.factory.refusal(peer)
        if why is not None or self.factory.hub.closing:
            self._ws.sendTextMessage(
                render_json(Error(why or "server is shutting down")).decode()
            )
            self._ws.loseConnection()
            return
        if ITCPTransport.providedBy(tcp):
            tcp.setTcpNoDelay(True)
            tcp.setTcpKeepAlive(True)
        chat = self.chat = WebChatProtocol()
        chat.factory = self.factory
        chat.websocket = self._ws
        chat.makeConnection(_WebSocketAsTransport(self._ws, peer, tcp))  # type: ignore[arg-type]
        self._count_incoming()

    def _count_incoming(self) -> None:
        """
        Stop a huge message while it arrives, not once it is all in memory.

        Twisted hands a WebSocket message over only when it is complete; by
        counting the bytes that arrive between complete messages, a message
        past the hard cap is refused with at most one read more in memory.
        """
        channel = self.request.channel
        deliver = channel.dataReceived  # the WebSocket's, since the upgrade
        cap = HARD_CAP_LINES * self.factory.config.max_line

        def counted(data: bytes) -> None:
            self._unread += len(data)
            if self._unread > cap + len(data) and self.chat is not None:
                self.chat.kick("message too big", "message too big; closing")
                return
            deliver(data)

        channel.dataReceived = counted  # type: ignore[method-assign]

    def textMessageReceived(self, message: str) -> None:
        self._received(message.encode("utf-8"))

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self._received(bytes(data))

    def _received(self, data: bytes) -> None:
        self._unread = 0
        chat = self.chat
        if chat is None:
            return
        if len(data) > HARD_CAP_LINES * self.factory.config.max_line:
            chat.kick("message too big", "message too big; closing")
            return
        chat.dataReceived(data + b"\n")

    def pongReceived(self, payload: bytes) -> None:
        self._unread = 0
        if self.chat is not None:
            self.chat.last_heard = self.factory.reactor.seconds()

    def connectionLost(self, reason: Failure) -> None:
        if self.chat is not None:
            self.chat.connectionLost(reason)


def _origin_allowed(request: Request, allowed: tuple[str, ...]) -> bool:
    origin = request.getHeader("origin")
    if origin is None:
        return True  # not a browser: browsers always send Origin here
    if allowed:
        return "*" in allowed or origin.rstrip("/") in allowed
    host = request.getHeader("host") or ""
    return urlsplit(origin).netloc.lower() == host.lower()


class ChatWebSocketResource(WebSocketResource):
    """Twisted's WebSocket resource, refusing pages from foreign origins."""

    def __init__(self, factory: ChatFactory, origins: tuple[str, ...] = ()) -> None:
        super().__init__(_UserFactory(factory))
        #: Allowed origins (e.g. https://chat.example); empty: same origin.
        self.origins = tuple(o.rstrip("/") for o in origins)

    def render_GET(self, request: Request) -> bytes | int:
        if not _origin_allowed(request, self.origins):
            _log.warn(
                "refused a WebSocket from origin {origin}",
                origin=request.getHeader("origin"),
            )
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this chat does not accept connections from that page's origin\n"
        return super().render_GET(request)


class _UserFactory:
    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory

    def buildProtocol(self, request: Request) -> Any:
        return _WebSocketUser(self.factory, request)


def web_site(factory: ChatFactory, origins: tuple[str, ...] = ()) -> Site:
    """The page at ``/`` and the WebSocket at ``/ws``, for ``--web``."""
    static = File(str(files("twchat") / "static"))
    root = Resource()
    root.putChild(b"", File(str(files("twchat") / "static" / "index.html")))
    root.putChild(b"static", static)
    root.putChild(b"ws", ChatWebSocketResource(factory, origins))
    site = Site(root)
    site.noisy = False
    return site
