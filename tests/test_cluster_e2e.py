"""
Redis mode through the real thing: a real redis-server and two or three
``twistd -r asyncio -n chat --redis ...`` processes, raw sockets on each.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest_twisted
from twisted.internet.threads import deferToThread

from twchat.hub import MAYBE_NOT_SENT, NOT_SENT

from .support.cluster import Node
from .support.net import free_port
from .support.proc import Twistd, User, at_prompt, twistd_path
from .support.redisserver import RedisServer
from .support.web import ws_join


def chat_lines(user: User, count: int) -> list[str]:
    """The next ``count`` chat lines (``<nick> text``), skipping notices."""
    seen: list[str] = []
    while len(seen) < count:
        line = user.line()
        if line.startswith("<"):
            seen.append(line)
    return seen


def test_one_order_for_every_user_on_every_node(
    nodes: Callable[..., list[Node]],
) -> None:
    a, b = nodes(2)
    watch_a, watch_b = a.user("watcher_a"), b.user("watcher_b")
    senders = {
        "sa1": a.user("sa1"),
        "sa2": a.user("sa2"),
        "sb1": b.user("sb1"),
        "sb2": b.user("sb2"),
    }
    per_sender = 50
    for nick, user in senders.items():
        user.sock.sendall(
            "".join(f"{nick} line {i}\n" for i in range(per_sender)).encode()
        )
    total = per_sender * len(senders)
    order = chat_lines(watch_a, total)
    assert chat_lines(watch_b, total) == order
    for nick, user in senders.items():
        mine = [f"<{nick}> {nick} line {i}" for i in range(per_sender)]
        assert [line for line in order if line.startswith(f"<{nick}>")] == mine
        others = [line for line in order if not line.startswith(f"<{nick}>")]
        assert chat_lines(user, total - per_sender) == others


def test_who_rooms_nicknames_and_private_messages_span_nodes(
    nodes: Callable[..., list[Node]],
) -> None:
    a, b = nodes(2)
    alice = a.user("alice")
    bob = b.user("bob")
    assert alice.line() == "*** bob joined (2 here)"
    alice.send("/who")
    assert alice.line() == "*** #lobby has 2 users: alice, bob"

    # A nickname held on one node is refused on the other, in any case.
    taken = b.guest()
    taken.send("ALICE")
    assert taken.line() == "! nickname ALICE is already taken"
    assert taken.line() == "? Choose a nickname:"
    bob.send("/nick Alice")
    assert bob.line() == "! nickname Alice is already taken"

    bob.send("/msg alice psst")
    assert bob.line() == "-> *alice* psst"
    assert alice.line() == "*bob* psst"
    alice.send("/msg nobody hello")
    assert alice.line() == "! no such user: nobody"

    bob.send("/join games")
    assert bob.line() == "*** #games has 1 user: bob"
    assert alice.line() == "*** bob left for #games (1 here)"
    bob.send("/topic dice only")
    assert bob.line() == "*** bob set the topic of #games: dice only"
    alice.send("/rooms")
    assert alice.until("***   #lobby (1)") == [
        "*** 2 rooms:",
        "***   #games (1): dice only",
        "***   #lobby (1)",
    ]
    alice.send("/who games")
    assert alice.line() == "*** #games has 1 user: bob"
    alice.send("/join games")
    assert alice.line() == "*** #games has 2 users: alice, bob"
    assert alice.line() == "*** Topic of #games: dice only"
    assert re.fullmatch(
        r"\[\d\d:\d\d\] \*\*\* bob set the topic of #games: dice only", alice.line()
    )
    assert bob.line() == "*** alice joined from #lobby (2 here)"

    bob.send("/nick robert")
    assert bob.line() == "*** bob is now known as robert"
    assert alice.line() == "*** bob is now known as robert"
    bob.send("/nick bob")
    assert bob.line() == "*** robert is now known as bob"
    assert alice.line() == "*** robert is now known as bob"

    # Leaving frees the name everywhere.
    alice.send("/quit")
    assert alice.until("*** Goodbye!")
    assert bob.line() == "*** alice left (1 here)"
    taken.send("alice")
    assert taken.line().startswith("*** Welcome, alice! #lobby has 1 user")


def test_history_is_the_same_on_every_node(
    nodes: Callable[..., list[Node]],
) -> None:
    a, b = nodes(2)
    alice = a.user("alice")
    watcher = b.user("watcher")
    for i in range(3):
        alice.send(f"remember {i}")
    alice.send("/me waves")
    assert watcher.until("* alice waves")[-4] == "<alice> remember 0"
    late = b.user("late")
    replay = [late.line() for _ in range(4)]
    assert [re.sub(r"^\[\d\d:\d\d\] ", "", line) for line in replay] == [
        "<alice> remember 0",
        "<alice> remember 1",
        "<alice> remember 2",
        "* alice waves",
    ]
    watcher.send("/history 2")
    assert watcher.until(replay[3])[-2:] == [replay[2], replay[3]]
    alice.send("/history 1")
    assert alice.until(replay[3])[-1] == replay[3]


def test_a_killed_node_s_users_leave_everywhere_within_the_ttl(
    nodes: Callable[..., list[Node]],
) -> None:
    a, b, c = nodes(3)
    alice, bob = a.user("alice"), b.user("bob")
    c.user("carol")
    assert alice.until("*** carol joined (3 here)")
    assert bob.until("*** carol joined (3 here)")
    c.process.process.kill()  # SIGKILL: no goodbye, no cleanup
    killed = time.monotonic()
    gone = "*** carol left (2 here): their server stopped answering"
    alice.sock.settimeout(20)
    bob.sock.settimeout(20)
    assert alice.until(gone)[-1] == gone
    assert bob.until(gone)[-1] == gone
    took = time.monotonic() - killed
    assert took <= 15.0, f"carol left after {took:.1f} s"
    bob.send("/who")
    assert bob.line() == "*** #lobby has 2 users: alice, bob"
    a.user("carol")  # the name is free again
    assert bob.line() == "*** carol joined (3 here)"


def test_redis_restart_mid_traffic(
    nodes: Callable[..., list[Node]], redis: RedisServer
) -> None:
    a, b = nodes(2)
    carol = a.user("carol")
    bob = b.user("bob")
    bob.sock.settimeout(30)
    carol.sock.settimeout(30)
    sent: list[tuple[float, int]] = []
    stop = threading.Event()

    def talk() -> None:
        i = 0
        while not stop.is_set():
            carol.send(f"c {i}")
            sent.append((time.monotonic(), i))
            i += 1
            time.sleep(0.02)

    talker = threading.Thread(target=talk)
    talker.start()
    try:
        time.sleep(1.0)
        redis.stop()
        a.process.wait_for_log("lost contact with Redis")
        b.process.wait_for_log("lost contact with Redis")
        time.sleep(1.0)
        redis.start()
        a.process.wait_for_log("is back after")
        b.process.wait_for_log("is back after")
        recovered = time.monotonic()
        time.sleep(1.5)
    finally:
        stop.set()
        talker.join()
    carol.send("/who")  # the directory was written back
    last = sent[-1][1]
    received = [int(line.split()[-1]) for line in chat_lines_until(bob, last)]
    assert received == sorted(set(received)), "order kept, nothing twice"
    after = [i for t, i in sent if t > recovered + 0.5]
    assert after, "lines were sent after recovery"
    assert set(after) <= set(received), "no line written after recovery is lost"
    told = carol.until("*** #lobby has 2 users: bob, carol")
    assert f"! {NOT_SENT}" in told, "lines typed during the outage got an error"
    # A line told "not sent" was not seen; one on its way when Redis died
    # may have been (its answer died with the connection), and is told so.
    not_sent = told.count(f"! {NOT_SENT}")
    unsure = told.count(f"! {MAYBE_NOT_SENT}")
    assert len(received) + not_sent <= len(sent)
    unaccounted = len(sent) - len(received) - not_sent - unsure
    assert unaccounted <= 5, "only what Redis held unread when it died is lost"
    # Nicknames are still held after the restart.
    taken = b.guest()
    taken.send("carol")
    assert taken.line() == "! nickname carol is already taken"


def chat_lines_until(user: User, last: int) -> list[str]:
    """Carol's lines as ``user`` gets them, up to the one numbered ``last``."""
    seen: list[str] = []
    while True:
        line = user.line()
        if line.startswith("<carol> c "):
            seen.append(line)
            if line == f"<carol> c {last}":
                return seen


