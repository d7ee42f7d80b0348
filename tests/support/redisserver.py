"""A real redis-server on a random loopback port, persistence off."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from .net import free_port

TIMEOUT = 10.0


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
