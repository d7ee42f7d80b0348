"""
The Redis backend's own cases: outages, recovery, races between nodes,
the arrival roll call and bursts. (What users read is the rules suite's,
run on Redis too: tests/test_rules.py.)
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from redis.exceptions import ConnectionError as RedisConnectionError

from twchat.backend.redis import link as link_module
from twchat.backend.redis.backend import RedisBackend, _Arrival, _Followed
from twchat.backend.redis.link import POOL_SIZE, redacted
from twchat.backend.roster import Roster
from twchat.commands import handle_line
from twchat.events import Chat
from twchat.hub import MAYBE_NOT_SENT, NOT_SENT, UNAVAILABLE, WELCOME_NAMES, Hub

from .support.fakes import RecordingListener, RecordingMember
from .support.hubs import Hubs
from .support.net import free_port
from .support.redisserver import RedisServer


def backend(hub: Hub) -> RedisBackend:
    assert isinstance(hub.backend, RedisBackend)
    return hub.backend


@pytest.fixture
def nodes(redis: RedisServer, tmp_path: Path) -> Iterator[Hubs]:
    cluster = Hubs("redis", redis.url, tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()


def test_no_redis_no_registration(nodes: Hubs) -> None:
    hub = nodes.hub(f"redis://127.0.0.1:{free_port()}/0")
    member = RecordingMember()
    nodes.until(lambda: backend(hub).link._lost_at is not None)
    nodes.done(hub.greet(member))
    assert member.take() == [
        "*** Welcome to twchat! Nobody else is here yet.",
        "? Choose a nickname:",
    ]
    nodes.type(hub, member, "alice")
    assert member.take() == [f"! {UNAVAILABLE}", "? Choose a nickname:"]
    assert member.nick == ""


def test_during_an_outage_lines_get_an_error_and_local_things_work(
    nodes: Hubs, redis: RedisServer
) -> None:
    one, two = nodes.hub(), nodes.hub()
    alice = nodes.join(one, "alice")
    carol = nodes.join(one, "carol")
    bob = nodes.join(two, "bob")
    nodes.type(one, alice, "/topic plans", "remember this")
    nodes.until(lambda: "<alice> remember this" in bob.lines)
    nodes.settle()
    alice.take()
    redis.stop()
    nodes.until(lambda: not one.backend.up and not two.backend.up)
    for line in ("lost", "/me sighs", "/msg bob psst"):
        nodes.type(one, alice, line)
        assert alice.take() == [f"! {NOT_SENT}"], line
    for line in ("/who", "/rooms", "/join games", "/nick alicia", "/topic new"):
        nodes.type(one, alice, line)
        assert alice.take() == [f"! {UNAVAILABLE}"], line
    # What this node knows, it still does.
    nodes.type(one, alice, "/msg carol still here")
    assert carol.take()[-1] == "*alice* still here"
    assert alice.take() == ["-> *carol* still here"]
    nodes.type(one, alice, "/topic")
    assert alice.take() == ["*** Topic of #lobby: plans"]
    nodes.type(one, alice, "/history 1")
    assert alice.take()[0].endswith("<alice> remember this")

    # carol leaves during the outage: told once Redis is back.
    one.leave(carol, "connection closed")
    redis.start()
    nodes.until(lambda: one.backend.up and two.backend.up)
    # Counted once the nodes have written the directory back: 1 or 2.
    left = re.compile(r"\*\*\* carol left \([12] here\): connection closed")
    nodes.until(lambda: any(left.fullmatch(line) for line in bob.lines))
    nodes.until(lambda: any(left.fullmatch(line) for line in alice.lines))
    nodes.type(one, alice, "back")
    nodes.until(lambda: "<alice> back" in bob.lines)
    assert "<alice> lost" not in bob.lines
    nodes.type(two, bob, "/who")
    nodes.until(lambda: "*** #lobby has 2 users: alice, bob" in bob.lines)


def test_a_line_on_its_way_when_redis_dies_is_not_called_unsent(
    nodes: Hubs, redis: RedisServer
) -> None:
    one, two = nodes.hub(), nodes.hub()
    alice = nodes.join(one, "alice")
    nodes.join(two, "bob")
    nodes.settle()
    assert nodes.loop is not None
    found = nodes.loop.run_until_complete(backend(one).store.holder("bob"))
    assert found is not None
    alice.take()

    async def known(nick: str) -> tuple[str, str] | None:
        return found  # as if the lookup had answered just before the end

    backend(one).store.holder = known  # type: ignore[method-assign]
    redis.stop()
    # Typed before the node has noticed: each goes out, and no answer comes
    # back. Redis may have stored it, so "not sent" would be a guess.
    assert one.backend.up
    for line in ("in flight", "/msg bob in flight too"):
        nodes.type(one, alice, line)
    nodes.until(lambda: len(alice.lines) == 2)
    assert alice.take() == [f"! {MAYBE_NOT_SENT}"] * 2
    # Once the node knows, a line is refused at once: surely not sent.
    assert not one.backend.up
    nodes.type(one, alice, "refused")
    assert alice.take() == [f"! {NOT_SENT}"]


def test_a_redis_that_stops_answering_is_noticed_within_the_deadline(
    nodes: Hubs, redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pipeline has one deadline; redis-py's own timeout per reply is off
    # for it. Frozen (SIGSTOP), Redis keeps its connections open and
    # answers nothing: only the deadline can tell.
    monkeypatch.setattr(link_module, "SOCKET_TIMEOUT", 0.5)
    hub = nodes.hub()
    alice = nodes.join(hub, "alice")
    bob = nodes.join(hub, "bob")
    nodes.settle()
    alice.take()
    assert redis.process is not None
    redis.process.send_signal(signal.SIGSTOP)
    try:
        assert nodes.loop is not None
        started = nodes.loop.time()
        nodes.type(hub, alice, "into the void")
        nodes.until(lambda: alice.lines)
        waited = nodes.loop.time() - started
        assert alice.take() == [f"! {MAYBE_NOT_SENT}"]
        assert 0.5 <= waited < 2.0, waited
        assert not hub.backend.up
    finally:
        redis.process.send_signal(signal.SIGCONT)
    # The pipeline's connection was dropped at the deadline: whatever Redis
    # answers to it now cannot be read as the reply to a later command.
    nodes.until(lambda: hub.backend.up)
    bob.take()
    nodes.type(hub, alice, *(f"back {i}" for i in range(20)))
    nodes.settle()
    assert [line for line in bob.take() if "back" in line] == [
        f"<alice> back {i}" for i in range(20)
    ]
    assert alice.take() == []


def test_a_leave_before_the_join_is_read_is_not_lost(nodes: Hubs) -> None:
    one, two = nodes.hub(), nodes.hub()
    bob = nodes.join(two, "bob")
    alice = RecordingMember()
    nodes.until(lambda: one.backend.up)
    d = handle_line(one, alice, "alice")
    one.leave(alice, "connection lost")  # gone before anything came back
    nodes.done(d)
    nodes.type(two, bob, "/who")
    nodes.until(lambda: bob.lines and bob.lines[-1].startswith("*** #lobby has"))
    assert bob.lines[-1] == "*** #lobby has 1 user: bob"
    again = nodes.join(one, "alice")  # the name is free again
    assert again.nick == "alice"


def test_a_name_released_here_is_free_for_the_next_claim_from_here(
    nodes: Hubs,
) -> None:
    one = nodes.hub()
    nodes.until(lambda: one.backend.up)
    nodes.done(one.backend.claim("alice"))
    # A write in flight, the release queued behind it, the claim right after:
    # the claim must not overtake the release on another connection.
    backend(one).link.send(backend(one).store.wake())
    one.backend.release("alice")
    claimed: list[bool] = []
    nodes.done(one.backend.claim("alice").addCallback(claimed.append))
    assert claimed == [True]


def test_a_node_cut_off_for_a_moment_resumes_where_it_stopped(nodes: Hubs) -> None:
    one, two = nodes.hub(), nodes.hub()
    alice = nodes.join(one, "alice")
    bob = nodes.join(two, "bob")
    nodes.type(one, alice, "before")
    nodes.until(lambda: "<alice> before" in bob.lines)
    # Node two loses its connections, and cannot get back until allowed.
    link = backend(two).link
    reader = link._reader
    ping = reader.ping
    cut_off = True

    async def refused() -> Any:
        if cut_off:
            raise RedisConnectionError("cut off by the test")
        return await ping()

    reader.ping = refused
    assert nodes.loop is not None
    nodes.loop.run_until_complete(reader.connection_pool.disconnect())
    nodes.loop.run_until_complete(link.client.connection_pool.disconnect())
    nodes.until(lambda: not link.up)
    for i in range(50):
        nodes.type(one, alice, f"meanwhile {i}")
    nodes.loop.run_until_complete(backend(one).link.drained())
    assert not link.up, "the lines went out while node two was away"
    assert "<alice> meanwhile 0" not in bob.lines
    cut_off = False
    nodes.until(lambda: link.up)
    nodes.until(lambda: "<alice> meanwhile 49" in bob.lines)
    said = [line for line in bob.lines if line.startswith("<alice>")]
    assert said == ["<alice> before"] + [f"<alice> meanwhile {i}" for i in range(50)]


def test_connections_are_named_and_passwords_stay_out_of_the_log(
    nodes: Hubs,
) -> None:
    hub = nodes.hub()
    nodes.until(lambda: hub.backend.up)
    assert nodes.loop is not None
    node = backend(hub)
    names = nodes.loop.run_until_complete(node.link.client.client_list())
    assert {c["name"] for c in names} >= {
        f"twchat-{node.node}",
        f"twchat-{node.node}-reader",
    }
    assert redacted("redis://app:s3cret@db.example:6380/2") == (
        "redis://app:***@db.example:6380/2"
    )
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_crowd_arriving_at_once_waits_for_connections_not_an_outage(
    nodes: Hubs,
) -> None:
    # Each arrival asks Redis things; more at once than the pool holds
    # used to fail with "Too many connections", taken for an outage.
    hub = nodes.hub()
    node = backend(hub)
    nodes.until(lambda: node.up)
    crowd = [RecordingMember() for _ in range(3 * POOL_SIZE)]
    for member in crowd:
        member.hub = hub
    greeted = [hub.greet(member) for member in crowd]
    for d in greeted:
        nodes.done(d)
    named = [handle_line(hub, m, f"user{i}") for i, m in enumerate(crowd)]
    for d in named:
        nodes.done(d)
    assert [m.nick for m in crowd] == [f"user{i}" for i in range(len(crowd))]
    assert node.link._lost_at is None
    assert nodes.loop is not None
    clients = nodes.loop.run_until_complete(node.link.client.client_list())
    assert 1 <= sum(c["name"] == f"twchat-{node.node}" for c in clients) <= POOL_SIZE


def _following(nodes: Hubs, members: dict[str, str]) -> tuple[RedisBackend, _Followed]:
    """A node (never in contact) following the lobby, whose roster is ``members``."""
    hub = nodes.hub(f"redis://127.0.0.1:{free_port()}/0")
    node = backend(hub)
    followed = node._followed("lobby", "lobby")
    assert nodes.loop is not None
    followed.following = nodes.loop.create_future()
    followed.following.set_result(None)
    followed.roster = Roster(members)
    return node, followed


def _arriving(node: RedisBackend, followed: _Followed, conn: str) -> list[Any]:
    """Someone on their way into the lobby; what they find, once told."""
    arrival = _Arrival(conn, conn, "", limit=WELCOME_NAMES)
    followed.pending[conn] = arrival
    entered: list[Any] = []
    arrival.done.addCallback(entered.append)
    return entered


def test_the_roll_call_is_exact_as_of_the_join_entry(nodes: Hubs) -> None:
    """Joins, leaves and renames before the join entry count; later ones not."""
    # The roster read on following the room: bob and dave.
    node, followed = _following(nodes, {"bob": "bob", "dave": "dave"})
    entered = _arriving(node, followed, "alice")
    node._deliver(
        node.keys.stream("lobby"),
        [
            ("2-0", {"k": "leave", "n": "dave", "c": "", "u": "1", "r": "", "w": ""}),
            ("3-0", {"k": "join", "n": "Carol", "c": "x.3", "u": "2", "f": ""}),
            ("4-0", {"k": "nick", "o": "bob", "n": "robert", "c": "x.1"}),
            ("5-0", {"k": "join", "n": "alice", "c": "alice", "u": "3", "f": ""}),
            ("6-0", {"k": "join", "n": "erin", "c": "x.6", "u": "4", "f": ""}),
        ],
    )
    assert len(entered) == 1
    assert entered[0].names == ("alice", "Carol", "robert")
    assert entered[0].online == 3
    assert "alice" in followed.conns
    assert followed.roster.names() == ("alice", "Carol", "erin", "robert")


def test_a_crowd_arriving_at_once_is_shown_the_first_names_in_order(
    nodes: Hubs,
) -> None:
    # 300 people already in, 300 arriving in one batch read: each is shown
    # the room as their own join entry leaves it, its first names in order.
    there = {f"u{i:03}": f"U{i:03}" for i in range(0, 600, 2)}
    node, followed = _following(nodes, there)
    coming = [f"u{i:03}" for i in range(599, 0, -2)]
    entered = {conn: _arriving(node, followed, conn) for conn in coming}
    node._deliver(
        node.keys.stream("lobby"),
        [
            (f"{n + 1}-0", {"k": "join", "n": c, "c": c, "u": str(301 + n), "f": ""})
            for n, c in enumerate(coming)
        ],
    )
    for n, conn in enumerate(coming):
        inside = sorted(there.items()) + [(c, c) for c in coming[: n + 1]]
        first = [nick for _, nick in sorted(inside)[:WELCOME_NAMES]]
        (welcome,) = entered[conn]
        assert list(welcome.names) == first, conn
        assert welcome.online == 301 + n
    assert len(followed.roster) == 600


def test_a_user_written_back_quietly_is_in_the_roster_but_not_announced(
    nodes: Hubs,
) -> None:
    node, followed = _following(nodes, {"bob": "bob"})
    listener = RecordingListener()
    node._listener = listener
    node._deliver(
        node.keys.stream("lobby"),
        [
            ("1-0", {"k": "back", "n": "carol", "c": "x.1", "u": "2"}),
            ("2-0", {"k": "chat", "n": "carol", "t": "hi", "c": "x.1"}),
        ],
    )
    ((_, said),) = listener.told  # the line only
    assert isinstance(said, Chat)
    assert said.text == "hi"
    assert followed.roster.names() == ("bob", "carol")
    assert followed.online == 2


def test_a_roster_read_anew_keeps_what_was_read_meanwhile(nodes: Hubs) -> None:
    # Before an outage: bob and ghost (whose node died while Redis lost its
    # data: no leave will ever be read for ghost).
    node, followed = _following(nodes, {"bob": "bob", "ghost": "ghost"})
    assert nodes.loop is not None
    answer: asyncio.Future[dict[str, str]] = nodes.loop.create_future()

    async def members(room: str) -> dict[str, str]:
        return await answer

    node.store.members = members  # type: ignore[method-assign]
    reading = nodes.loop.create_task(node._reread_roster(followed))
    nodes.loop.run_until_complete(asyncio.sleep(0))
    # Read while Redis answers: some of it before Redis's answer, some after.
    entered = _arriving(node, followed, "erin")
    node._deliver(
        node.keys.stream("lobby"),
        [
            ("1-0", {"k": "back", "n": "dave", "c": "x.1", "u": "2"}),
            ("2-0", {"k": "leave", "n": "bob", "c": "", "u": "1", "r": "", "w": ""}),
            ("3-0", {"k": "join", "n": "erin", "c": "erin", "u": "2", "f": ""}),
        ],
    )
    # Until Redis answers, the roster read before stands, kept up to date.
    assert entered[0].names == ("dave", "erin", "ghost")
    answer.set_result({"dave": "dave"})  # as of entry 1-0
    nodes.loop.run_until_complete(reading)
    assert followed.roster.names() == ("dave", "erin")
    assert followed.recording is None
    node._deliver(
        node.keys.stream("lobby"),
        [("4-0", {"k": "join", "n": "bob", "c": "x.4", "u": "3", "f": ""})],
    )
    assert followed.roster.names() == ("bob", "dave", "erin")


def test_a_crowd_arriving_on_two_nodes_reads_the_room_once_per_node(
    nodes: Hubs, redis: RedisServer
) -> None:
    # Each arrival used to read the whole room (HGETALL): a crowd of N
    # read N * N / 2 names, and 4,000 took 12 s to register on two nodes.
    one, two = nodes.hub(), nodes.hub()
    watch = redis.monitor()
    crowd = [RecordingMember() for _ in range(200)]
    hubs = [one if i % 2 else two for i in range(len(crowd))]
    nodes.until(lambda: one.backend.up and two.backend.up)
    for member, hub in zip(crowd, hubs, strict=True):
        member.hub = hub
        nodes.done(hub.greet(member))
    named = [
        handle_line(hub, member, f"u{i:03}")
        for i, (member, hub) in enumerate(zip(crowd, hubs, strict=True))
    ]
    for d in named:
        nodes.done(d)
    read = f'"HGETALL" "{backend(one).keys.members("lobby")}"'
    readings = [c for c in watch.until_now() if read in c]
    watch.close()
    assert len(readings) == 2, "one reading of the room per node"
    # Each was shown the room as their join entry left it, before anything
    # that happened after it: every welcome gives its own head count.
    welcomes = [line for m in crowd for line in m.lines if "*** Welcome, " in line]
    counts = sorted(int(line.split(" has ")[1].split()[0]) for line in welcomes)
    assert counts == list(range(1, len(crowd) + 1))
    for member in crowd:
        # The greeting and the prompt, then their welcome: no join before it.
        assert member.lines[2].startswith(f"*** Welcome, {member.nick}! ")
    nodes.settle()
    for hub in (one, two):
        assert len(backend(hub)._rooms["lobby"].roster) == len(crowd)


def test_greetings_that_come_together_ask_for_the_head_count_once(
    nodes: Hubs, redis: RedisServer
) -> None:
    hub = nodes.hub()
    nodes.join(hub, "alice")
    watch = redis.monitor()
    crowd = [RecordingMember() for _ in range(50)]
    for member in crowd:
        member.hub = hub
    greeted = [hub.greet(member) for member in crowd]
    for d in greeted:
        nodes.done(d)
    asked = [c for c in watch.until_now() if '"HKEYS"' in c]
    watch.close()
    assert len(asked) == 1
    assert {m.lines[0] for m in crowd} == {"*** Welcome to twchat! 1 user online."}
    # A greeting after the answer asks again.
    late = RecordingMember()
    nodes.join(hub, "bob")
    nodes.done(hub.greet(late))
    assert late.lines[0] == "*** Welcome to twchat! 2 users online."


def test_a_crowds_account_lookups_go_out_together_in_the_nodes_pipeline(
    nodes: Hubs, redis: RedisServer
) -> None:
    # Each lookup used to be a command of its own on a pooled connection:
    # a crowd of 100 spread over 50 connections, one round trip each.
    hub = nodes.hub()
    nodes.until(lambda: hub.backend.up)
    crowd = [RecordingMember() for _ in range(100)]
    for member in crowd:
        member.hub = hub
        nodes.done(hub.greet(member))
    watch = redis.monitor()
    named = [handle_line(hub, m, f"u{i:03}") for i, m in enumerate(crowd)]
    for d in named:
        nodes.done(d)
    lookup = re.compile(r'\[\d+ ([\d.:]+)\] "HGETALL" "([^"]+)"')
    found = [lookup.search(c) for c in watch.until_now()]
    watch.close()
    account = backend(hub).keys.account("")
    lookups = [m for m in found if m is not None and m[2].startswith(account)]
    assert sorted(m[2] for m in lookups) == [f"{account}u{i:03}" for i in range(100)]
    connections = {m[1] for m in lookups}
    assert len(connections) <= 2, f"over {len(connections)} connections"
    assert all(m.nick for m in crowd)


def test_after_redis_lost_its_data_the_rosters_drop_the_gone_and_keep_the_rest(
    nodes: Hubs, redis: RedisServer
) -> None:
    one, two = nodes.hub(), nodes.hub()
    nodes.join(one, "alice")
    nodes.join(two, "bob")
    # ghost is on a third node, which dies while Redis loses its data: no
    # leave will ever be written for ghost.
    ghost = backend(one).store.join("n3.1", "ghost", "lobby", "lobby", "", node="n3")
    assert nodes.loop is not None
    nodes.loop.run_until_complete(backend(one).link.write(ghost))
    nodes.settle()
    for hub in (one, two):
        assert backend(hub)._rooms["lobby"].roster.names() == ("alice", "bob", "ghost")
    r = redis_py.Redis.from_url(redis.url, decode_responses=True)
    r.flushall()
    # Node one is back first (Redis has nobody), then node two writes bob
    # back: node one learns of bob from the stream.
    nodes.loop.run_until_complete(backend(one)._reassert())
    nodes.loop.run_until_complete(backend(two)._reassert())
    nodes.settle()
    for hub in (one, two):
        assert backend(hub)._rooms["lobby"].roster.names() == ("alice", "bob")
    carol = RecordingMember()
    nodes.type(one, carol, "carol")
    assert (
        carol.lines[-1] == "*** Welcome, carol! #lobby has 3 users: alice, bob, carol"
    )


def test_a_node_stopped_while_it_recovers_leaves_no_work_behind(nodes: Hubs) -> None:
    hub = nodes.hub()
    node = backend(hub)
    nodes.join(hub, "alice")
    assert nodes.loop is not None
    never: asyncio.Future[dict[str, str]] = nodes.loop.create_future()

    async def members(room: str) -> dict[str, str]:
        return await never  # Redis's answer comes after the node stops

    node.store.members = members  # type: ignore[method-assign]
    node._recovered()
    followed = node._rooms["lobby"]
    nodes.until(lambda: followed.recording is not None)
    nodes.hubs.remove(hub)
    hub.close()
    nodes.done(hub.stop())
    assert not [t for t in node._tasks if not t.done()]


def test_the_room_limit_holds_under_concurrent_joins(nodes: Hubs) -> None:
    # --max-rooms 2: the default room and one more, however many nodes and
    # users ask at the same moment.
    one = nodes.hub(max_rooms=2)
    two = nodes.hub(max_rooms=2)
    hubs = [one if i % 3 else two for i in range(15)]
    members = [nodes.join(hub, f"u{i}") for i, hub in enumerate(hubs)]
    waiting = [
        handle_line(hub, member, f"/join new{i}")
        for i, (hub, member) in enumerate(zip(hubs, members, strict=True))
    ]
    for d in waiting:
        nodes.done(d)
    refused = [
        m
        for m in members
        if "! too many rooms (max 2); join one that exists" in m.lines
    ]
    moved = [m for m in members if m.room is not None and m.room.key != "lobby"]
    assert len(moved) == 1, [m.lines for m in members]
    assert len(refused) == 14
    nodes.type(one, members[0], "/rooms")
    assert members[0].lines[-3] == "*** 2 rooms:"


def test_a_name_claimed_at_once_on_two_nodes_goes_to_one(nodes: Hubs) -> None:
    one, two = nodes.hub(), nodes.hub()
    nodes.until(lambda: one.backend.up and two.backend.up)
    for attempt in range(10):
        first, second = RecordingMember(), RecordingMember()
        name = f"same{attempt}"
        waiting = [handle_line(one, first, name), handle_line(two, second, name)]
        for d in waiting:
            nodes.done(d)
        winners = [m for m in (first, second) if m.nick == name]
        assert len(winners) == 1, (first.lines, second.lines)
        loser = second if winners[0] is first else first
        assert loser.lines[-2:] == [
            f"! nickname {name} is already taken",
            "? Choose a nickname:",
        ]


def test_a_burst_of_private_messages_larger_than_any_trim_arrives_whole(
    nodes: Hubs, redis: RedisServer
) -> None:
    one, two = nodes.hub(), nodes.hub()
    alice = nodes.join(one, "alice")
    nodes.join(two, "bob")
    raw = redis_py.Redis(port=redis.port, decode_responses=True)
    node = backend(one)
    inbox = node.keys.inbox(node.node)

    def burst(start: int, count: int) -> None:
        # What bob's node writes for each /msg alice, many at once.
        with raw.pipeline(transaction=False) as pipe:
            for i in range(start, start + count):
                pipe.xadd(
                    inbox, {"k": "msg", "from": "bob", "to": "alice", "t": f"{i}"}
                )
            pipe.execute()

    burst(0, 6000)
    # alice's node wakes its own reader (following a new room) mid-burst.
    moving = handle_line(one, alice, "/join games")
    burst(6000, 6000)
    nodes.done(moving)
    nodes.until(lambda: len([x for x in alice.lines if x.startswith("*bob*")]) >= 12000)
    got = [x for x in alice.lines if x.startswith("*bob* ")]
    assert got == [f"*bob* {i}" for i in range(12000)]
    # Read entries go: the inbox does not grow for ever.
    nodes.until(lambda: raw.xlen(inbox) <= 1000)
    raw.close()
