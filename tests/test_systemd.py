"""
The shipped systemd units (``contrib/systemd``): valid, hardened, and the
server they describe chats through the sockets systemd passes it.

``systemd-socket-activate`` stands in for systemd: it holds the units'
sockets (on loopback, on free ports) and starts the units' ``ExecStart``
on the first connection, passing the sockets as systemd does.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import urllib.request
from pathlib import Path

from .support import WAIT
from .support.net import free_port
from .support.proc import at_prompt, twistd_path

UNITS = Path(__file__).parent.parent / "contrib" / "systemd"


def _values(unit: str, key: str) -> list[str]:
    text = (UNITS / unit).read_text()
    return re.findall(rf"^{key}=(.*)$", text, re.MULTILINE)


def _installed_units(tmp_path: Path) -> list[Path]:
    """The units as installed here: twistd where this checkout has it."""
    paths = []
    for name in ("twchat.service", "twchat.socket"):
        text = (
            (UNITS / name).read_text().replace("/usr/local/bin/twistd", twistd_path())
        )
        path = tmp_path / name
        path.write_text(text)
        paths.append(path)
    return paths


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed (Debian: systemd)"
    return found


def test_the_units_are_valid_and_hardened(tmp_path: Path) -> None:
    paths = _installed_units(tmp_path)
    verify = subprocess.run(
        [_tool("systemd-analyze"), "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr == "", verify.stderr
    security = subprocess.run(
        [_tool("systemd-analyze"), "security", "--offline=yes", str(paths[0])],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert found, security.stdout + security.stderr
    # 0 is locked down, 10 is fully exposed; below 2 systemd calls it OK.
    assert float(found.group(1)) < 2.0, security.stdout
    assert _values("twchat.service", "DynamicUser") == ["yes"]
    assert _values("twchat.service", "ProtectSystem") == ["strict"]
    assert _values("twchat.service", "StateDirectory") == ["twchat"]


def test_chat_through_the_sockets_systemd_passes(tmp_path: Path) -> None:
    listens = _values("twchat.socket", "ListenStream")
    assert len(listens) == 2  # index 0: the line port, index 1: the web port
    ports = [free_port() for _ in listens]
    (command,) = _values("twchat.service", "ExecStart")
    args = shlex.split(
        command.replace("/usr/local/bin/twistd", twistd_path()).replace(
            "${STATE_DIRECTORY}", str(tmp_path)
        )
    )
    (name,) = _values("twchat.socket", "FileDescriptorName")
    activate = [_tool("systemd-socket-activate"), f"--fdname={name}"]
    for port in ports:
        activate.append(f"--listen=127.0.0.1:{port}")
    process = subprocess.Popen(
        [*activate, *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        for port in ports:  # systemd-socket-activate says when each listens
            said = process.stdout.readline().decode()
            assert said.startswith(f"Listening on 127.0.0.1:{port} "), said
        # The sockets are open before the server runs: the first
        # connection waits in them while systemd starts it.
        alice = at_prompt(ports[0])
        alice.send("alice")
        assert alice.line().startswith("*** Welcome, alice!")
        bob = at_prompt(ports[0])
        bob.send("bob")
        assert bob.line().startswith("*** Welcome, bob!")
        assert alice.line() == "*** bob joined (2 here)"
        bob.send("hello through systemd's socket")
        assert alice.line() == "<bob> hello through systemd's socket"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{ports[1]}/", timeout=WAIT
        ) as page:
            assert page.status == 200
            assert b"twchat" in page.read()
        assert (tmp_path / "twchat.sqlite3").exists()  # --db in the state dir
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=WAIT)
    text = output.decode()
    assert "Traceback" not in text, text
    assert f"twchat listening on tcp:127.0.0.1:{ports[0]}" in text, text
    assert process.returncode == 0, text
