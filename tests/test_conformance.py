"""
Every transport keeps the same manners: one suite, run over each wire.

These run in memory on a fake clock (TCP lines and the browser's WebSocket,
from the HTTP upgrade on); ``test_conformance_loopback.py`` runs the same
kind of checks over real sockets, TLS included.
"""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from twchat.accounts.logins import Logins
from twchat.accounts.memory import MemoryAccounts
from twchat.config import ChatConfig
from twchat.connection.connection import CLOSE_GRACE, PING_TIMEOUT
from twchat.server import ChatServer

from .support.fakes import WIRES, FakeUser, SyncHasher, make_server, register, room

pytestmark = pytest.mark.parametrize("wire", list(WIRES.values()), ids=list(WIRES))


def _seconds(clock: Clock, n: float) -> None:
    """Let ``n`` seconds pass, a second at a time (the sweep runs each)."""
    for _ in range(int(n)):
        clock.advance(1)


def _users(server: ChatServer, wire: type[FakeUser], *nicks: str) -> list[FakeUser]:
    """The first user on ``wire``, the others on TCP: every pair meets."""
    first, *others = nicks
    users = [register(server, first, wire)]
    users += [register(server, nick) for nick in others]
    for user in users:
        user.read()
    return users


def test_register_chat_and_no_echo(wire: type[FakeUser]) -> None:
    server, _ = make_server()
    (watcher,) = room(server, "watcher")
    user = wire(server)
    assert user.read() == [
        "*** Welcome to twchat! 1 user online.",
        "? Choose a nickname:",
    ]
    user.send("Watcher")
    assert user.read() == [
        "! nickname Watcher is already taken",
        "? Choose a nickname:",
    ]
    user.send("alice")
    assert user.read() == ["*** Welcome, alice! #lobby has 2 users: alice, watcher"]
    assert watcher.read() == ["*** alice joined (2 here)"]
    user.send("hello", "/me waves")
    assert watcher.read() == ["<alice> hello", "* alice waves"]
    assert user.read() == []
    watcher.send("hi alice")
    assert user.read() == ["<watcher> hi alice"]


def test_one_order_for_everyone(wire: type[FakeUser]) -> None:
    server, _ = make_server()
    a, b, c = _users(server, wire, "a", "b", "c")
    for n in range(20):
        a.send(f"a{n}")
        b.send(f"b{n}")
    seen = c.read()
    assert len(seen) == 40
    assert [line for line in seen if line.startswith("<a>")] == [
        f"<a> a{n}" for n in range(20)
    ]
    assert [line for line in b.read() if line.startswith("<a>")] == [
        f"<a> a{n}" for n in range(20)
    ]


def test_over_long_line_and_bad_utf8(wire: type[FakeUser]) -> None:
    server, _ = make_server()
    user, watcher = _users(server, wire, "user", "watcher")
    user.send("x" * 513, b"\xff\xfe", "fine")
    assert user.read() == [
        "! line too long (max 512 bytes); it was not sent",
        "! your line was not valid UTF-8; it was not sent",
    ]
    assert watcher.read() == ["<user> fine"]


def test_a_refused_line_asks_again_what_it_was_to_answer(
    wire: type[FakeUser],
) -> None:
    clock = Clock()
    logins = Logins(MemoryAccounts(), SyncHasher(), clock)
    server = ChatServer(clock, ChatConfig(flood_rate=0), logins=logins)
    server.start()
    owner = register(server, "alice")
    owner.send("/register secret-pass", "/quit")
    newcomer = wire(server)
    newcomer.read()
    newcomer.send("x" * 513, b"\xff")
    assert newcomer.read() == [
        "! line too long (max 512 bytes); it was not sent",
        "? Choose a nickname:",
        "! your line was not valid UTF-8; it was not sent",
        "? Choose a nickname:",
    ]
    newcomer.send("alice", "y" * 513, b"\xff")
    # The password prompt again, not the nickname's: the next line is still
    # the password, and the user is told so.
    assert newcomer.read() == [
        "? Password for alice:",
        "! line too long (max 512 bytes); it was not sent",
        "? Password for alice:",
        "! your line was not valid UTF-8; it was not sent",
        "? Password for alice:",
    ]
    newcomer.send("secret-pass")
    assert newcomer.read()[0] == "*** Welcome, alice! #lobby has 1 user: alice"


