"""The real ``twistd -n chat`` command, driven from plain sockets."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from .support.net import free_port
from .support.proc import Twistd, User, guest


def test_chat_through_twistd_and_stop_with_sigterm(
    twistd: tuple[int, Twistd],
) -> None:
    port, server = twistd
    process = server.process
    # _wait_for_port's probe connected and left; the server must shrug it off.
    alice = User(port)
    assert alice.until("? Choose a nickname:")[0].startswith("*** Welcome to twchat!")
    alice.send("alice")
    assert alice.line() == "*** Welcome, alice! #lobby has 1 user: alice"
    bob = User(port)
    bob.until("? Choose a nickname:")
    bob.send("Alice")
    assert bob.line() == "! nickname Alice is already taken"
    bob.until("? Choose a nickname:")
    bob.send("bob")
    assert bob.line() == "*** Welcome, bob! #lobby has 2 users: alice, bob"
    assert alice.line() == "*** bob joined (2 here)"

    bob.send("hi alice, café ☕")
    assert alice.line() == "<bob> hi alice, café ☕"
    alice.send("/who")
    assert alice.line() == "*** #lobby has 2 users: alice, bob"

    process.send_signal(signal.SIGTERM)
    assert alice.line() == "*** Server is shutting down. Bye!"
    assert bob.line() == "*** Server is shutting down. Bye!"
    assert alice.at_eof()
    assert bob.at_eof()
    assert server.stopped() == 0
    log = "".join(server.log)
    assert f"twchat listening on tcp:127.0.0.1:{port}" in log
    assert "alice joined from 127.0.0.1" in log
    assert "Traceback" not in log


def test_sigint_also_stops_cleanly(
    twistd: tuple[int, Twistd],
) -> None:
    port, server = twistd
    process = server.process
    carol = guest(port, "carol")
    process.send_signal(signal.SIGINT)
    assert carol.line() == "*** Server is shutting down. Bye!"
    assert server.stopped() == 0


def test_sigterm_under_load_cuts_stalled_clients_and_exits_in_time(
    tmp_path: Path,
) -> None:
    port = free_port()
    args = [
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
        "--shutdown-grace",
        "2",
        "--flood-rate",
        "0",
        "--max-sendq",
        str(64 * 1024 * 1024),
        "--max-recvq",
        str(1024 * 1024),
    ]
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        reader = guest(port, "reader")
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"stalled\n")  # and never reads again
        assert reader.line() == "*** stalled joined (2 here)"
        line = b"x" * 400 + b"\n"
        for _ in range(25):  # 10 MB the stalled client will never take
            reader.sock.sendall(line * 1000)
        time.sleep(0.5)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert reader.until("*** Server is shutting down. Bye!")
        assert server.stopped() == 0
        took = time.monotonic() - started
        assert took < 2 + 3, took
        assert "cutting 1 connections that did not close in time" in "".join(server.log)
        stalled.close()


def test_runs_on_the_asyncio_reactor_too(tmp_path: Path) -> None:
    port = free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1"]
    with Twistd(tmp_path, args, twistd_args=("-r", "asyncio")) as server:
        server.wait_for_port(port)
        assert "AsyncioSelectorReactor" in server.wait_for_log("reactor class")
        alice, bob = User(port), User(port)
        for user, nick in ((alice, "alice"), (bob, "bob")):
            user.until("? Choose a nickname:")
            user.send(nick)
            user.line()
        assert alice.line() == "*** bob joined (2 here)"
        bob.send("on asyncio")
        assert alice.line() == "<bob> on asyncio"
        server.process.send_signal(signal.SIGTERM)
        assert alice.line() == "*** Server is shutting down. Bye!"
        assert server.stopped() == 0
