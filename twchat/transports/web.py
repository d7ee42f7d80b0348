"""
The browser transport: a page and a WebSocket on one port.

Every connection to the port is a ``Connection`` from its first byte (it
counts toward the connection limits, has an absolute deadline to make its
request, and every byte it is sent goes through its send queue). The page
is served by ``twisted.web`` with a strict set of headers; a request for
``/ws`` from an allowed page upgrades to Twisted's WebSocket, and
``WebChatProtocol`` then hands each whole message to the connection as one
line typed, and renders events as JSON text frames.

Without ``--web-origin``, a WebSocket is accepted only from the page's own
origin (scheme included), and only under a host name the server answers
to (``--web-host``; by default localhost, the machine's names and the
address connected to), so a page on another name that resolves here (DNS
rebinding) is refused.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from importlib.resources import files
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import ErrorPage, IResource, Resource
from twisted.web.server import Request, Site
from twisted.web.static import File
from twisted.web.websocket import WebSocketResource, WebSocketTransport

from ..connection.connection import Connection
from ..text import clean_text
from .wsframes import FrameInspector, render_frame

__all__ = [
    "HARD_CAP_LINES",
    "SECURITY_HEADERS",
    "ChatWebSocketResource",
    "WebChatProtocol",
    "web_site",
]

#: A message this many times the line limit closes the WebSocket: no
#: typist sends that.
HARD_CAP_LINES = 16

#: Sent with every answer of the web port.
SECURITY_HEADERS = {
    b"content-security-policy": (
        b"default-src 'none'; script-src 'self'; style-src 'self'; "
        b"img-src 'self'; connect-src 'self'; base-uri 'none'; "
        b"form-action 'none'; frame-ancestors 'none'"
    ),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"server": b"twchat",
}

_log = Logger()
_CONNECTION_DONE = Failure(ConnectionDone())


def _shown(text: str | bytes | None, limit: int = 80) -> str:
    """Peer-supplied text as it may appear in the log: no controls, bounded."""
    if text is None:
        return "(none)"
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return clean_text(text)[:limit]


def http_answer(status: int, reason: str, text: str) -> bytes:
    """A complete HTTP response that closes the connection."""
    body = text.encode("utf-8") + b"\n"
    head = [
        f"HTTP/1.1 {status} {reason}".encode(),
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Length: %d" % len(body),
        b"Connection: close",
        *(name + b": " + value for name, value in SECURITY_HEADERS.items()),
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class WebChatProtocol:
    """A chat user in a browser: whole WebSocket messages in, JSON frames out."""

    renderer = staticmethod(render_frame)
    #: JSON events always carry their ids and rooms.
    tagged_renderer = staticmethod(render_frame)
    keepalive = True  # browsers answer pings; idle sockets die silently

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._ws: WebSocketTransport | None = None

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self._ws = transport

    def negotiationFinished(self) -> None:
        connection = self.connection
        cap = HARD_CAP_LINES * connection.config.max_line
        connection.inspect_with(FrameInspector(cap, connection.server.reactor.seconds))
        connection.attach(self)

    def textMessageReceived(self, message: str) -> None:
        self._lines(message.encode("utf-8"))

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self._lines(bytes(data))

    def _lines(self, message: bytes) -> None:
        # One message is one line typed; a pasted block is several, as on TCP.
        if b"\n" in message or b"\r" in message:
            lines = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            if not lines[-1]:
                lines.pop()
        else:
            lines = [message]
        for line in lines:
            self.connection.line_received(line)

    def pongReceived(self, payload: bytes) -> None:
        """Any bytes received already count as a sign of life."""

    def connectionLost(self, reason: Failure) -> None:
        """The connection tells the hub; nothing is left to do here."""

    # Wire

    def ping(self) -> None:
        assert self._ws is not None
        self._ws.ping(b"twchat")

    def close(self) -> None:
        assert self._ws is not None
        self._ws.loseConnection(1000)  # a close frame, then loseConnection


def _host_name(host: str) -> str:
    """The name in a Host header or URL netloc, without port or brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name.rstrip(".") if colon and port.isdigit() else host.rstrip(".")


def _default_hosts() -> tuple[str, ...]:
    names = {"localhost", "127.0.0.1", "::1"}
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names.add(name.lower())
    return tuple(sorted(names))


class _Policy:
    """Which host names the port answers to, and which pages may chat."""

    def __init__(self, origins: Iterable[str], hosts: Iterable[str]) -> None:
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)
        self.hosts = frozenset(_host_name(h) for h in hosts) or frozenset(
            _default_hosts()
        )

    def host_allowed(self, request: Request) -> bool:
        header = request.getHeader("host")
        if header is None:
            return False
        name = _host_name(header)
        # The address the peer connected to is always ours.
        here = getattr(request.getHost(), "host", None)
        return name in self.hosts or name == here

    def origin_refusal(self, request: Request) -> str | None:
        """Why the page asking for the WebSocket may not have it, if so."""
        origin = request.getHeader("origin")
        if origin is None:
            return None  # not a browser: browsers always send Origin here
        origin = origin.rstrip("/").lower()
        if self.origins:
            if "*" in self.origins or origin in self.origins:
                return None
            return "origin not allowed"
        try:
            parts = urlsplit(origin)
            port = parts.port  # raises on a bad port
        except ValueError:
            return "malformed origin"
        scheme = "https" if request.isSecure() else "http"
        host = (request.getHeader("host") or "").lower()
        if parts.scheme != scheme or parts.netloc != host or port == 0:
            return "not the page's own origin"
        return None


