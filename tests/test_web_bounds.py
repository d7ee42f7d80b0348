"""The web port's bounds, in memory: HTTP before the upgrade, frames after."""

from __future__ import annotations

from typing import cast

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twchat.server import ChatServer
from twchat.transports.wsframes import (
    CONTROL_BURST,
    MAX_PIECES,
    FrameInspector,
    text_frame,
)

from .support.fakes import FakeWebUser, client_frame, make_server, register, room


class _Peer:
    """A raw HTTP peer of the web port on a StringTransport."""

    def __init__(self, server: ChatServer, host: str = "127.0.0.1") -> None:
        self.server = server
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", host, 50000),
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
        )
        protocol = server.web_factory().buildProtocol(IPv4Address("TCP", host, 5))
        assert protocol is not None
        self.protocol = protocol
        protocol.makeConnection(self.transport)

    def request(self, data: bytes) -> bytes:
        self.protocol.dataReceived(data)
        self.server.reactor.advance(0)  # type: ignore[attr-defined]
        answer: bytes = self.transport.value()
        self.transport.clear()
        return answer


def _get(path: bytes, *headers: bytes, host: bytes = b"localhost") -> bytes:
    lines = [b"GET " + path + b" HTTP/1.1", b"Host: " + host, *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


class PageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server()

    def test_odd_paths_are_not_found_never_a_500(self) -> None:
        for path in (
            b"/static/app.js%00.txt",
            b"/%00",
            b"/static/%1b%5b2J",
            b"/static/../../etc/passwd",
            b"/static/%2e%2e/%2e%2e/etc/passwd",
            b"/nothing",
        ):
            answer = _Peer(self.server).request(_get(path))
            self.assertIn(_status(answer), (400, 404), path)

    def test_bodies_are_refused_before_they_are_stored(self) -> None:
        peer = _Peer(self.server)
        answer = peer.request(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000"
            b"\r\n\r\n" + b"x" * 60000
        )
        self.assertEqual(_status(answer), 413)
        self.assertTrue(peer.transport.disconnecting)
        chunked = _Peer(self.server).request(
            b"PUT / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        self.assertEqual(_status(chunked), 413)

    def test_only_get_and_head(self) -> None:
        for method in (b"DELETE", b"OPTIONS", b"POST"):
            answer = _Peer(self.server).request(
                method + b" / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
            )
            self.assertEqual(_status(answer), 405, method)

    def test_unknown_host_names_are_misdirected(self) -> None:
        answer = _Peer(self.server).request(_get(b"/nothing", host=b"evil.example"))
        self.assertEqual(_status(answer), 421)
        # The address the peer connected to is always fine.
        own = _Peer(self.server).request(_get(b"/nothing", host=b"127.0.0.1:8080"))
        self.assertEqual(_status(own), 404)

    def test_a_request_has_an_absolute_deadline(self) -> None:
        config_timeout = self.server.config.web_request_timeout
        peer = _Peer(self.server)
        peer.request(b"GET / HTTP/1.1\r\n")
        for _ in range(int(config_timeout) - 1):
            peer.request(b"X-Dribble: 1\r\n")  # bytes do not extend it
            self.clock.advance(1)
        self.assertFalse(peer.transport.disconnected)
        self.clock.advance(1)
        self.assertTrue(peer.transport.disconnected)

    def test_pending_requests_count_toward_the_limits(self) -> None:
        server, _ = make_server(max_per_ip=3)
        peers = [_Peer(server, host="10.0.0.9") for _ in range(3)]
        extra = _Peer(server, host="10.0.0.9")
        self.assertEqual(len(server.pool.connections), 3)
        answer = extra.request(_get(b"/nothing"))
        self.assertTrue(answer.startswith(b"HTTP/1.1 503 "), answer)
        self.assertIn(b"too many connections from your address (limit 3)", answer)
        self.assertEqual(len(peers), 3)


def _upgrade(origin: bytes | None, host: bytes = b"localhost") -> bytes:
    headers = [
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        headers.append(b"Origin: " + origin)
    return _get(b"/ws", *headers, host=host)


class OriginTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, _ = make_server()
        self.logged: list[str] = []

        def observe(event: LogEvent) -> None:
            self.logged.append(formatEvent(event))

        observer = cast(ILogObserver, observe)  # zope adapts a function
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def status(self, origin: bytes | None, host: bytes = b"localhost") -> int:
        return _status(_Peer(self.server).request(_upgrade(origin, host)))

    def test_own_origin_only_scheme_included(self) -> None:
        self.assertEqual(self.status(b"http://localhost"), 101)
        self.assertEqual(self.status(b"https://localhost"), 403)
        self.assertEqual(self.status(b"http://localhost:9999"), 403)
        self.assertEqual(self.status(b"http://evil.example"), 403)
        self.assertEqual(self.status(b"null"), 403)

    def test_dns_rebinding_is_refused(self) -> None:
        self.assertEqual(
            self.status(b"http://evil.example:8080", host=b"evil.example:8080"), 421
        )

    def test_malformed_origins_are_refused_not_a_500(self) -> None:
        for origin in (b"http://[bad", b"http://localhost:99999", b"\x00", b"http://"):
            self.assertIn(self.status(origin), (400, 403), origin)

    def test_peer_text_reaches_the_log_cleaned(self) -> None:
        self.status(b"http://evil\x1b[2J\x08\x07.example")
        self.status(b"http://x", host=b"bad\x1b]0;pwned\x07host")
        text = "\n".join(self.logged)
        self.assertIn("refused a WebSocket from origin", text)
        self.assertIn("refused a web request for host", text)
        for control in ("\x1b", "\x08", "\x07"):
            self.assertNotIn(control, text)


class FrameTests(SynchronousTestCase):
    """What a WebSocket peer cannot do, counted before wsproto sees it."""

    def setUp(self) -> None:
        self.server, self.clock = make_server()
        (self.watcher,) = room(self.server, "watcher")
        web = register(self.server, "web", FakeWebUser)
        assert isinstance(web, FakeWebUser)
        self.web = web
        self.watcher.read()

    def test_a_fragmented_message_counts_every_piece_pongs_included(self) -> None:
        piece = b"x" * 1000
        data = client_frame(piece, opcode=1, final=False)
        for _ in range(MAX_PIECES):
            data += client_frame(b"", opcode=0xA)  # an unsolicited pong
            data += client_frame(piece, opcode=0, final=False)
            if len(data) > 9000:
                break
        self.web.raw(data)
        self.assertEqual(self.web.read()[-1], "! message too big; closing")
        self.assertTrue(self.web.closing)
        self.assertEqual(
            self.watcher.read(), ["*** web left (1 here): message too big"]
        )

    def test_a_huge_frame_is_refused_from_its_header(self) -> None:
        header = client_frame(b"", opcode=1)[:1] + bytes([0x80 | 127])
        self.web.raw(header + (20 << 20).to_bytes(8, "big") + b"\0\0\0\0" + b"x" * 100)
        self.assertTrue(self.web.closing)
        self.assertEqual(self.web.read()[-1], "! message too big; closing")

    def test_too_many_pieces(self) -> None:
        data = client_frame(b"a", final=False)
        data += b"".join(client_frame(b"a", 0, False) for _ in range(MAX_PIECES))
        self.web.raw(data)
        self.assertEqual(
            self.web.read()[-1],
            f"! message in more than {MAX_PIECES} pieces; closing",
        )

    def test_a_message_in_a_few_pieces_is_one_line(self) -> None:
        self.web.raw(
            client_frame(b"hel", final=False)
            + client_frame(b"", opcode=0x9)  # a ping between the pieces
            + client_frame(b"lo", opcode=0, final=True)
        )
        self.assertEqual(self.watcher.read(), ["<web> hello"])
        self.assertFalse(self.web.closing)

    def test_a_ping_flood_is_excess_flood(self) -> None:
        self.web.raw(b"".join(client_frame(b"p", opcode=0x9) for _ in range(1000)))
        self.assertTrue(self.web.closing)
        self.assertEqual(
            self.web.read()[-1],
            "! excess flood: too many WebSocket control frames",
        )

    def test_pongs_go_through_the_send_queue(self) -> None:
        self.web.raw(
            b"".join(client_frame(b"p", opcode=0x9) for _ in range(CONTROL_BURST))
        )
        self.web.read()
        self.assertEqual([op for op, _ in self.web.control].count(0xA), CONTROL_BURST)
        # A peer that does not read: its pongs wait, counted, in the outbox.
        self.web.chat.outbox.pauseProducing()
        self.clock.advance(10)
        self.web.raw(client_frame(b"p" * 125, opcode=0x9))
        self.clock.advance(0)
        self.assertGreater(self.web.chat.outbox.queued, 125)


class InspectorTests(SynchronousTestCase):
    def test_headers_split_anywhere(self) -> None:
        stream = b"".join(client_frame(b"y" * 300) for _ in range(3))
        for cut in range(1, 16):
            inspector = FrameInspector(512, lambda: 0.0)
            verdicts = [
                inspector.feed(stream[i : i + cut]) for i in range(0, len(stream), cut)
            ]
            self.assertEqual(set(verdicts), {None}, cut)
            over = FrameInspector(512, lambda: 0.0)
            big = client_frame(b"z" * 600)
            verdicts = [over.feed(big[i : i + cut]) for i in range(0, len(big), cut)]
            self.assertIn(("message too big", "message too big; closing"), verdicts)

    def test_frames_we_send(self) -> None:
        for size in (0, 125, 126, 65535, 65536):
            frame = text_frame(b"a" * size)
            self.assertEqual(frame[0], 0x81)
            self.assertEqual(
                len(frame) - size, 2 if size < 126 else 4 if size < 65536 else 10
            )