def test_server_full_counts_every_transport(wire: type[FakeUser]) -> None:
    server, _ = make_server(max_clients=2)
    room(server, "tcp")
    register(server, "second", wire)
    extra = wire(server) if wire is FakeUser else FakeUser(server)
    assert extra.read() == ["! server is full (2 users); try again later"]
    assert extra.closing


def test_flood_is_paced_not_dropped(wire: type[FakeUser]) -> None:
    server, clock = make_server(flood_rate=2, flood_burst=10)
    flooder, watcher = _users(server, wire, "flooder", "watcher")
    _seconds(clock, 10)  # a full bucket
    flooder.send(*[f"line {i}" for i in range(30)])
    assert len(watcher.read()) == 10
    assert flooder.transport.producerState == "paused"
    _seconds(clock, 10)
    got = watcher.read()
    assert got == [f"<flooder> line {i}" for i in range(10, 30)]
    assert flooder.transport.producerState == "producing"
    assert not flooder.closing


def test_reading_pauses_only_for_lines_that_come_while_one_waits(
    wire: type[FakeUser],
) -> None:
    server, _ = make_server()
    (watcher,) = room(server, "watcher")
    claims: list[Deferred[bool]] = []

    def held_claim(nick: str) -> Deferred[bool]:
        claims.append(Deferred())
        return claims[-1]

    server.hub.backend.claim = held_claim  # type: ignore[method-assign]
    user = wire(server)
    user.read()
    user.send("alice")
    assert len(claims) == 1
    # Waiting for the answer alone costs no pause (and no system calls).
    assert user.transport.producerState == "producing"
    claims[0].callback(True)
    assert user.read()[0].startswith("*** Welcome, alice!")
    assert user.transport.producerState == "producing"
    user.send("/nick bob")
    assert len(claims) == 2
    user.send("said while waiting")
    # A line while one waits: the peer is held back, the line kept.
    assert user.transport.producerState == "paused"
    assert watcher.read() == ["*** alice joined (2 here)"]
    claims[1].callback(True)
    assert watcher.read() == [
        "*** alice is now known as bob",
        "<bob> said while waiting",
    ]
    assert user.transport.producerState == "producing"


def test_excess_flood(wire: type[FakeUser]) -> None:
    server, _ = make_server(flood_rate=2, flood_burst=10, max_recvq=1024)
    flooder, watcher = _users(server, wire, "flooder", "watcher")
    flooder.send(*[f"{i:04}" * 10 for i in range(100)])
    assert flooder.read()[-1] == "! excess flood: more than 1024 bytes unread"
    assert flooder.closing
    assert watcher.read()[-1] == "*** flooder left (1 here): excess flood"


def test_a_long_paste_waits_past_the_idle_and_ping_deadlines(
    wire: type[FakeUser],
) -> None:
    # 200 lines at 2 a second take 95 s: longer than the idle timeout and
    # the keepalive's 75 s. Reading was paused by us, not by the peer.
    server, clock = make_server(flood_rate=2, flood_burst=10, idle_timeout=10)
    paster, watcher = _users(server, wire, "paster", "watcher")
    _seconds(clock, 5)
    paster.send(*[f"line {i}" for i in range(200)])
    got: list[str] = []
    for _ in range(120):
        _seconds(clock, 1)
        watcher.send("")  # an empty line: the watcher is not idle
        got += watcher.read()
        if len(got) >= 200:
            break
    assert PING_TIMEOUT < 95
    assert got == [f"<paster> line {i}" for i in range(200)]
    still_open = not paster.closing
    # Listening again: the idle clock runs from here.
    _seconds(clock, 11)
    assert still_open
    assert paster.closing
    assert paster.read()[-1] == "! idle for 10 seconds; closing"


def test_slow_reader_is_cut_and_others_see_why(wire: type[FakeUser]) -> None:
    server, _ = make_server(max_sendq=300)
    slow, talker, other = _users(server, wire, "slow", "talker", "other")
    slow.chat.outbox.pauseProducing()  # its transport stopped taking bytes
    for i in range(30):
        talker.send(f"message {i}")
    assert other.read() == [f"<talker> message {i}" for i in range(30)] + [
        "*** slow left (2 here): send queue exceeded"
    ]
    assert slow.transport.disconnected


