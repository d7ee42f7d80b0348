"""The real ``twistd -n chat`` command, driven from plain sockets."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .netsupport import free_port

TIMEOUT = 10.0


def _twistd() -> str:
    beside = Path(sys.executable).with_name("twistd")
    found = str(beside) if beside.exists() else shutil.which("twistd")
    assert found, "twistd is not installed"
    return found


class User:
    """A blocking socket user; every read gives up after TIMEOUT."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError(self.buffer)
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode()

    def until(self, wanted: str) -> list[str]:
        seen = [self.line()]
        while seen[-1] != wanted:
            seen.append(self.line())
        return seen

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def at_eof(self) -> bool:
        return self.sock.recv(4096) == b"" and not self.buffer


class Twistd:
    """The real ``twistd -n chat`` in a subprocess, its log collected."""

    def __init__(self, cwd: Path, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [_twistd(), "-n", "--pidfile=", "chat", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line.decode("utf-8", "replace"))

    def __enter__(self) -> Twistd:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)

    def wait_for_port(self, port: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "".join(self.log)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"twistd did not listen on {port}")

    def wait_for_log(self, text: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for line in self.log:
                if text in line:
                    return line
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not in the log:\n{''.join(self.log)}")

    def stopped(self) -> int:
        """Exit status, once the process has ended and its log is read."""
        status = self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        return status


@pytest.fixture
def twistd(tmp_path: Path) -> Iterator[tuple[int, Twistd]]:
    port = free_port()
    with Twistd(tmp_path, ["--port", f"tcp:{port}:interface=127.0.0.1"]) as server:
        server.wait_for_port(port)
        yield port, server


def test_chat_through_twistd_and_stop_with_sigterm(
    twistd: tuple[int, Twistd],
) -> None:
    port, server = twistd
    process = server.process
    # _wait_for_port's probe connected and left; the server must shrug it off.
    alice = User(port)
    assert alice.until("? Choose a nickname:")[0].startswith("*** Welcome to twchat!")
    alice.send("alice")
    assert alice.line() == "*** Welcome, alice! 1 user online: alice"
    bob = User(port)
    bob.until("? Choose a nickname:")
    bob.send("Alice")
    assert bob.line() == "! nickname Alice is already taken"
    bob.until("? Choose a nickname:")
    bob.send("bob")
    assert bob.line() == "*** Welcome, bob! 2 users online: alice, bob"
    assert alice.line() == "*** bob joined (2 online)"

    bob.send("hi alice, café ☕")
    assert alice.line() == "<bob> hi alice, café ☕"
    alice.send("/who")
    assert alice.line() == "*** 2 users online: alice, bob"

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
    carol = User(port)
    carol.until("? Choose a nickname:")
    carol.send("carol")
    carol.line()
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
        reader = User(port)
        reader.until("? Choose a nickname:")
        reader.send("reader")
        reader.line()
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"stalled\n")  # and never reads again
        assert reader.line() == "*** stalled joined (2 online)"
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
