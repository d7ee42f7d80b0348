"""The server built through the plugin's makeService, over real loopback TCP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol

from twchat.tap import Options, makeService

from .support import WAIT
from .support.net import LineClient, connect, connect_raw, free_port, join


async def _serve(*args: str) -> tuple[int, MultiService]:
    port = free_port()
    options = Options()
    options.parseOptions(
        ["--port", f"tcp:{port}:interface=127.0.0.1", "--no-history", *args]
    )
    top = makeService(options, reactor)
    top.startService()
    return port, top


@pytest_twisted.async_yield_fixture
async def server() -> AsyncIterator[int]:
    port, top = await _serve("--flood-rate", "0")
    yield port
    await top.stopService()


async def _quit_all(*clients: LineClient) -> None:
    for client in clients:
        client.transport.loseConnection()  # type: ignore[union-attr]
        await client.wait_closed()


@pytest_twisted.ensureDeferred
async def test_three_users_chat(server: int) -> None:
    alice = await join(server, "alice")
    bob = await join(server, "bob")
    assert await alice.line() == "*** bob joined (2 here)"
    carol = await join(server, "carol")
    assert await alice.line() == "*** carol joined (3 here)"
    assert await bob.line() == "*** carol joined (3 here)"

    alice.send("hello everyone")
    assert await bob.line() == "<alice> hello everyone"
    assert await carol.line() == "<alice> hello everyone"
    carol.send("/msg bob psst", "/me waves")
    assert await carol.line() == "-> *bob* psst"
    assert await bob.lines(2) == ["*carol* psst", "* carol waves"]
    # alice never saw the private message, and never got her own line back.
    assert await alice.line() == "* carol waves"
    await _quit_all(alice, bob, carol)


@pytest_twisted.ensureDeferred
async def test_every_receiver_sees_one_order(server: int) -> None:
    senders = [await join(server, f"s{i}") for i in range(3)]
    readers = [await join(server, f"r{i}") for i in range(3)]
    for reader in readers[:-1]:  # let the join notices settle first
        await reader.until("*** r2 joined (6 here)")
    per_sender = 100
    for n in range(per_sender):
        for i, sender in enumerate(senders):
            sender.send(f"{i}:{n}")
    total = per_sender * len(senders)
    seen = [await reader.lines(total) for reader in readers]
    assert seen[0] == seen[1] == seen[2]
    for i in range(len(senders)):
        mine = [line for line in seen[0] if line.startswith(f"<s{i}> ")]
        assert mine == [f"<s{i}> {i}:{n}" for n in range(per_sender)]
    await _quit_all(*senders, *readers)


@pytest_twisted.ensureDeferred
async def test_bad_input_is_refused_and_nothing_else_disturbed(server: int) -> None:
    alice = await join(server, "alice")
    bob = await join(server, "bob")
    await alice.line()
    alice.send(b"x" * 600, b"hi\xaa", "/nosuch", "fine")
    assert await alice.lines(3) == [
        "! line too long (max 512 bytes); it was not sent",
        "! your line was not valid UTF-8; it was not sent",
        "! unknown command /nosuch; /help lists the commands",
    ]
    assert await bob.line() == "<alice> fine"
    await _quit_all(alice, bob)


@pytest_twisted.ensureDeferred
async def test_leaving_by_eof_and_by_reset(server: int) -> None:
    alice = await join(server, "alice")
    bob = await join(server, "bob")
    carol = await join(server, "carol")
    await alice.until("*** carol joined (3 here)")
    bob.transport.loseConnection()  # type: ignore[union-attr]
    assert await alice.line() == "*** bob left (2 here): connection closed"
    carol.transport.abortConnection()  # type: ignore[union-attr]
    assert await alice.line() == "*** carol left (1 here): connection lost"
    again = await join(server, "bob")
    await _quit_all(alice, again)


@pytest_twisted.ensureDeferred
async def test_server_full() -> None:
    port, top = await _serve("--max-clients", "2")
    try:
        alice = await join(port, "alice")
        waiting = await connect(port)
        extra = await connect_raw(port)
        assert await extra.line() == "! server is full (2 users); try again later"
        await extra.wait_closed()
        await _quit_all(alice, waiting)
    finally:
        await top.stopService()


@pytest_twisted.ensureDeferred
async def test_stopping_the_service_says_goodbye() -> None:
    port, top = await _serve()
    alice = await join(port, "alice")
    lurker = await connect(port)
    stopped = top.stopService()
    assert await alice.line() == "*** Server is shutting down. Bye!"
    assert await lurker.line() == "*** Server is shutting down. Bye!"
    await alice.wait_closed()
    await lurker.wait_closed()
    await stopped
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest_twisted.ensureDeferred
async def test_listening_on_tcp_and_unix_at_once(tmp_path: Path) -> None:
    path = tmp_path / "chat.sock"
    port, top = await _serve("--port", f"unix:{path}")
    try:
        alice = await join(port, "alice")
        endpoint = UNIXClientEndpoint(reactor, str(path))
        bob = await connectProtocol(endpoint, LineClient()).addTimeout(WAIT, reactor)
        await bob.until("? Choose a nickname:")
        bob.send("bob")
        assert await bob.line() == "*** Welcome, bob! #lobby has 2 users: alice, bob"
        bob.send("hello from a unix socket")
        assert await alice.until("<bob> hello from a unix socket")
        await _quit_all(alice, bob)
    finally:
        await top.stopService()


@pytest_twisted.ensureDeferred
async def test_rooms_are_isolated_and_ordered(server: int) -> None:
    lobby = await join(server, "lobbyist")
    players = [await join(server, f"p{i}") for i in range(3)]
    talkers = [await join(server, f"t{i}") for i in range(2)]
    for group, room, prefix in ((players, "games", "p"), (talkers, "talk", "t")):
        for i, client in enumerate(group):  # one after another: a known order
            client.send(f"/join #{room}")
            names = ", ".join(f"{prefix}{j}" for j in range(i + 1))
            users = "1 user" if i == 0 else f"{i + 1} users"
            await client.until(f"*** #{room} has {users}: {names}")
    await players[0].until("*** p2 joined from #lobby (3 here)")
    await players[1].until("*** p2 joined from #lobby (3 here)")
    await talkers[0].until("*** t1 joined from #lobby (2 here)")
    await lobby.until("*** t1 left for #talk (1 here)")
    players[0].send("/topic chess at eight")
    for client in players:
        await client.until("*** p0 set the topic of #games: chess at eight")

    for n in range(60):  # both rooms talk at once
        players[n % 3].send(f"g{n}")
        talkers[n % 2].send(f"t{n}")
    games = [await player.lines(40) for player in players]
    for i, seen in enumerate(games):
        others = {f"<p{j}>" for j in range(3) if j != i}
        assert {line.split(" ")[0] for line in seen} == others
    # Lines two players both received arrived in the same order for both.
    for a in range(3):
        for b in range(a + 1, 3):
            common = set(games[a]) & set(games[b])
            assert [x for x in games[a] if x in common] == [
                x for x in games[b] if x in common
            ]
    for i, talker in enumerate(talkers):
        other = 1 - i
        assert await talker.lines(30) == [
            f"<t{other}> t{n}" for n in range(60) if n % 2 == other
        ]
    # The lobby heard none of it.
    lobby.send("/rooms")
    assert await lobby.until("***   #talk (2)") == [
        "*** 3 rooms:",
        "***   #games (3): chess at eight",
        "***   #lobby (1)",
        "***   #talk (2)",
    ]
    for client in talkers:
        client.send("/part")
    await lobby.until("*** t1 joined from #talk (3 here)")
    lobby.send("/rooms")
    assert await lobby.until("***   #lobby (3)") == [
        "*** 2 rooms:",
        "***   #games (3): chess at eight",
        "***   #lobby (3)",
    ]
    await _quit_all(lobby, *players, *talkers)
