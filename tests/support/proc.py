"""The real ``twistd -n chat`` in a subprocess, and blocking socket users."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import WAIT


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def rss_kib(pid: int) -> int:
    """A process's resident memory now, in KiB (from /proc)."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """The most resident memory a process has had, in KiB."""
    return _status_kib(pid, "VmHWM")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def run(
    *args: str, cwd: Path | None = None, stdin: str = "", timeout: float = WAIT
) -> subprocess.CompletedProcess[str]:
    """A command to its end, its output captured as text (never raises)."""
    return subprocess.run(
        list(args),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def twistd_path() -> str:
    beside = Path(sys.executable).with_name("twistd")
    found = str(beside) if beside.exists() else shutil.which("twistd")
    assert found, "twistd is not installed"
    return found


class User:
    """A blocking socket user; every read gives up after WAIT."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
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


def at_prompt(port: int) -> User:
    """A connection whose greeting is read: the next line is a nickname."""
    user = User(port)
    user.until("? Choose a nickname:")
    return user


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Read and drop until the server closes; how long that took."""
    started = time.monotonic()
    sock.settimeout(seconds)
    with contextlib.suppress(ConnectionResetError):
        while sock.recv(65536):
            pass
    return time.monotonic() - started


def guest(port: int, nick: str) -> User:
    """A guest called ``nick``, the welcome read."""
    user = at_prompt(port)
    user.send(nick)
    welcome = user.line()
    assert welcome.startswith(f"*** Welcome, {nick}!"), welcome
    return user


def registered(port: int, nick: str, password: str) -> User:
    """A guest called ``nick`` who made the name an account with ``password``."""
    user = at_prompt(port)
    user.send(nick)
    welcome = user.line()
    assert welcome.startswith(f"*** Welcome, {nick}!"), welcome
    user.send(f"/register {password}")
    assert user.line().startswith(f"*** {nick} is now registered")
    return user


def logged_in(port: int, nick: str, password: str) -> User:
    """A connection logged in to the account ``nick``, its welcome read."""
    user = at_prompt(port)
    user.send(nick)
    assert user.line() == f"? Password for {nick}:"
    user.send(password)
    welcome = user.line()
    assert welcome.startswith(f"*** Welcome, {nick}!"), welcome
    return user


class Twistd:
    """The real ``twistd -n chat`` in a subprocess, its log collected."""

    def __init__(
        self, cwd: Path, args: list[str], twistd_args: tuple[str, ...] = ()
    ) -> None:
        self.process = subprocess.Popen(
            [twistd_path(), *twistd_args, "-n", "--pidfile=", "chat", *args],
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
        self.process.wait(WAIT)
        self._reader.join(WAIT)

    def wait_for_port(self, port: int) -> None:
        """
        Until the server listens on ``port`` and has let go of the probe:
        a probe it still counted would take a slot from the test's own
        connections (per-address limits).
        """
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "".join(self.log)
            try:
                probe = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                time.sleep(0.05)
                continue
            with probe:
                # Our end first; the server's end once it has seen ours.
                probe.shutdown(socket.SHUT_WR)
                closed_within(probe, WAIT)
            return
        raise TimeoutError(f"twistd did not listen on {port}")

    def wait_for_log(self, text: str) -> str:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for line in self.log:
                if text in line:
                    return line
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not in the log:\n{''.join(self.log)}")

    def stopped(self) -> int:
        """Exit status, once the process has ended and its log is read."""
        status = self.process.wait(WAIT)
        self._reader.join(WAIT)
        return status
