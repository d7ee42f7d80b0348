"""
Moderation through the real ``twistd``: what survives a restart, and a
ban set on one node of a two-node Redis setup holding on the other.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path

from .support.admin import add_account
from .support.cluster import Node
from .support.net import free_port
from .support.proc import Twistd, User, logged_in
from .support.redisserver import RedisServer


def _account(where: list[str], name: str, operator: bool = False) -> None:
    add_account(where, name, f"{name}-secret", operator)


def _login(port: int, name: str) -> User:
    return logged_in(port, name, f"{name}-secret")


def test_founders_operators_bans_and_modes_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    for name in ("olga", "carl", "bob"):
        _account(["--db", str(db)], name)
    port = free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1", "--db", str(db)]
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        olga = _login(port, "olga")
        olga.send("/join den")
        olga.until("*** olga founded #den and is its operator")
        olga.send("/op carl")
        olga.until("*** olga made carl an operator of #den")
        olga.send("/ban account:bob 7d spam")
        olga.until("*** olga banned account:bob from #den for 7d: spam")
        olga.send("/mode +m")
        olga.until("*** olga set mode +m on #den")
        server.process.send_signal(signal.SIGTERM)
        assert server.stopped() == 0
        log = "".join(server.log)
    assert "moderation: olga ban account:bob in #den" in log
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        carl = _login(port, "carl")
        carl.send("/join den")
        carl.until("*** #den has 1 user: carl")
        carl.send("/mode")
        assert carl.until("*** #den modes: +tm")
        carl.send("/bans")
        carl.until("*** 1 ban in #den:")
        # A restart inside half a second still rounds to the whole 7d.
        assert re.fullmatch(
            r"\*\*\*   account:bob by olga, (7d|6d 23h) left: spam", carl.line()
        )
        bob = _login(port, "bob")
        bob.send("/join den")
        assert re.fullmatch(
            r"! you are banned from #den for (7d|6d 23h): spam", bob.line()
        )
        carl.send("/modlog")
        lines = carl.until("*** The last 4 moderation actions:")
        assert lines[-1] == "*** The last 4 moderation actions:"
        assert carl.line().endswith(" #den olga founded")


def test_a_ban_on_one_node_holds_on_the_other(
    nodes: Callable[..., list[Node]], redis: RedisServer
) -> None:
    a, b = nodes(2)
    url = redis.url
    _account(["--redis", url], "olga", operator=True)
    _account(["--redis", url], "bob")
    olga = _login(a.port, "olga")
    bob = _login(b.port, "bob")
    gus = b.guest()
    gus.send("gus")
    gus.until("*** Welcome, gus! #lobby has 3 users: bob, gus, olga")
    # A room ban by account, set on node a, sends bob out on node b.
    olga.send("/join den")
    olga.until("*** olga founded #den and is its operator")
    bob.send("/join den")
    bob.until("*** #den has 2 users: bob, olga")
    olga.send("/ban bob 1h go away")
    bob.until("! you are banned from #den for 1h: go away")
    bob.until("*** #lobby has 2 users: bob, gus")
    bob.send("/join den")
    refused = bob.line()
    assert refused.startswith("! you are banned from #den for "), refused
    assert refused.endswith(": go away")
    # A server ban by account: bob is disconnected, and cannot log in again.
    olga.send("/gban account:bob")
    olga.until("*** account:bob is banned from this server until lifted")
    bob.until("! you are banned from this server")
    again = User(b.port)
    again.until("? Choose a nickname:")
    again.send("bob")
    again.line()  # the password prompt
    again.send("bob-secret")
    assert again.line() == "! you are banned from this server"
    # An address ban, on the guest's node: the address is everyone's here,
    # but a room's operators are never shut out of it.
    gus.send("/join den")
    gus.until("*** #den has 2 users: gus, olga")
    olga.send("/ban gus")
    gus.until("! you are banned from #den")
    olga.send("hello, still here")
