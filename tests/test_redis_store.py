"""The Lua scripts of Redis mode, run on a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis as redis_py

from twchat.backend.redis.history import StreamHistory
from twchat.backend.redis.store import (
    CLAIM,
    JOIN,
    LEAVE,
    RELEASE,
    RENAME,
    RESERVE,
    UNRESERVE,
    Keys,
    entry_number,
)

from .support.redisserver import RedisServer

K = Keys()


@pytest.fixture
def r(redis: RedisServer) -> Iterator[redis_py.Redis]:
    client = redis_py.Redis.from_url(redis.url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


#: A stream's entries as the tests read them (decode_responses=True).
Entries = list[tuple[str, dict[str, str]]]


def entries(r: redis_py.Redis, room: str, newest_first: int = 0) -> Entries:
    """The room's stream, oldest first (or its ``newest_first`` newest)."""
    key = K.stream(room)
    found = r.xrevrange(key, count=newest_first) if newest_first else r.xrange(key)
    return cast(Entries, found)


def join(r: redis_py.Redis, node: str, nick: str, room: str, announce: int = 1) -> Any:
    return r.eval(
        JOIN,
        4,
        K.members(room),
        K.rooms,
        K.users(node),
        K.stream(room),
        nick.lower(),
        node,
        nick,
        room,
        room.title(),
        f"{node}.1",
        "",
        100,
        announce,
    )


def leave(
    r: redis_py.Redis, node: str, nick: str, room: str, free: int = 1, went: str = ""
) -> Any:
    return r.eval(
        LEAVE,
        6,
        K.members(room),
        K.rooms,
        K.users(node),
        K.stream(room),
        K.topic(room),
        K.nick(nick.lower()),
        nick.lower(),
        node,
        nick,
        room,
        "bye",
        went,
        100,
        "lobby",
        f"{node}.1",
        free,
    )


def test_join_counts_and_announces_in_one_step(r: redis_py.Redis) -> None:
    first = join(r, "n1", "alice", "games")
    second = join(r, "n2", "bob", "games")
    assert first[1] == 1
    assert second[1] == 2
    stream = entries(r, "games")
    assert [(f["k"], f["n"], f["u"]) for _, f in stream] == [
        ("join", "alice", "1"),
        ("join", "bob", "2"),
    ]
    assert [e[0] for e in stream] == [first[0], second[0]]
    assert r.hgetall(K.members("games")) == {"alice": "n1\talice", "bob": "n2\tbob"}
    assert r.hgetall(K.rooms) == {"games": "Games"}
    assert r.hgetall(K.users("n1")) == {"alice": "games\talice"}
    # A quiet restore of someone still there changes nothing and says nothing.
    assert join(r, "n1", "alice", "games", announce=0) == ["", 2]
    assert r.xlen(K.stream("games")) == 2
    # One that writes back what Redis lost leaves a "back" entry (for the
    # nodes' rosters), not a join.
    r.delete(K.members("games"))
    back, online = join(r, "n1", "alice", "games", announce=0)
    assert online == 1
    assert r.xlen(K.stream("games")) == 3
    assert entries(r, "games")[-1] == (
        back,
        {"k": "back", "n": "alice", "c": "n1.1", "u": "1"},
    )


def test_only_the_holding_node_takes_someone_out(r: redis_py.Redis) -> None:
    r.set(K.nick("alice"), "n1")
    join(r, "n1", "alice", "games")
    join(r, "n2", "bob", "games")
    r.set(K.topic("games"), "dice")
    assert leave(r, "n2", "alice", "games") == ["", -1]
    assert r.get(K.nick("alice")) == "n1"
    assert "alice" in r.hgetall(K.members("games"))

    entry_id, left = leave(r, "n1", "alice", "games")
    assert left == 1
    assert r.get(K.nick("alice")) is None, "the nickname is free"
    last = entries(r, "games")[-1]
    assert last[0] == entry_id
    assert last[1] == {
        "k": "leave",
        "n": "alice",
        "c": "n1.1",
        "u": "1",
        "r": "bye",
        "w": "",
    }
    assert r.get(K.topic("games")) == "dice", "bob is still there"
    leave(r, "n2", "bob", "games")
    assert r.hgetall(K.rooms) == {}, "an empty room is gone"
    assert r.xlen(K.stream("games")) == 4, "its history stays"
    assert r.get(K.topic("games")) == "dice", "and its topic with it"


def test_the_default_room_never_disappears(r: redis_py.Redis) -> None:
    join(r, "n1", "alice", "lobby")
    leave(r, "n1", "alice", "lobby")
    assert r.hgetall(K.rooms) == {"lobby": "Lobby"}


def test_moving_keeps_the_nickname(r: redis_py.Redis) -> None:
    r.set(K.nick("alice"), "n1")
    join(r, "n1", "alice", "lobby")
    leave(r, "n1", "alice", "lobby", free=0, went="games")
    join(r, "n1", "alice", "games")
    assert r.get(K.nick("alice")) == "n1"
    assert r.hgetall(K.users("n1")) == {"alice": "games\talice"}
    assert entries(r, "lobby")[-1][1]["w"] == "games"


