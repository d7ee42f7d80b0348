"""A real redis-server on a random loopback port, persistence off."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .net import free_port

__all__ = ["Monitor", "RedisServer"]

TIMEOUT = 10.0

_markers = itertools.count()


class RedisServer:
    """``redis-server`` in a subprocess; can be stopped and started again."""

    def __init__(self, directory: Path) -> None:
        found = shutil.which("redis-server")
        assert found, "redis-server is not installed (scripts/test installs it)"
        self.binary = found
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.command("PING") == "+PONG":
                return
            time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)
        self.process = None

    def command(self, *words: str) -> str:
        """One command, its first reply line (e.g. '+PONG'); '' if down."""
        request = f"*{len(words)}\r\n" + "".join(
            f"${len(w.encode())}\r\n{w}\r\n" for w in words
        )
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                s.sendall(request.encode())
                return s.makefile("rb").readline().decode().rstrip("\r\n")
        except OSError:
            return ""

    def monitor(self) -> Monitor:
        """From now on, every command Redis carries out (close it after)."""
        return Monitor(self)


class Monitor:
    """The commands a Redis server carries out, as ``MONITOR`` shows them."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._socket = socket.create_connection(("127.0.0.1", server.port), TIMEOUT)
        self._socket.sendall(b"MONITOR\r\n")
        self._file = self._socket.makefile("rb")
        assert self._file.readline() == b"+OK\r\n"
        #: One line per command: ``+TIME [DB ADDRESS] "WORD" "ARG" ...``
        #: (commands run by Lua scripts too, as ``[DB lua]``).
        self.commands: list[str] = []

    def until_now(self) -> list[str]:
        """Every command so far: read up to a marker sent after them."""
        marker = f"twchat-test-marker-{next(_markers)}"
        assert self.server.command("ECHO", marker).startswith("$")
        while True:
            line = self._file.readline().decode(errors="replace")
            assert line, "redis-server closed the monitor"
            if marker in line:
                return self.commands
            self.commands.append(line.rstrip("\r\n"))

    def close(self) -> None:
        self._file.close()
        self._socket.close()
