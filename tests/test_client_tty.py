"""
The interactive client in a real terminal (tmux), against the real server:
incoming messages appear above a half-typed line, which stays intact with
the cursor after it; editing is by character; Ctrl-D restores the terminal.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .support.admin import add_account
from .support.net import free_port
from .support.proc import Twistd, User, guest

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0
#: Each terminal gets a tmux server of its own: the last test's may still
#: be on its way out, and a new session on its socket can fail.
_SERVERS = itertools.count()


class Tmux:
    """One tmux server of our own with one 80x24 pane running bash."""

    def __init__(self) -> None:
        self.socket = f"twchat-test-{os.getpid()}-{next(_SERVERS)}"
        self.run(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "80",
            "-y",
            "24",
            "bash --norc --noprofile",
        )

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=True,
        )
        return done.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "t", *(["-l"] if literal else []), *keys)

    def start_client(self, port: int, nick: str) -> None:
        """``python -m twchat.client`` typed into the shell, from the checkout."""
        self.keys(
            f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} "
            f"-m twchat.client --port {port} --nick {nick}",
            "Enter",
        )

    def screen(self) -> list[str]:
        return self.run("capture-pane", "-t", "t", "-p").splitlines()

    def cursor(self) -> tuple[int, int]:
        x, y = self.run("display", "-p", "-t", "t", "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def wait_for(self, check: Callable[[list[str]], bool]) -> list[str]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError("screen never matched:\n" + "\n".join(self.screen()))

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"],
            capture_output=True,
            timeout=WAIT,
            check=False,
        )


@pytest.fixture
def terminal() -> Iterator[Tmux]:
    tmux = Tmux()
    try:
        yield tmux
    finally:
        tmux.close()


@pytest.fixture
def server(twistd: tuple[int, Twistd]) -> int:
    return twistd[0]


def test_messages_never_garble_the_line_being_typed(
    terminal: Tmux, server: int
) -> None:
    command = (
        f"cd {shlex.quote(str(ROOT))} && "
        f"{shlex.quote(sys.executable)} -m twchat.client --port {server} --nick alice; "
        "echo TERMINAL:$(stty -a | grep -o -- '-\\?icanon') "
        "$(stty -a | grep -ow -- '-\\?echo')"
    )
    terminal.keys(command, "Enter")
    terminal.wait_for(lambda s: any("*** Welcome, alice!" in line for line in s))

    terminal.keys("half typed", literal=True)
    bob = guest(server, "bob")
    for text in ("first message", "second message", "third message"):
        bob.send(text)
    # prompt_toolkit prints the lines, then redraws the input line: wait
    # for both.
    screen = terminal.wait_for(
        lambda s: (
            any("<bob> third message" in line for line in s)
            and any(line.rstrip() == "alice> half typed" for line in s)
        )
    )
    rows = {line.rstrip(): i for i, line in enumerate(screen)}
    assert "alice> half typed" in rows, screen
    prompt_row = rows["alice> half typed"]
    for text in ("first message", "second message", "third message"):
        assert rows[f"<bob> {text}"] < prompt_row  # above the input line
    expected = (len("alice> half typed"), prompt_row)
    deadline = time.monotonic() + WAIT
    while terminal.cursor() != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert terminal.cursor() == expected

    # Editing works by character: backspace removes the whole "é".
    terminal.keys("C-u")
    terminal.keys("café", literal=True)
    terminal.keys("BSpace")
    terminal.wait_for(lambda s: any(line.rstrip() == "alice> caf" for line in s))
    terminal.keys("Enter")
    assert bob.until("<alice> caf")
    # Our line shows once, as the room sees it; the input line is empty.
    screen = terminal.wait_for(
        lambda s: any(line.rstrip() == "<alice> caf" for line in s)
    )
    assert [line.rstrip() for line in screen].count("<alice> caf") == 1, screen
    assert not any(line.rstrip() == "alice> caf" for line in screen), screen

    # Up walks the history; Ctrl-C clears a line that has text.
    terminal.keys("Up")
    terminal.wait_for(lambda s: s[terminal.cursor()[1]].rstrip() == "alice> caf")
    terminal.keys("C-c")
    terminal.wait_for(lambda s: s[terminal.cursor()[1]].rstrip() == "alice>")

    terminal.keys("C-d")
    screen = terminal.wait_for(
        lambda s: any(line.startswith("TERMINAL:") for line in s)
    )
    status = next(line for line in screen if line.startswith("TERMINAL:"))
    assert status.split() == ["TERMINAL:icanon", "echo"], screen  # restored
    assert bob.until("*** alice left (1 here)")


def test_a_password_is_typed_unseen_kept_out_of_history_and_reused(
    terminal: Tmux, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    add_account(["--db", str(db)], "alice", "alice-pass")
    port = free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1", "--db", str(db)]

    def on_screen(text: str) -> Callable[[list[str]], bool]:
        return lambda s: any(text in line for line in s)

    def typing_line() -> str:
        return terminal.screen()[terminal.cursor()[1]].rstrip()

    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        terminal.start_client(port, "alice")
        terminal.wait_for(on_screen("? Password for alice:"))
        terminal.wait_for(lambda s: typing_line() == "password>")
        terminal.keys("wrong-pass", literal=True)
        # Stars, not the password, while it is typed.
        terminal.wait_for(lambda s: typing_line() == "password> " + "*" * 10)
        terminal.keys("Enter")
        terminal.wait_for(on_screen("! wrong password for alice"))
        # Asked for the password again, not a nickname.
        terminal.wait_for(lambda s: typing_line() == "password>")
        terminal.keys("alice-pass", literal=True)
        terminal.keys("Enter")
        terminal.wait_for(on_screen("*** Welcome, alice!"))
        terminal.wait_for(lambda s: typing_line() == "alice>")
        terminal.keys("/password alice-pass alice-pass-2", literal=True)
        terminal.keys("Enter")
        terminal.wait_for(on_screen("*** your password has been changed"))
        # Up recalls the nickname typed, never a password, nor a command
        # that holds one.
        recalled = []
        for _ in range(3):
            terminal.keys("Up")
            recalled.append(typing_line())
        assert all("pass" not in line for line in recalled), recalled
        terminal.keys("C-u")
        screen = "\n".join(terminal.screen())
        assert "wrong-pass" not in screen
        assert "alice-pass" not in screen
        server.process.kill()
        assert server.stopped() != 0
        # While away: our nickname stays on the prompt, with a countdown
        # that moves.
        waiting = re.compile(r"^alice \(reconnecting in (\d+) s\)>$")
        terminal.wait_for(lambda s: bool(waiting.match(typing_line())))
        first = waiting.match(typing_line())
        assert first is not None
        terminal.wait_for(
            lambda s: (
                (found := waiting.match(typing_line())) is not None
                and found.group(1) != first.group(1)
            )
        )
    with Twistd(tmp_path, args) as server:
        # The client comes back by itself and logs in with the password
        # it was last told is the account's.
        server.wait_for_port(port)
        terminal.wait_for(
            lambda s: sum("*** Welcome, alice!" in line for line in s) == 2
        )
        assert not any("Password for alice" in line for line in terminal.screen()[-3:])
        terminal.keys("C-d")


def test_after_a_restart_the_client_is_back_in_its_room_with_no_line_twice(
    terminal: Tmux, tmp_path: Path
) -> None:
    port = free_port()
    args = [
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
        "--db",
        str(tmp_path / "state.sqlite3"),
    ]

    def shown(text: str) -> int:
        return sum(text in line for line in terminal.screen())

    def bob_in_games() -> User:
        bob = guest(port, "bob")
        bob.send("/join games")
        while not bob.line().startswith("*** #games has "):
            pass  # the roll call: alice may or may not be back yet
        return bob

    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        terminal.start_client(port, "alice")
        terminal.wait_for(lambda s: any("*** Welcome, alice!" in line for line in s))
        terminal.keys("/join games", "Enter")
        terminal.wait_for(lambda s: any("*** #games has 1 user" in line for line in s))
        bob = bob_in_games()
        bob.send("before the restart")
        terminal.wait_for(lambda s: shown("<bob> before the restart") == 1)
        server.process.send_signal(signal.SIGTERM)
        assert server.stopped() == 0
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        bob = bob_in_games()
        bob.send("while alice was away")
        terminal.wait_for(lambda s: shown("<bob> while alice was away") == 1)
        bob.send("after she came back")
        terminal.wait_for(lambda s: shown("<bob> after she came back") == 1)
        terminal.keys("/who", "Enter")
        terminal.wait_for(lambda s: shown("*** #games has 2 users: alice, bob") >= 1)
        assert shown("<bob> before the restart") == 1
        assert shown("<bob> while alice was away") == 1
        assert not any(line.startswith("@") for line in terminal.screen())
        terminal.keys("C-d")


def test_tab_completes_names_and_commands(terminal: Tmux, server: int) -> None:
    def typing_line() -> str:
        return terminal.screen()[terminal.cursor()[1]].rstrip()

    bob = guest(server, "bobby")
    terminal.start_client(server, "alice")
    terminal.wait_for(lambda s: typing_line() == "alice>")
    bella = guest(server, "bella")
    bella.send("anyone?")
    bob.send("hi")
    assert bob.until("<bella> anyone?")
    terminal.wait_for(lambda s: any("<bobby> hi" in line for line in s))
    # Who spoke last first; Tab again, the next.
    terminal.keys("b", "Tab")
    terminal.wait_for(lambda s: typing_line() == "alice> bobby:")
    terminal.keys("Tab")
    terminal.wait_for(lambda s: typing_line() == "alice> bella:")
    terminal.keys("how are you?", "Enter")
    assert bella.until("<alice> bella: how are you?")
    terminal.keys("/wh", "Tab")
    terminal.wait_for(lambda s: typing_line() == "alice> /who")
    terminal.keys("Tab")
    terminal.wait_for(lambda s: typing_line() == "alice> /whois")
    terminal.keys("bo", "Tab")  # typing on takes the one chosen
    terminal.wait_for(lambda s: typing_line() == "alice> /whois bobby")
    terminal.keys("Enter")
    terminal.wait_for(lambda s: any("*** bobby is in #lobby" in line for line in s))