def test_redis_mode_needs_the_asyncio_reactor(tmp_path: Path) -> None:
    result = subprocess.run(
        [twistd_path(), "-n", "--pidfile=", "chat", "--redis", "redis://127.0.0.1:1/0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip().splitlines()
    assert output == [
        "twistd chat: --redis needs Twisted's asyncio reactor; "
        "run: twistd -r asyncio -n chat --redis redis://127.0.0.1:1/0 ..."
    ]


def test_a_node_stopped_properly_says_its_users_left_at_once(
    nodes: Callable[..., list[Node]],
) -> None:
    a, b = nodes(2)
    alice = a.user("alice")
    bob = b.user("bob")
    assert alice.line() == "*** bob joined (2 here)"
    b.process.process.terminate()
    assert bob.until("*** Server is shutting down. Bye!")
    stopped = time.monotonic()
    assert alice.line() == "*** bob left (1 here): server shutting down"
    assert time.monotonic() - stopped < 3
    assert b.process.stopped() == 0
    a.user("bob")


def test_a_node_started_before_redis_waits_for_it(
    tmp_path: Path, redis: RedisServer
) -> None:
    redis.stop()
    port = free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1", "--redis", redis.url]
    with Twistd(tmp_path, args, twistd_args=("-r", "asyncio")) as node:
        node.wait_for_port(port)
        node.wait_for_log("cannot reach Redis at")
        assert not [line for line in node.log if "lost contact" in line]
        user = at_prompt(port)
        user.send("alice")
        assert user.line() == (
            "! the chat has lost contact with its Redis server; try again shortly"
        )
        assert user.line() == "? Choose a nickname:"
        redis.start()
        node.wait_for_log("connected to Redis")
        user.send("alice")
        assert user.line() == "*** Welcome, alice! #lobby has 1 user: alice"


def test_a_node_declared_dead_comes_back(nodes: Callable[..., list[Node]]) -> None:
    """Frozen past its TTL: its users left; thawed: they are back, or told."""
    a, b = nodes(2, "--node-ttl", "3")
    alice, carol = a.user("alice"), a.user("carol")
    bob = b.user("bob")
    bob.sock.settimeout(20)
    a.process.process.send_signal(signal.SIGSTOP)
    try:
        gone = "*** alice left (2 here): their server stopped answering"
        assert gone in bob.until(
            "*** carol left (1 here): their server stopped answering"
        )
        bob.send("/msg carol are you there?")
        assert bob.line() == "! no such user: carol"
        alice2 = b.user("alice")  # the name was free, and is taken now
        assert bob.line() == "*** alice joined (2 here)"
    finally:
        a.process.process.send_signal(signal.SIGCONT)
    # carol is announced again; the first alice is told her name is gone.
    assert bob.line() == "*** carol joined (3 here)"
    told = alice.until("*** Goodbye!")
    assert (
        "! your nickname alice was taken on another server while this one had "
        "lost contact with Redis; reconnect with another name"
    ) in told
    bob.send("/who")
    assert bob.line() == "*** #lobby has 3 users: alice, bob, carol"
    bob.send("hello carol")
    assert carol.until("<bob> hello carol")
    assert alice2.until("<bob> hello carol")


@pytest_twisted.ensureDeferred
async def test_a_browser_on_one_node_and_nc_on_another(
    nodes: Callable[..., list[Node]],
) -> None:
    web_port = free_port()
    nodes(1, "--web", f"tcp:{web_port}:interface=127.0.0.1")
    (b,) = nodes(1)
    tcp = await deferToThread(b.user, "tcpuser")
    browser = await ws_join(web_port, "webby")
    assert await deferToThread(tcp.line) == "*** webby joined (2 here)"
    browser.send("hello from the browser")
    assert await deferToThread(tcp.line) == "<webby> hello from the browser"
    tcp.send("hello back")
    said = (await browser.until("chat"))[-1]
    assert said == {
        "type": "chat",
        "nick": "tcpuser",
        "text": "hello back",
        "id": said["id"],
    }
    assert isinstance(said["id"], int)
    assert 0 < said["id"] < 2**53  # exact as a JavaScript number
    tcp.send("/msg webby psst")
    assert (await browser.until("private"))[-1] == {
        "type": "private",
        "sender": "tcpuser",
        "text": "psst",
    }
