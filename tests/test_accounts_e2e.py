"""
Accounts with the real ``twistd`` and the real admin tool: what the state
file (or Redis) holds, restarts, reclaiming a name over plain sockets.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
import redis as redis_py

from twchat.admin import main as admin

from .support.net import free_port
from .support.proc import Twistd, User, logged_in
from .support.redisserver import RedisServer


def _admin(*args: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    status = admin(list(args), stdin=io.StringIO(stdin), out=out)
    return status, out.getvalue()


def _server(tmp_path: Path, port: int, db: Path) -> Twistd:
    return Twistd(
        tmp_path, ["--port", f"tcp:{port}:interface=127.0.0.1", "--db", str(db)]
    )


def test_admin_tool_on_the_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "state.sqlite3"

    def tool(*args: str, stdin: str = "") -> tuple[int, str]:
        return _admin("--db", str(db), *args, stdin=stdin)

    # A path with no state file is a mistake, unless an account is added.
    for mistaken in (("accounts", "list"), ("oper", "alice")):
        assert tool(*mistaken) == (1, "")
        assert capsys.readouterr().err == (
            f"twchat-admin: no state file at {db}: give the server's --db "
            "(the server creates it when it first starts)\n"
        )
        assert not db.exists()
    assert tool("accounts", "add", "alice", stdin="first-pass\n") == (
        0,
        f"created the state file {db}\nalice is registered\n",
    )
    assert tool("accounts", "add", "bob", stdin="bob-pass-1\n") == (
        0,
        "bob is registered\n",
    )
    assert tool("accounts", "remove", "bob")[0] == 0
    assert tool("accounts", "add", "ALICE", stdin="x-pass-long\n")[0] == 1
    assert tool("accounts", "add", "bob", stdin="short\n")[0] == 1
    assert tool("oper", "alice")[0] == 0
    listed = tool("accounts", "list")[1].splitlines()
    assert listed[0].startswith("alice (operator)  registered ")
    assert listed[-1] == "1 account"
    assert tool("accounts", "passwd", "alice", stdin="second-pass\n")[0] == 0
    assert tool("deoper", "alice")[0] == 0
    assert tool("accounts", "remove", "nobody")[0] == 1
    with sqlite3.connect(db) as connection:
        query = "SELECT name, hash, operator FROM accounts"
        rows = connection.execute(query).fetchall()
    assert len(rows) == 1
    name, hashed, operator = rows[0]
    assert (name, operator) == ("alice", 0)
    assert hashed.startswith("$argon2id$")
    assert "pass" not in hashed
    assert tool("accounts", "remove", "alice") == (
        0,
        "alice is no account any more\n",
    )
    # Named in any case, an account is said as it was registered.
    assert tool("accounts", "add", "Carol", stdin="carol-pass\n")[0] == 0
    assert tool("oper", "CAROL") == (0, "Carol is a server operator\n")
    assert tool("deoper", "carol") == (0, "Carol is no operator any more\n")
    assert tool("accounts", "passwd", "cAROL", stdin="carol-pass-2\n") == (
        0,
        "Carol's password is changed\n",
    )
    assert tool("accounts", "remove", "CAROL") == (0, "Carol is no account any more\n")
    assert tool("oper", "carol")[0] == 1


def test_admin_tool_on_redis(redis: RedisServer) -> None:
    url = redis.url
    assert (
        _admin("--redis", url, "accounts", "add", "alice", stdin="first-pass\n")[0] == 0
    )
    assert _admin("--redis", url, "oper", "ALICE") == (
        0,
        "alice is a server operator\n",
    )
    assert _admin("--redis", url, "accounts", "list")[1].startswith("alice (operator)")
    client = redis_py.Redis.from_url(url, decode_responses=True)
    assert str(client.hget("twchat:account:alice", "hash")).startswith("$argon2id$")
    assert _admin("--redis", url, "accounts", "remove", "alice")[0] == 0
    assert _admin("--redis", url, "accounts", "list")[1] == "0 accounts\n"


def test_accounts_outlive_a_restart_and_names_are_reclaimed(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    port = free_port()
    assert (
        _admin("--db", str(db), "accounts", "add", "alice", stdin="alice-pass\n")[0]
        == 0
    )
    with _server(tmp_path, port, db) as server:
        server.wait_for_port(port)
        alice = logged_in(port, "alice", "alice-pass")
        bob = User(port)
        bob.until("? Choose a nickname:")
        bob.send("bob")
        bob.line()
        bob.send("/register bob-secret")
        assert bob.line() == (
            "*** bob is now registered; next time you will be asked for its password"
        )
        alice.line()  # bob joined
        # alice again from another connection: the old one is told and closed.
        again = logged_in(port, "alice", "alice-pass")
        assert alice.line() == (
            "*** alice logged in from another connection; closing this one"
        )
        assert bob.line() == "*** alice left (1 here): logged in elsewhere"
        assert bob.line() == "*** alice joined (2 here)"
        again.send("hello")
        assert bob.line() == "<alice> hello"
        log = "".join(server.log)
    assert "bob-secret" not in log
    assert "alice-pass" not in log
    with _server(tmp_path, port, db) as server:
        server.wait_for_port(port)
        logged_in(port, "bob", "bob-secret")
    with sqlite3.connect(db) as connection:
        hashes = [h for (h,) in connection.execute("SELECT hash FROM accounts")]
        texts = [t for (t,) in connection.execute("SELECT text FROM messages")]
    assert len(hashes) == 2
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any("secret" in t or "pass" in t for t in texts)