def test_stalled_reader_is_cut_at_the_deadline(wire: type[FakeUser]) -> None:
    server, clock = make_server(sendq_timeout=30)
    slow, talker = _users(server, wire, "slow", "talker")
    slow.chat.outbox.pauseProducing()
    talker.send("are you there?")
    _seconds(clock, 29)
    before = slow.transport.disconnected
    _seconds(clock, 2)
    assert not before
    assert slow.transport.disconnected
    assert talker.read() == ["*** slow left (1 here): send queue exceeded"]


def test_registration_deadline(wire: type[FakeUser]) -> None:
    server, clock = make_server(register_timeout=30)
    silent = wire(server)
    silent.read()
    for _ in range(29):
        silent.raw(b"")
        clock.advance(1)
    assert not silent.closing
    clock.advance(1)
    assert silent.read() == ["! no nickname after 30 seconds; closing"]
    assert silent.closing


def test_a_password_prompt_restarts_the_registration_deadline_once(
    wire: type[FakeUser],
) -> None:
    # The name chosen late, its password still gets the full time; a wrong
    # password asked again does not extend it further.
    clock = Clock()
    logins = Logins(MemoryAccounts(), SyncHasher(), clock)
    config = ChatConfig(flood_rate=0, register_timeout=30)
    server = ChatServer(clock, config, logins=logins)
    server.start()
    owner = register(server, "alice")
    owner.send("/register secret-pass", "/quit")
    late = wire(server)
    late.read()
    clock.advance(25)
    late.send("alice")
    assert late.read() == ["? Password for alice:"]
    clock.advance(20)
    late.send("wrong-pass")
    assert late.read() == ["! wrong password for alice", "? Password for alice:"]
    clock.advance(9)
    assert not late.closing
    clock.advance(1)
    assert late.read() == ["! no password after 30 seconds; closing"]
    assert late.closing


def test_idle_deadline(wire: type[FakeUser]) -> None:
    server, clock = make_server(idle_timeout=60)
    idle, talker = _users(server, wire, "idle", "talker")
    _seconds(clock, 30)
    talker.send("anyone?")
    _seconds(clock, 31)
    assert idle.closing
    assert idle.read()[-1] == "! idle for 60 seconds; closing"
    assert talker.read()[-1] == "*** idle left (1 here): idle timeout"


def test_idle_means_no_line_whatever_else_comes(wire: type[FakeUser]) -> None:
    # A browser answers pings by itself, and a TCP peer can send a byte at a
    # time: neither is the user saying anything, nor may it hold the slot.
    server, clock = make_server(idle_timeout=60)
    idle, talker = _users(server, wire, "idle", "talker")
    for _ in range(5):
        _seconds(clock, 10)
        idle.stir()
        talker.send("anyone?")
        assert idle.read() == ["<talker> anyone?"]  # still there
    _seconds(clock, 9)
    assert idle.read() == []
    _seconds(clock, 1)
    assert idle.read() == ["! idle for 60 seconds; closing"]
    assert idle.closing
    assert talker.read()[-1] == "*** idle left (1 here): idle timeout"


def test_close_reasons(wire: type[FakeUser]) -> None:
    server, _ = make_server()
    (watcher,) = room(server, "watcher")
    quitter, closer, resetter = room(server, "quitter", "closer", "resetter", wire=wire)
    watcher.read()
    quitter.send("/quit see you")
    assert quitter.read() == ["*** Goodbye!"]
    assert quitter.closing
    quitter.close()
    closer.close()
    resetter.close(clean=False)
    assert watcher.read() == [
        "*** quitter left (3 here): see you",
        "*** closer left (2 here): connection closed",
        "*** resetter left (1 here): connection lost",
    ]


def test_a_peer_that_never_reads_its_goodbye_is_cut(wire: type[FakeUser]) -> None:
    server, clock = make_server()
    (user,) = room(server, "user", wire=wire)
    user.send("/quit")
    assert user.transport.disconnecting
    assert not user.transport.disconnected
    clock.advance(CLOSE_GRACE)
    assert user.transport.disconnected


def test_shutdown_says_goodbye_on_every_wire(wire: type[FakeUser]) -> None:
    server, clock = make_server(shutdown_grace=5)
    user, other = _users(server, wire, "user", "other")
    done = server.shutdown()
    assert user.read() == ["*** Server is shutting down. Bye!"]
    assert other.read() == ["*** Server is shutting down. Bye!"]
    other.close()
    clock.advance(5)
    assert user.transport.disconnected
    assert done.called
