"""History through the real ``twistd``: restarts, kill -9, an unwritable file."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path

from twchat.history import COMMIT_INTERVAL

from .support.net import free_port
from .support.proc import Twistd, User

_STAMP = r"\[(\d{4}-\d\d-\d\d )?\d\d:\d\d\] "


def _user(port: int, nick: str) -> tuple[User, list[str]]:
    user = User(port)
    user.until("? Choose a nickname:")
    user.send(nick)
    lines = [user.line()]
    return user, lines


def _args(port: int, db: Path, *more: str) -> list[str]:
    return [
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
        "--db",
        str(db),
        "--flood-rate",
        "0",
        *more,
    ]


def test_history_survives_a_restart(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "history.sqlite3"
    with Twistd(tmp_path, _args(port, db)) as server:
        server.wait_for_port(port)
        alice, _ = _user(port, "alice")
        for i in range(5):
            alice.send(f"before restart {i}")
        alice.send("/me waves")
        alice.send("/who")
        alice.line()  # everything before /who has been handled
        server.process.send_signal(signal.SIGTERM)
        assert server.stopped() == 0
    with Twistd(tmp_path, _args(port, db)) as server:
        server.wait_for_port(port)
        bob, _ = _user(port, "bob")
        replay = [bob.line() for _ in range(6)]
        expected = [f"<alice> before restart {i}" for i in range(5)] + ["* alice waves"]
        for line, text in zip(replay, expected, strict=True):
            assert re.fullmatch(_STAMP + re.escape(text), line), line
        bob.send("/history 2")
        assert bob.line().endswith("<alice> before restart 4")
        assert bob.line().endswith("* alice waves")
        # A room's topic is kept with its history.
        bob.send("/join games")
        bob.until("*** #games has 1 user: bob")
        bob.send("/topic chess at eight")
        bob.until("*** bob set the topic of #games: chess at eight")
        server.process.send_signal(signal.SIGTERM)
        assert server.stopped() == 0
    with Twistd(tmp_path, _args(port, db)) as server:
        server.wait_for_port(port)
        carol, _ = _user(port, "carol")
        carol.send("/join games")
        assert carol.until("*** Topic of #games: chess at eight")


def test_kill_9_loses_at_most_the_commit_interval(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "history.sqlite3"
    with Twistd(tmp_path, _args(port, db)) as server:
        server.wait_for_port(port)
        talker, _ = _user(port, "talker")
        watcher, _ = _user(port, "watcher")
        talker.line()  # watcher joined
        # Steady traffic; the watcher seeing line N means the server had
        # accepted it by then.
        seen_by = {}
        for i in range(300):
            talker.send(f"line {i}")
            assert watcher.line() == f"<talker> line {i}"
            seen_by[i] = time.monotonic()
            time.sleep(0.005)
        killed_at = time.monotonic()
        server.process.send_signal(signal.SIGKILL)
        server.stopped()
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        texts = [
            t for (t,) in connection.execute("SELECT text FROM messages ORDER BY seq")
        ]
    # Every line accepted more than a commit interval (plus scheduling
    # slack) before the kill is on disk, in order, once.
    old_enough = [
        i for i in range(300) if seen_by[i] < killed_at - COMMIT_INTERVAL - 0.2
    ]
    assert old_enough, "the test did not run long enough to mean anything"
    assert texts[: len(old_enough)] == [f"line {i}" for i in old_enough]
    assert texts == [f"line {i}" for i in range(len(texts))]
    # And the file opens cleanly for the next server.
    with Twistd(tmp_path, _args(port, db)) as server:
        server.wait_for_port(port)
        late, _ = _user(port, "late")
        assert late.line().startswith("[")


def test_an_unopenable_state_file_is_one_clear_line_at_start(tmp_path: Path) -> None:
    # The file holds the accounts too: a chat that cannot check passwords
    # must not start as if anyone could take any name.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    port = free_port()
    with Twistd(tmp_path, _args(port, blocker / "state.sqlite3")) as server:
        assert server.stopped() == 1
        errors = [line for line in server.log if "cannot open the state file" in line]
        assert len(errors) == 1, server.log
        assert "--db" in errors[0]
        assert not any("Traceback" in line for line in server.log)
