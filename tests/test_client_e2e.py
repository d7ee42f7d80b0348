"""``python -m twchat.client`` piped, against the real ``twistd -n chat``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.certificates import make_certificate
from .support.net import free_port
from .support.proc import Twistd, User, run

CLIENT_TIMEOUT = 30


def client(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run(
        sys.executable,
        "-m",
        "twchat.client",
        *args,
        stdin=stdin,
        timeout=CLIENT_TIMEOUT,
    )


@pytest.fixture
def server(twistd: tuple[int, Twistd]) -> int:
    return twistd[0]


def _watcher(port: int) -> User:
    watcher = User(port)
    watcher.until("? Choose a nickname:")
    watcher.send("watcher")
    watcher.line()
    return watcher


def test_piped_lines_arrive_in_order_and_the_client_exits_0(server: int) -> None:
    watcher = _watcher(server)
    lines = [f"line {i} ☕" for i in range(15)]  # past the flood burst: paced
    done = client("--port", str(server), stdin="bot\n" + "\n".join(lines) + "\n/quit\n")
    assert done.returncode == 0, done.stderr
    assert "*** Welcome, bot!" in done.stdout
    assert done.stdout.rstrip().endswith("*** Goodbye!")
    assert "\x1b" not in done.stdout  # no escape codes in pipe mode
    seen = watcher.until("*** bot left (1 here)")
    assert [line for line in seen if line.startswith("<bot>")] == [
        f"<bot> {line}" for line in lines
    ]


def test_nick_option_and_no_trailing_quit(server: int) -> None:
    watcher = _watcher(server)
    done = client("--port", str(server), "--nick", "cron", stdin="backup done\n")
    assert done.returncode == 0, done.stderr
    assert watcher.until("<cron> backup done")


def test_refused_nickname_exits_2(server: int) -> None:
    done = client("--port", str(server), stdin="9lives\nhello\n")
    assert done.returncode == 2
    assert "! nickname must not start with a digit or '-'" in done.stdout


def test_connection_refused_exits_1() -> None:
    done = client("--port", str(free_port()), stdin="bot\n")
    assert done.returncode == 1
    assert "could not connect to localhost:" in done.stdout
    assert "refused" in done.stdout


def test_server_full_exits_1(tmp_path: Path) -> None:
    port = free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1", "--max-clients", "1"]
    with Twistd(tmp_path, args) as twistd:
        twistd.wait_for_port(port)
        time.sleep(0.5)  # the port probe's connection is gone
        watcher = _watcher(port)  # the one place there is
        done = client("--port", str(port), stdin="bot\n")
        watcher.sock.close()
    assert done.returncode == 1
    assert "! server is full (1 users); try again later" in done.stdout


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    key, cert = make_certificate(tmp_path)
    _, other = make_certificate(tmp_path, "other", host="otherhost")
    port = free_port()
    args = ["--port", f"ssl:{port}:privateKey={key}:certKey={cert}:interface=127.0.0.1"]
    with Twistd(tmp_path, args) as twistd:
        twistd.wait_for_port(port)
        yield port, cert, other


def test_tls_verified(tls_server: tuple[int, Path, Path]) -> None:
    port, cert, _ = tls_server
    done = client("--port", str(port), "--tls", "--ca", str(cert), stdin="sec\nhi\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "*** Welcome, sec!" in done.stdout


def test_tls_wrong_name_or_untrusted_certificate_refused(
    tls_server: tuple[int, Path, Path],
) -> None:
    port, cert, other = tls_server
    endpoint = f"tcp:host=127.0.0.1:port={port}"
    for args in (
        # The certificate is for localhost and 127.0.0.1, not this name.
        ["--endpoint", endpoint, "--host", "chat.example", "--ca", str(cert)],
        ["--ca", str(other)],  # signed by nobody we trust
    ):
        done = client("--port", str(port), "--tls", *args, stdin="sec\n")
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "-- TLS failed:" in done.stdout
        assert "Welcome" not in done.stdout


def test_tls_insecure_connects(tls_server: tuple[int, Path, Path]) -> None:
    port, _, _ = tls_server
    done = client("--port", str(port), "--tls", "--insecure", stdin="risky\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "*** Welcome, risky!" in done.stdout


def test_the_wrong_wire_is_named_both_ways(
    tls_server: tuple[int, Path, Path], tmp_path: Path
) -> None:
    tls_port, cert, _ = tls_server
    # Plain lines to a TLS port: the server hangs up without a line.
    done = client("--port", str(tls_port), stdin="sec\n")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip().splitlines() == [
        "-- the server closed the connection without a word: "
        "is it a twchat server? (one that speaks TLS needs --tls)"
    ]
    # TLS to a plain port (a server of its own: not the TLS one's state file).
    plain, port = tmp_path / "plain", free_port()
    plain.mkdir()
    with Twistd(plain, ["--port", f"tcp:{port}:interface=127.0.0.1"]) as twistd:
        twistd.wait_for_port(port)
        done = client("--port", str(port), "--tls", "--ca", str(cert), stdin="sec\n")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip().splitlines() == [
        "-- TLS failed: the server does not speak TLS on this port "
        "(wrong version number)"
    ]


def test_help_documents_every_option() -> None:
    done = client("--help")
    for option in [
        "--host",
        "--port",
        "--endpoint",
        "--nick",
        "--tls",
        "--ca",
        "--insecure",
        "--plain",
        "--no-color",
        "--timestamps",
    ]:
        assert option in done.stdout
    text = " ".join(done.stdout.split())
    assert "[default: 1234]" in text
    assert "[default: localhost]" in text


def test_endpoint_option_reaches_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "chat.sock"
    port = free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1", "--port", f"unix:{path}"]
    with Twistd(tmp_path, args) as twistd:
        twistd.wait_for_port(port)
        watcher = _watcher(port)
        done = client("--endpoint", f"unix:path={path}", "--nick", "sock", stdin="hi\n")
        assert done.returncode == 0, done.stdout + done.stderr
        assert watcher.until("<sock> hi")
