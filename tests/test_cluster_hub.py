"""
ClusterHub in one process: two nodes on one asyncio reactor (not
installed: the suite's reactor stays the default one), a real
redis-server, and members that record the lines they would be sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_py
from redis.exceptions import ConnectionError as RedisConnectionError
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.defer import Deferred

from twchat.cluster.hub import (
    NOT_SENT,
    UNAVAILABLE,
    ClusterHub,
    ClusterRoom,
    _Arrival,
)
from twchat.cluster.link import redacted
from twchat.commands import handle_line
from twchat.events import Event
from twchat.wire import render_line

from .support.net import free_port
from .support.redisserver import RedisServer


class LineMember:
    """A user as the hub sees it, keeping what it would read, as text."""

    renderer = staticmethod(render_line)

    def __init__(self, peer: str = "test") -> None:
        self.nick = ""
        self.peer = peer
        self.room: Any = None
        self.lines: list[str] = []
        self.quit_reason: str | None = None

    def deliver(self, data: bytes) -> None:
        self.lines.extend(data.decode().splitlines())

    def send(self, event: Event) -> None:
        self.deliver(render_line(event))

    def quit(self, reason: str) -> None:
        self.quit_reason = reason

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


class Nodes:
    """Several hubs on one event loop; ``until`` runs the loop."""

    def __init__(self, redis: RedisServer) -> None:
        self.redis = redis
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.reactor = AsyncioSelectorReactor(self.loop)
        self.hubs: list[ClusterHub] = []

    def hub(self, url: str | None = None, **options: Any) -> ClusterHub:
        hub = ClusterHub(self.reactor, url or self.redis.url, **options)
        hub.start()
        self.hubs.append(hub)
        return hub

    def until(self, check: Callable[[], object], timeout: float = 10.0) -> None:
        async def wait() -> None:
            deadline = self.loop.time() + timeout
            while not check():
                assert self.loop.time() < deadline, "timed out"
                await asyncio.sleep(0.01)

        self.loop.run_until_complete(wait())

    def done(self, d: Deferred[Any] | None) -> None:
        """Run the loop until an action has finished."""
        if d is not None:
            self.loop.run_until_complete(asyncio.wait_for(d.asFuture(self.loop), 10))

    def type(self, hub: ClusterHub, member: LineMember, text: str) -> None:
        """``member`` types a line; wait until the hub has acted on it."""
        self.done(handle_line(hub, member, text))

    def join(self, hub: ClusterHub, nick: str) -> LineMember:
        member = LineMember()
        self.until(lambda: hub.link.up)
        self.type(hub, member, nick)
        assert member.nick == nick, member.lines
        member.take()
        return member

    def close(self) -> None:
        for hub in self.hubs:
            hub.close()
            self.done(hub.stop())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def nodes(redis: RedisServer) -> Iterator[Nodes]:
    cluster = Nodes(redis)
    try:
        yield cluster
    finally:
        cluster.close()


def test_lines_go_through_the_stream_to_both_nodes(nodes: Nodes) -> None:
    one, two = nodes.hub(), nodes.hub()
    alice = nodes.join(one, "alice")
    carol = nodes.join(one, "carol")
    bob = nodes.join(two, "bob")
    nodes.type(one, alice, "hi from one")
    nodes.type(two, bob, "hi from two")
    nodes.until(lambda: len(carol.lines) >= 3)
    assert carol.lines[-2:] == ["<alice> hi from one", "<bob> hi from two"]
    nodes.until(lambda: "<bob> hi from two" in alice.lines)
    assert "<alice> hi from one" not in alice.lines, "no echo"
    nodes.until(lambda: "<alice> hi from one" in bob.lines)


def test_no_redis_no_registration(nodes: Nodes) -> None:
    hub = nodes.hub(f"redis://127.0.0.1:{free_port()}/0")
    member = LineMember()
    nodes.until(lambda: hub.link._lost_at is not None)
    nodes.type(hub, member, "alice")
    assert member.take() == [f"! {UNAVAILABLE}", "? Choose a nickname:"]
    assert member.nick == ""


def test_during_an_outage_lines_get_an_error_and_local_things_work(
    nodes: Nodes, redis: RedisServer
) -> None:
    one, two = nodes.hub(), nodes.hub()
    alice = nodes.join(one, "alice")
    carol = nodes.join(one, "carol")
    bob = nodes.join(two, "bob")
    nodes.type(one, alice, "/topic plans")
    nodes.type(one, alice, "remember this")
    nodes.until(lambda: "<alice> remember this" in bob.lines)
    alice.take()
    redis.stop()
    nodes.until(lambda: not one.link.up and not two.link.up)
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
    nodes.until(lambda: one.link.up and two.link.up)
    # Counted once the nodes have written the directory back: 1 or 2.
    left = re.compile(r"\*\*\* carol left \([12] here\): connection closed")
    nodes.until(lambda: any(left.fullmatch(line) for line in bob.lines))
    nodes.until(lambda: any(left.fullmatch(line) for line in alice.lines))
    nodes.type(one, alice, "back")
    nodes.until(lambda: "<alice> back" in bob.lines)
    assert "<alice> lost" not in bob.lines
    nodes.type(two, bob, "/who")
    nodes.until(lambda: "*** #lobby has 2 users: alice, bob" in bob.lines)


def test_a_leave_before_the_join_is_read_is_not_lost(nodes: Nodes) -> None:
    one, two = nodes.hub(), nodes.hub()
    bob = nodes.join(two, "bob")
    alice = LineMember()
    nodes.until(lambda: one.link.up)
    d = handle_line(one, alice, "alice")
    one.leave(alice, "connection lost")  # gone before anything came back
    nodes.done(d)
    nodes.type(two, bob, "/who")
    nodes.until(lambda: bob.lines and bob.lines[-1].startswith("*** #lobby has"))
    assert bob.lines[-1] == "*** #lobby has 1 user: bob"
    carol = nodes.join(one, "alice")  # the name is free again
    assert carol.nick == "alice"


def test_a_node_cut_off_for_a_moment_resumes_where_it_stopped(nodes: Nodes) -> None:
    one, two = nodes.hub(), nodes.hub()
    alice = nodes.join(one, "alice")
    bob = nodes.join(two, "bob")
    nodes.type(one, alice, "before")
    nodes.until(lambda: "<alice> before" in bob.lines)
    # Node two loses its connections, and cannot get back until allowed.
    reader = two.link._reader
    ping = reader.ping
    cut_off = True

    async def refused() -> Any:
        if cut_off:
            raise RedisConnectionError("cut off by the test")
        return await ping()

    reader.ping = refused
    nodes.loop.run_until_complete(reader.connection_pool.disconnect())
    nodes.loop.run_until_complete(two.link.client.connection_pool.disconnect())
    nodes.until(lambda: not two.link.up)
    for i in range(50):
        nodes.type(one, alice, f"meanwhile {i}")
    nodes.loop.run_until_complete(one.link.drained())
    assert not two.link.up, "the lines went out while node two was away"
    assert "<alice> meanwhile 0" not in bob.lines
    cut_off = False
    nodes.until(lambda: two.link.up)
    nodes.until(lambda: "<alice> meanwhile 49" in bob.lines)
    said = [line for line in bob.lines if line.startswith("<alice>")]
    assert said == ["<alice> before"] + [f"<alice> meanwhile {i}" for i in range(50)]


def test_connections_are_named_and_passwords_stay_out_of_the_log(
    nodes: Nodes,
) -> None:
    hub = nodes.hub()
    nodes.join(hub, "alice")
    names = nodes.loop.run_until_complete(hub.link.client.client_list())
    assert {c["name"] for c in names} >= {
        f"twchat-{hub.node}",
        f"twchat-{hub.node}-reader",
    }
    assert redacted("redis://app:s3cret@db.example:6380/2") == (
        "redis://app:***@db.example:6380/2"
    )
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_the_roll_call_is_exact_as_of_the_join_entry(nodes: Nodes) -> None:
    """Joins, leaves and renames between the snapshot and the entry count."""
    hub = nodes.hub(f"redis://127.0.0.1:{free_port()}/0")  # never reached
    room = hub.default_room
    assert isinstance(room, ClusterRoom)
    alice = LineMember()
    alice.nick = "alice"
    hub.users["alice"] = alice
    hub._conns["me.1"] = alice
    hub._conn_of[alice] = "me.1"
    room.following = nodes.loop.create_future()
    room.following.set_result(None)
    # The snapshot saw bob and dave; what the stream says next decides.
    room.pending["me.1"] = _Arrival(
        alice, "", welcome=True, roster={"bob": "bob", "dave": "dave"}
    )
    hub._deliver(
        hub.keys.stream(room.key),
        [
            ("1-0", {"k": "join", "n": "bob", "c": "x.1", "u": "2", "f": ""}),
            ("2-0", {"k": "leave", "n": "dave", "c": "", "u": "1", "r": "", "w": ""}),
            ("3-0", {"k": "join", "n": "carol", "c": "x.3", "u": "2", "f": ""}),
            ("4-0", {"k": "nick", "o": "bob", "n": "robert", "c": "x.1"}),
            ("5-0", {"k": "join", "n": "alice", "c": "me.1", "u": "3", "f": ""}),
            ("6-0", {"k": "chat", "n": "carol", "t": "hi", "c": "x.3"}),
        ],
    )
    assert alice.take() == [
        "*** Welcome, alice! #lobby has 3 users: carol, robert, alice",
        "<carol> hi",
    ]


def test_the_room_limit_holds_under_concurrent_joins(nodes: Nodes) -> None:
    # --max-rooms 2: the default room and one more, however many nodes and
    # users ask at the same moment.
    one = nodes.hub(max_rooms=2)
    two = nodes.hub(max_rooms=2)
    members = [nodes.join(one if i % 3 else two, f"u{i}") for i in range(15)]
    hubs = [one if i % 3 else two for i in range(15)]
    for member in members:
        member.take()
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


def test_a_burst_of_private_messages_larger_than_any_trim_arrives_whole(
    nodes: Nodes, redis: RedisServer
) -> None:
    one, two = nodes.hub(), nodes.hub()
    alice = nodes.join(one, "alice")
    nodes.join(two, "bob")
    raw = redis_py.Redis(port=redis.port, decode_responses=True)
    inbox = one.keys.inbox(one.node)

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
