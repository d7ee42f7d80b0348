"""
Start-up mistakes through the real ``twistd``, in the foreground and as a
daemon: exit status 1, one line on the terminal naming the option, no
traceback, nothing left listening.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest

import twchat

from .support.net import free_port
from .support.proc import run, twistd_path


def _start(cwd: Path, args: list[str], daemon: bool) -> CompletedProcess[str]:
    mode = ["--pidfile", "twistd.pid", "--logfile", "twistd.log"] if daemon else ["-n"]
    return run(twistd_path(), *mode, "chat", "--db", "state.sqlite3", *args, cwd=cwd)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


@pytest.mark.parametrize("daemon", [False, True], ids=["foreground", "daemon"])
@pytest.mark.parametrize(
    "case",
    ["busy", "range", "clash", "certificate", "config", "web-endpoint"],
)
def test_a_startup_mistake_is_one_line_and_exit_1(
    tmp_path: Path, busy_port: int, case: str, daemon: bool
) -> None:
    free = free_port()
    (tmp_path / "key.pem").write_text("not a key\n")
    (tmp_path / "chat.toml").write_text("max-clients = 10\nmax-cleints = 20\n")
    args, expected = {
        "busy": (
            ["--port", f"tcp:{busy_port}:interface=127.0.0.1"],
            f"--port tcp:{busy_port}:interface=127.0.0.1: port {busy_port} on "
            "127.0.0.1 is in use by another program",
        ),
        "range": (["--port", "99999"], "--port tcp:99999: port 99999 is not 0-65535"),
        "clash": (
            ["--port", str(free), "--web", str(free)],
            f"--web tcp:{free}: --port tcp:{free} already listens on port {free}",
        ),
        "certificate": (
            ["--port", "tcp:0", "--web", "ssl:0:privateKey=key.pem"],
            "--web ssl:0:privateKey=key.pem: not a PEM key or certificate",
        ),
        "config": (
            ["--config", "chat.toml"],
            "--config chat.toml: unknown key 'max-cleints'",
        ),
        "web-endpoint": (["--port", "tcp:0", "--web", "abc"], "--web abc: unknown"),
    }[case]
    started = _start(tmp_path, args, daemon)
    assert started.returncode == 1, started
    assert "Traceback" not in started.stdout + started.stderr
    assert started.stdout == ""
    assert started.stderr.count("\n") == 1, started.stderr
    assert started.stderr.startswith(f"twistd chat: {expected}"), started.stderr
    assert not (tmp_path / "twistd.pid").exists()


def test_version_of_the_server_and_the_client(tmp_path: Path) -> None:
    server = run(twistd_path(), "-n", "chat", "--version", cwd=tmp_path)
    client = run(sys.executable, "-m", "twchat.client", "--version")
    for done, program in ((server, "twistd chat"), (client, "python -m twchat.client")):
        assert done.returncode == 0, done
        assert done.stdout.startswith(f"{program} (twchat) {twchat.__version__} ")
    usage = run(sys.executable, "-m", "twchat.client", "--help").stdout
    assert usage.startswith("Usage: python -m twchat.client ")
