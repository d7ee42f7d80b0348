"""
Memory follows the live rooms, not every room ever used.

The real ``twistd`` with its history file: one user goes through 600 fresh
rooms, saying 100 lines of 500 bytes in each (the room empties behind
them). The server's RSS, read from /proc, grows by under 10 MiB, and so it
does after a restart on the same file, going through the same rooms again
(each one's past read back when it comes to life).
"""

from __future__ import annotations

from pathlib import Path

from .support.net import free_port
from .support.proc import Twistd, User, rss_kib

ROOMS = 600
LINES = 100
BOUND_KIB = 10 * 1024


def _churn(port: int, nick: str, rooms: range) -> None:
    user = User(port)
    user.until("? Choose a nickname:")
    user.send(nick)
    user.line()  # the welcome
    text = "x" * 500
    for i in rooms:
        user.send(f"/join r{i}")
        user.until(f"*** #r{i} has 1 user: {nick}")
        user.sock.sendall(f"{text}\n".encode() * LINES)
    # Answered once every line before it was handled.
    user.send(f"/join done{nick}")
    user.until(f"*** #done{nick} has 1 user: {nick}")
    user.sock.close()


def _server(tmp_path: Path, port: int) -> Twistd:
    args = [
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
        "--flood-rate",
        "0",
        "--max-recvq",
        "1048576",
        "--db",
        str(tmp_path / "history.sqlite3"),
    ]
    return Twistd(tmp_path, args)


def test_600_rooms_churned_grow_rss_by_under_10_mib(tmp_path: Path) -> None:
    for run in ("first", "after a restart"):
        port = free_port()
        with _server(tmp_path, port) as server:
            server.wait_for_port(port)
            pid = server.process.pid
            # Warm up: the code paths and SQLite's caches are in place.
            _churn(port, "warm", range(ROOMS, ROOMS + 20))
            before = rss_kib(pid)
            _churn(port, "churn", range(ROOMS))
            grown = rss_kib(pid) - before
            print(f"{run}: RSS {before} KiB -> {before + grown} KiB")
            assert grown < BOUND_KIB, f"{run}: RSS grew by {grown} KiB"