class ChatWebSocketResource(WebSocketResource):
    """Twisted's WebSocket resource, for allowed pages only."""

    def __init__(self, policy: _Policy) -> None:
        super().__init__(_UserFactory())
        self.policy = policy

    def render_GET(self, request: Request) -> bytes | int:
        why = self.policy.origin_refusal(request)
        if why is not None:
            _log.warn(
                "refused a WebSocket from origin {origin}: {why}",
                origin=_shown(request.getHeader("origin")),
                why=why,
            )
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this chat does not accept connections from that page's origin\n"
        return super().render_GET(request)


class _UserFactory:
    def buildProtocol(self, request: Request) -> WebChatProtocol:
        # The web port's factory wraps every channel in a Connection.
        connection: Any = request.channel.transport
        assert isinstance(connection, Connection)
        return WebChatProtocol(connection)


class _PageRequest(Request):
    """A request to the web port: GET and HEAD, and no bodies."""

    def process(self) -> None:
        if self.method not in (b"GET", b"HEAD"):
            self.setResponseCode(405)
            self.setHeader(b"allow", b"GET, HEAD")
            for name, value in SECURITY_HEADERS.items():
                self.setHeader(name, value)
            self.setHeader(b"content-type", b"text/plain; charset=utf-8")
            self.write(b"this server answers GET and HEAD only\n")
            self.finish()
            return
        super().process()

    def gotLength(self, length: int | None) -> None:
        if length == 0:
            super().gotLength(length)
            return
        # Nothing here takes a body: refuse it before a byte is stored.
        self.content = BytesIO()
        transport = self.channel.transport
        if transport is not None:
            transport.write(
                http_answer(413, "Content Too Large", "this server takes no uploads")
            )
            transport.loseConnection()


class _Root(Resource):
    """The site's root: host check, safe paths, security headers."""

    def __init__(self, policy: _Policy) -> None:
        super().__init__()
        self.policy = policy

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        if not self.policy.host_allowed(request):
            _log.info(
                "refused a web request for host {host}",
                host=_shown(request.getHeader("host")),
            )
            return ErrorPage(
                421,
                "Misdirected Request",
                "This server does not answer to that host name.",
            )
        segments = [path, *(request.postpath or ())]
        if any(not s.isascii() or not s.decode().isprintable() for s in segments):
            return ErrorPage(404, "Not Found", "No such page.")
        range_header = request.getHeader("range")
        if range_header is not None and "," in range_header:
            # Several ranges would be answered as several copies: one is enough.
            request.requestHeaders.removeHeader(b"range")
        child: IResource = super().getChildWithDefault(path, request)
        return child


class _Static(File):
    """Static files, without directory listings."""

    def directoryListing(self) -> IResource:
        return ErrorPage(404, "Not Found", "No such page.")


class _WebSite(Site):
    """The web port's HTTP side; refused peers get a 503 and are closed."""

    requestFactory = _PageRequest
    noisy = False
    #: The page and its WebSocket.
    web = True

    def __init__(self, resource: IResource) -> None:
        super().__init__(resource)
        #: Refused connections waiting to send their request.
        self.refusing = 0

    def refusal(self, why: str, clock: IReactorTime) -> Protocol:
        if self.refusing >= MAX_REFUSING:
            return _Cut()
        return _HTTPRefusal(self, why, clock)


#: Refused web connections held at once while they send their request.
MAX_REFUSING = 64
#: Seconds a refused web connection has to send its request.
REFUSAL_WAIT = 2.0


class _HTTPRefusal(Protocol):
    """
    Answers 503 once the request arrives, then closes.

    Answering before the browser has sent its request would close under
    it, and its request would then reset the connection before the answer
    was read.
    """

    def __init__(self, site: _WebSite, why: str, clock: IReactorTime) -> None:
        self._site = site
        self._answer = http_answer(503, "Service Unavailable", why)
        self._clock = clock
        self._timer: IDelayedCall | None = None

    def connectionMade(self) -> None:
        self._site.refusing += 1
        self._timer = self._clock.callLater(REFUSAL_WAIT, self._give_up)

    def dataReceived(self, data: bytes) -> None:
        if self._answer:
            assert self.transport is not None
            self.transport.write(self._answer)
            self._answer = b""
            self.transport.loseConnection()

    def _give_up(self) -> None:
        self._timer = None
        transport: Any = self.transport
        transport.abortConnection()

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        self._site.refusing -= 1
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class _Cut(Protocol):
    """Too many refusals at once: close without a word."""

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.abortConnection()


def web_site(origins: tuple[str, ...] = (), hosts: tuple[str, ...] = ()) -> _WebSite:
    """The page at ``/`` and the WebSocket at ``/ws``, for ``--web``."""
    policy = _Policy(origins, hosts)
    static = files("twchat") / "static"
    root = _Root(policy)
    root.putChild(b"", _Static(str(static / "index.html")))
    root.putChild(b"static", _Static(str(static)))
    root.putChild(b"ws", ChatWebSocketResource(policy))
    return _WebSite(root)
