"""The browser transport over real loopback TCP, driven without a browser."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import pytest_twisted
from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.websocket import ConnectionRejected, WebSocketClientEndpoint

from twchat.connection.connection import PING_INTERVAL, PING_TIMEOUT
from twchat.transports.web import SECURITY_HEADERS

from .support.fakes import FakeWebUser, client_frame, make_server, register
from .support.net import free_port, join
from .support.web import WSUser, _Factory, ws_connect, ws_join
from .test_integration import _serve


async def _serve_web(*args: str) -> tuple[int, int, MultiService]:
    """A server with a web port too: (chat port, web port, service)."""
    web_port = free_port()
    port, top = await _serve("--web", f"tcp:{web_port}:interface=127.0.0.1", *args)
    return port, web_port, top


@pytest_twisted.async_yield_fixture
async def web() -> AsyncIterator[tuple[int, int]]:
    port, web_port, top = await _serve_web()
    yield port, web_port
    await top.stopService()


def _http(port: int, request: bytes, whole: bool = False) -> bytes:
    """The answer's head (or, with ``whole``, everything until the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while whole or b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _upgrade(port: int, origin: str | None, whole: bool = False) -> bytes:
    headers = [
        b"GET /ws HTTP/1.1",
        b"Host: 127.0.0.1:%d" % port,
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        headers.append(b"Origin: " + origin.encode())
    return _http(port, b"\r\n".join(headers) + b"\r\n\r\n", whole)


@pytest_twisted.ensureDeferred
async def test_tcp_and_browser_users_chat_both_ways(web: tuple[int, int]) -> None:
    port, web_port = web
    tcp = await join(port, "tcpuser")
    browser = await ws_join(web_port, "webby")
    assert await tcp.line() == "*** webby joined (2 here)"
    browser.send("hello from the browser <b>")
    assert await tcp.line() == "<webby> hello from the browser <b>"
    tcp.send("hello back")
    said = await browser.event()
    assert said == {
        "type": "chat",
        "nick": "tcpuser",
        "text": "hello back",
        "id": 0,  # its place in the room's history: this server keeps none
    }
    browser.send("/me waves")
    assert await tcp.line() == "* webby waves"
    tcp.send("/msg webby psst")
    assert await browser.event() == {
        "type": "private",
        "sender": "tcpuser",
        "text": "psst",
    }


@pytest_twisted.ensureDeferred
async def test_browser_users_follow_the_same_rules(web: tuple[int, int]) -> None:
    port, web_port = web
    await join(port, "alice")
    browser = await ws_connect(web_port)
    browser.send("ALICE")
    assert await browser.event() == {
        "type": "error",
        "text": "nickname ALICE is already taken",
        "unsent": False,
    }
    assert (await browser.event())["type"] == "prompt"
    browser.send("bob")
    registered = await browser.event()
    assert registered["type"] == "registered"
    assert registered["room"] == "lobby"
    browser.send("x" * 600)
    assert await browser.event() == {
        "type": "error",
        "text": "line too long (max 512 bytes); it was not sent",
        "unsent": True,  # the page gives it back to be edited
    }
    browser.send("/join games")
    assert await browser.event() == {
        "type": "who",
        "room": "games",
        "online": 1,
        "names": ["bob"],
        "operators": [],  # a guest founds nothing
        "entered": True,
    }


@pytest_twisted.ensureDeferred
async def test_a_huge_message_is_refused_and_the_socket_closed(
    web: tuple[int, int],
) -> None:
    port, web_port = web
    watcher = await join(port, "watcher")
    # Just past the cap (caught when delivered), and far past it (caught
    # while it streams in, before Twisted has all of it).
    for nick, size in (("big", 16 * 512 + 1), ("huge", 4_000_000)):
        browser = await ws_join(web_port, nick)
        assert await watcher.line() == f"*** {nick} joined (2 here)"
        browser.send("x" * size)
        error = await browser.event()
        assert error == {
            "type": "error",
            "text": "message too big; closing",
            "unsent": False,
        }
        await browser.closed
        assert await watcher.line() == f"*** {nick} left (1 here): message too big"


@pytest_twisted.ensureDeferred
async def test_the_page_is_served(web: tuple[int, int]) -> None:
    _, web_port = web
    for path in (b"/", b"/static/app.js", b"/static/style.css"):
        request = (
            b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
            % (path, web_port)
        )
        answer = await deferToThread(_http, web_port, request)
        assert answer.startswith(b"HTTP/1.1 200"), path


@pytest_twisted.ensureDeferred
async def test_foreign_origins_are_refused(web: tuple[int, int]) -> None:
    _, web_port = web
    refused = await deferToThread(_upgrade, web_port, "http://evil.example")
    assert refused.startswith(b"HTTP/1.1 403")
    same = await deferToThread(_upgrade, web_port, f"http://127.0.0.1:{web_port}")
    assert same.startswith(b"HTTP/1.1 101")


@pytest_twisted.ensureDeferred
async def test_allowed_origins_option() -> None:
    _, web_port, top = await _serve_web("--web-origin", "https://chat.example")
    try:
        listed = await deferToThread(_upgrade, web_port, "https://chat.example")
        assert listed.startswith(b"HTTP/1.1 101")
        own = await deferToThread(_upgrade, web_port, f"http://127.0.0.1:{web_port}")
        assert own.startswith(b"HTTP/1.1 403")
    finally:
        await top.stopService()


class KeepaliveTests(SynchronousTestCase):
    def test_quiet_browsers_are_pinged_and_dead_ones_dropped(self) -> None:
        server, clock = make_server()
        web = register(server, "webby", FakeWebUser)
        assert isinstance(web, FakeWebUser)

        def seconds(n: float) -> None:
            for _ in range(int(n)):
                clock.advance(1)

        def pings() -> int:
            web.read()
            return sum(1 for opcode, _ in web.control if opcode == 0x9)

        seconds(PING_INTERVAL)
        self.assertEqual(pings(), 1)
        web.raw(client_frame(b"twchat", opcode=0xA))  # the pong
        seconds(PING_INTERVAL)
        self.assertEqual(pings(), 2)
        self.assertFalse(web.closing)
        seconds(PING_TIMEOUT)  # no pong any more
        self.assertTrue(web.closing)
        self.assertIn("! no answer for 75 seconds", web.read())


@pytest_twisted.ensureDeferred
async def test_tcp_and_browser_users_share_the_connection_limit() -> None:
    port, web_port, top = await _serve_web("--max-clients", "1")
    try:
        await join(port, "first")
        endpoint = WebSocketClientEndpoint.new(
            reactor, f"http://127.0.0.1:{web_port}/ws"
        )
        with pytest.raises(ConnectionRejected) as refused:
            await Deferred.fromCoroutine(endpoint.connect(_Factory(WSUser())))
        assert refused.value.response.code == 503
        # The reason, as a raw client reads it (Twisted's WebSocket client
        # never finishes a refused response's body).
        answer = await deferToThread(_upgrade, web_port, None, True)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert answer.endswith(b"\r\n\r\nserver is full (1 users); try again later\n")
    finally:
        await top.stopService()


def _get(port: int, path: bytes, *headers: bytes, host: bytes | None = None) -> bytes:
    lines = [
        b"GET " + path + b" HTTP/1.1",
        b"Host: " + (host or b"127.0.0.1:%d" % port),
        b"Connection: close",
        *headers,
    ]
    return _http(port, b"\r\n".join(lines) + b"\r\n\r\n", whole=True)


@pytest_twisted.ensureDeferred
async def test_the_page_has_strict_headers_and_no_version(
    web: tuple[int, int],
) -> None:
    _, web_port = web
    answer = await deferToThread(_get, web_port, b"/")
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 200")
    for name, value in SECURITY_HEADERS.items():
        assert name + b": " + value.lower() in head
    assert b"twistedweb" not in head
    assert b"connect-src 'self'" in head
    assert b"script-src 'self';" in head  # no inline script


@pytest_twisted.ensureDeferred
async def test_several_ranges_are_answered_with_one_copy(web: tuple[int, int]) -> None:
    _, web_port = web
    whole = await deferToThread(_get, web_port, b"/static/app.js")
    size = len(whole.split(b"\r\n\r\n", 1)[1])
    ranges = b"Range: bytes=" + b",".join([b"0-"] * 500)
    answer = await deferToThread(_get, web_port, b"/static/app.js", ranges)
    assert answer.startswith(b"HTTP/1.1 200")
    assert len(answer) < size + 2048  # was 500 copies
    one = await deferToThread(_get, web_port, b"/static/app.js", b"Range: bytes=0-9")
    assert one.startswith(b"HTTP/1.1 206")
    assert one.endswith(b"\r\n\r\n" + whole.split(b"\r\n\r\n", 1)[1][:10])


@pytest_twisted.ensureDeferred
async def test_web_host_names_the_hosts_served() -> None:
    _, web_port, top = await _serve_web("--web-host", "chat.example")
    try:
        named = await deferToThread(
            _get, web_port, b"/", host=b"chat.example:%d" % web_port
        )
        assert named.startswith(b"HTTP/1.1 200")
        other = await deferToThread(_get, web_port, b"/", host=b"localhost")
        assert other.startswith(b"HTTP/1.1 421")
        numeric = await deferToThread(_get, web_port, b"/")  # the address itself
        assert numeric.startswith(b"HTTP/1.1 200")
    finally:
        await top.stopService()
