"""
The attacks on the web port from issue 13, against the real ``twistd``.

Each checks a number: the server's RSS and CPU seconds (from /proc), how
long until the attacker is closed, and how long another user waits for an
answer meanwhile.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import WAIT
from .support.fakes import client_frame, server_frames
from .support.net import free_port
from .support.proc import Twistd, User, closed_within, cpu_seconds, rss_kib

UPGRADE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    "Origin: http://127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


class WebServer:
    def __init__(self, server: Twistd, port: int, web_port: int) -> None:
        self.server = server
        self.port = port
        self.web_port = web_port
        self.pid = server.process.pid

    def browser(self) -> socket.socket:
        """A raw socket upgraded to a WebSocket (the handshake read)."""
        sock = socket.create_connection(("127.0.0.1", self.web_port), timeout=WAIT)
        sock.sendall(UPGRADE.format(port=self.web_port).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 101"), data
        return sock

    def user(self, nick: str) -> User:
        user = User(self.port)
        user.until("? Choose a nickname:")
        user.send(nick)
        assert user.line().startswith(f"*** Welcome, {nick}!")
        return user

    def answer_time(self, user: User) -> float:
        """Seconds until ``/who`` is answered: what everyone else feels."""
        started = time.monotonic()
        user.send("/who")
        while not user.line().startswith("*** #lobby has"):
            pass
        return time.monotonic() - started


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebServer]:
    port, web_port = free_port(), free_port()
    args = [
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
        "--web",
        f"tcp:{web_port}:interface=127.0.0.1",
        "--web-request-timeout",
        "3",
        "--no-history",
    ]
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        server.wait_for_port(web_port)
        yield WebServer(server, port, web_port)


def test_a_fragmented_20_mib_message_with_pongs_is_cut_at_once(
    web: WebServer,
) -> None:
    other = web.user("other")
    rss, cpu = rss_kib(web.pid), cpu_seconds(web.pid)
    sock = web.browser()
    piece = client_frame(b"x" * 4096, opcode=0, final=False)
    pong = client_frame(b"", opcode=0xA)
    sock.sendall(client_frame(b"x" * 4096, opcode=1, final=False))
    sent = 4096
    started = time.monotonic()
    try:
        while sent < 20 << 20:
            sock.sendall(piece + pong)
            sent += 4096
    except OSError:
        pass  # closed under us, as it should be
    took = closed_within(sock, WAIT)
    assert time.monotonic() - started < 3.0
    assert took < 3.0
    # What sendall accepted includes both kernels' socket buffers (several
    # MiB on loopback): the server's own bound shows in its RSS below.
    assert sent < 20 << 20, "the whole message went through"
    assert rss_kib(web.pid) - rss < 10 * 1024
    assert cpu_seconds(web.pid) - cpu < 1.0
    assert web.answer_time(other) < 0.5
    web.server.wait_for_log("message too big")


def test_a_ping_flood_from_a_peer_that_never_reads(web: WebServer) -> None:
    other = web.user("other")
    rss = rss_kib(web.pid)
    sock = web.browser()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ping = client_frame(b"p" * 125, opcode=0x9)
    started = time.monotonic()
    try:
        for _ in range(200_000):
            sock.sendall(ping * 64)
            if time.monotonic() - started > 10:
                break
    except OSError:
        pass
    assert time.monotonic() - started < 5.0, "never dropped"
    assert rss_kib(web.pid) - rss < 10 * 1024
    assert web.answer_time(other) < 0.5
    web.server.wait_for_log("excess flood")


def test_partial_requests_are_bounded_in_number_and_time(web: WebServer) -> None:
    # One address, many half-sent requests dribbling one header a second.
    socks = []
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", web.web_port), timeout=WAIT)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)
    refused = 0
    for sock in socks[16:]:
        sock.settimeout(WAIT)
        answer = sock.recv(65536)
        if answer.startswith(b"HTTP/1.1 503"):
            refused += 1
    assert refused == 24  # --max-per-ip 16
    started = time.monotonic()
    for _ in range(6):
        for sock in socks[:16]:
            with contextlib.suppress(OSError):
                sock.sendall(b"X-Dribble: 1\r\n")
        time.sleep(0.5)  # the attack's pace, not a wait for the server
    durations = [closed_within(sock, WAIT) for sock in socks[:16]]
    assert time.monotonic() - started < 3.0 + 2.0  # --web-request-timeout 3
    assert max(durations) < 5.0
    # The chat port was never starved.
    web.user("afterwards")
    for sock in socks:
        sock.close()


def test_a_huge_upload_is_refused_before_it_is_stored(web: WebServer) -> None:
    rss = rss_kib(web.pid)
    sock = socket.create_connection(("127.0.0.1", web.web_port), timeout=WAIT)
    sock.sendall(
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\n"
    )
    started = time.monotonic()
    sent = 0
    try:
        while sent < 200 << 20:
            sock.sendall(b"x" * 65536)
            sent += 65536
    except OSError:
        pass
    answer = b""
    with contextlib.suppress(OSError):
        answer = sock.recv(65536)
    assert time.monotonic() - started < 3.0
    assert sent < 50 << 20
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer
    assert rss_kib(web.pid) - rss < 10 * 1024


def test_the_413_is_readable(web: WebServer) -> None:
    sock = socket.create_connection(("127.0.0.1", web.web_port), timeout=WAIT)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\n")
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert answer.endswith(b"this server takes no uploads\n")


def test_a_chat_line_over_websocket_is_framed_and_delivered(web: WebServer) -> None:
    other = web.user("other")
    sock = web.browser()
    sock.sendall(client_frame(b"webby"))
    sock.sendall(client_frame(b"hello from a raw socket"))
    assert other.line() == "*** webby joined (2 here)"
    assert other.line() == "<webby> hello from a raw socket"
    other.send("and back")
    data = b""
    while b"and back" not in data:
        chunk = sock.recv(65536)
        assert chunk
        data += chunk
    assert b'"text":"and back"' in b"".join(p for _, p in server_frames(data))


def test_sighup_without_tls_changes_nothing(web: WebServer) -> None:
    user = web.user("stays")
    web.server.process.send_signal(signal.SIGHUP)
    web.server.wait_for_log("SIGHUP: nothing to reload (no TLS port, no --motd)")
    assert web.server.process.poll() is None
    assert web.answer_time(user) < 1.0


def test_a_second_signal_cuts_the_grace_short(tmp_path: Path) -> None:
    port = free_port()
    args = [
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
        "--shutdown-grace",
        "30",
        "--flood-rate",
        "0",
        "--max-recvq",
        "1048576",
        "--max-sendq",
        "67108864",
        "--no-history",
    ]
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        stubborn = User(port)
        stubborn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stubborn.until("? Choose a nickname:")
        stubborn.send("stubborn")
        stubborn.line()
        talker = User(port)
        talker.until("? Choose a nickname:")
        talker.send("talker")
        talker.line()
        # Far more than the kernel's buffers hold: the stubborn reader's
        # goodbye will wait behind megabytes it never reads.
        line = b"x" * 500 + b"\n"
        for _ in range(40):
            talker.sock.sendall(line * 1000)
        talker.send("/who")
        assert talker.line().startswith("*** #lobby has 2 users")
        server.process.send_signal(signal.SIGINT)
        server.wait_for_log("shutting down: closing 2 connections")
        time.sleep(1.0)
        assert server.process.poll() is None, "the grace should still run"
        started = time.monotonic()
        server.process.send_signal(signal.SIGINT)
        assert server.stopped() == 0
        assert time.monotonic() - started < 5.0
        log = "".join(server.log)
        assert "asked again to stop" in log
        assert "Traceback" not in log
        assert "ReactorNotRunning" not in log