def test_rename_moves_the_claim_and_is_announced(r: redis_py.Redis) -> None:
    r.set(K.nick("alice"), "n1")
    join(r, "n1", "alice", "lobby")
    r.set(K.nick("alicia"), "n1")  # claimed first, by the hub
    r.eval(
        RENAME,
        4,
        K.members("lobby"),
        K.users("n1"),
        K.stream("lobby"),
        K.nick("alice"),
        "alice",
        "alicia",
        "n1",
        "alice",
        "Alicia",
        "lobby",
        "n1.1",
        100,
    )
    assert r.get(K.nick("alice")) is None
    assert r.hgetall(K.members("lobby")) == {"alicia": "n1\tAlicia"}
    assert entries(r, "lobby")[-1][1] == {
        "k": "nick",
        "o": "alice",
        "n": "Alicia",
        "c": "n1.1",
    }
    # A change of letter case only keeps the claim.
    r.eval(
        RENAME,
        4,
        K.members("lobby"),
        K.users("n1"),
        K.stream("lobby"),
        K.nick("alicia"),
        "alicia",
        "alicia",
        "n1",
        "Alicia",
        "ALICIA",
        "lobby",
        "n1.1",
        100,
    )
    assert r.get(K.nick("alicia")) == "n1"


def test_claim_renews_takes_back_and_reports_the_lost(r: redis_py.Redis) -> None:
    r.set(K.nick("alice"), "n1", ex=5)
    r.set(K.nick("carol"), "n2", ex=5)
    lost = r.eval(CLAIM, 3, K.nick("alice"), K.nick("bob"), K.nick("carol"), "n1", 30)
    assert lost == [3]
    assert r.ttl(K.nick("alice")) > 5
    assert r.get(K.nick("bob")) == "n1", "expired during an outage: taken back"
    assert r.get(K.nick("carol")) == "n2"


def test_release_only_frees_your_own_name(r: redis_py.Redis) -> None:
    r.set(K.nick("alice"), "n1")
    assert r.eval(RELEASE, 1, K.nick("alice"), "n2") == 0
    assert r.eval(RELEASE, 1, K.nick("alice"), "n1") == 1
    assert r.get(K.nick("alice")) is None


def test_stream_history_keeps_lines_not_presence(r: redis_py.Redis) -> None:
    history = StreamHistory(keep=2)
    join(r, "n1", "alice", "lobby")
    for text in ("one", "two", "three"):
        r.xadd(K.stream("lobby"), {"k": "chat", "n": "alice", "t": text})
    r.xadd(K.stream("lobby"), {"k": "topic", "n": "alice", "t": "news"})
    history.load("lobby", entries(r, "lobby", newest_first=10))
    assert [(e.kind, e.text) for e in history.recent("lobby", 10)] == [
        ("chat", "three"),
        ("topic", "news"),
    ]
    newest = entries(r, "lobby", newest_first=1)[0]
    assert history.recent("lobby", 1)[0].ts == int(newest[0].split("-")[0]) / 1000


def test_entry_numbers_grow_with_the_ids_whatever_was_read_before() -> None:
    # The node remembers the last millisecond it parsed: going back to an
    # earlier one (another room's stream, a replay) must not reuse it.
    ids = ["1763854000123-0", "1763854000123-7", "1763854000124-0", "1763854000124-1"]
    numbers = [entry_number(i) for i in ids]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 4
    assert entry_number("1763854000123-7") == numbers[1]
    assert entry_number("1763854000124-1") - entry_number("1763854000124-0") == 1
    assert entry_number("1763854000124-0") - entry_number("1763854000123-0") == 4096
    # 4096 in one millisecond would run into the next: held at the last.
    assert entry_number("1763854000123-5000") == numbers[0] + 4095


def test_a_leave_is_told_even_when_redis_lost_the_directory(r: redis_py.Redis) -> None:
    entry_id, left = leave(r, "n1", "alice", "lobby")
    assert entry_id
    assert left == 0
    assert entries(r, "lobby")[-1][1]["k"] == "leave"


def test_reserve_counts_and_creates_in_one_step(r: redis_py.Redis) -> None:
    reserve, unreserve = r.register_script(RESERVE), r.register_script(UNRESERVE)
    assert reserve(keys=[K.rooms], args=["lobby", "lobby", 2]) == "lobby"
    assert reserve(keys=[K.rooms], args=["games", "Games", 2]) == "Games"
    # It exists: its creator's name, whatever the limit.
    assert reserve(keys=[K.rooms], args=["games", "GAMES", 2]) == "Games"
    assert reserve(keys=[K.rooms], args=["chess", "chess", 2]) is None
    assert r.hlen(K.rooms) == 2
    # Reserved for someone who never came: it goes, and makes room.
    unreserve(keys=[K.rooms, K.members("games")], args=["games", "lobby"])
    assert reserve(keys=[K.rooms], args=["chess", "chess", 2]) == "chess"
    # Never the default room, never a room with people in it.
    unreserve(keys=[K.rooms, K.members("lobby")], args=["lobby", "lobby"])
    join(r, "n1", "alice", "chess")
    unreserve(keys=[K.rooms, K.members("chess")], args=["chess", "lobby"])
    assert sorted(r.hkeys(K.rooms)) == ["chess", "lobby"]
