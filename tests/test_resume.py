"""
History ids and resuming, on every backend: lines carry their place in
the room's history; a client back after a lost connection returns to its
room and is shown exactly the lines it missed.
"""

from __future__ import annotations

import re

from .support.hubs import Chat, Hubs


def _ids_and_lines(lines: list[str]) -> tuple[list[int], list[str]]:
    """The history ids tagged on ``lines``, and the lines with ids as ``@N``."""
    ids: list[int] = []
    shown = []
    for line in lines:
        found = re.match(r"^@(\d+) ", line)
        if found:
            ids.append(int(found.group(1)))
            line = f"@N {line[found.end() :]}"
        shown.append(re.sub(r"^(@N )\[[^\]]*\] ", r"\1[T] ", line))
    return ids, shown


def _arrive(chat: Chat, nick: str, *first: str) -> list[str]:
    """A new connection typing ``first`` and then its nickname."""
    hub, member = chat.connect()
    chat.hubs.type(hub, member, *first, nick)
    chat.users[nick] = (hub, member)
    chat.hubs.settle()
    return member.take()[2:]  # after the greeting and the prompt


def test_lines_carry_ids_and_a_client_resumes_where_it_was(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("bob")
    welcome = _arrive(chat, "alice", "/ids")
    assert welcome == ["@#lobby *** Welcome, alice! #lobby has 2 users: alice, bob"]
    chat.type("alice", "/join games")
    assert chat.read("alice") == ["@#games *** #games has 1 user: alice"]
    chat.type("bob", "/join games")
    chat.type("bob", "one", "/me two", "/topic three")
    ids, lines = _ids_and_lines(chat.read("alice"))
    assert lines == [
        "*** bob joined from #lobby (2 here)",
        "@N <bob> one",
        "@N * bob two",
        "@N *** bob set the topic of #games: three",
    ]
    assert ids == sorted(set(ids))  # growing, in the room's order
    # bob, who did not ask, sees no tags at all.
    chat.clear()
    chat.type("alice", "seen by bob")
    assert chat.read("bob") == ["<alice> seen by bob"]
    last_seen = ids[1]  # say the connection died after "two"
    chat.quit("alice")
    chat.type("bob", "four", "five")
    back = _arrive(chat, "alice", "/ids", f"/resume games {last_seen}")
    ids, lines = _ids_and_lines(back)
    assert lines == [
        "@#lobby *** Welcome, alice! #lobby has 1 user: alice",
        "@#games *** #games has 2 users: alice, bob",
        "*** Topic of #games: three",
        "@N [T] *** bob set the topic of #games: three",
        "@N [T] <alice> seen by bob",
        "@N [T] <bob> four",
        "@N [T] <bob> five",
    ]
    assert ids == sorted(set(ids))
    assert ids[0] > last_seen
    chat.type("bob", "six")
    later, lines = _ids_and_lines(chat.read("alice"))
    assert lines == ["@N <bob> six"]
    assert later[0] > ids[-1]


def test_resuming_in_the_default_room_replays_nothing_twice(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("bob")
    _arrive(chat, "alice", "/ids")
    chat.type("bob", "one", "two")
    ids, _ = _ids_and_lines(chat.read("alice"))
    chat.quit("alice")
    chat.type("bob", "three")
    back = _arrive(chat, "alice", "/ids", f"/resume #lobby {ids[-1]}")
    _, lines = _ids_and_lines(back)
    assert lines == [
        "@#lobby *** Welcome, alice! #lobby has 2 users: alice, bob",
        "@N [T] <bob> three",
    ]


def test_a_room_one_may_no_longer_enter_is_said(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.operator("op")
    chat.join("bob")
    chat.type("op", "/join den", "/mode +i", "hello den")
    chat.clear()
    back = _arrive(chat, "alice", "/ids", "/resume den 0")
    assert back[0].startswith("@#lobby *** Welcome, alice!")
    assert back[1] == "! #den is invite-only; an operator can /invite you"
    assert chat.users["alice"][1].room is not None
    assert chat.users["alice"][1].room.name == "lobby"


def test_resume_mistakes(hubs: Hubs) -> None:
    chat = Chat(hubs)
    hub, member = chat.connect()
    member.take()
    hubs.type(hub, member, "/resume games", "/resume games x", "/resume bad#name 3")
    hubs.settle()
    assert member.take() == [
        "! usage: /resume ROOM ID (before choosing a nickname)",
        "! usage: /resume ROOM ID (before choosing a nickname)",
        "! room names may contain only letters, digits, '-' and '_'",
    ]
    chat.join("alice")
    chat.clear()
    chat.type("alice", "/resume games 3")
    assert chat.read("alice") == [
        "! /resume works only before choosing a nickname; /join ROOM"
    ]


def test_ids_asked_for_in_a_room_mark_its_lines_from_then_on(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob", "carol")
    chat.type("bob", "before")
    chat.hubs.settle()  # delivered: a line of the same turn is marked too
    chat.type("alice", "/ids")
    chat.type("bob", "after")
    ids, lines = _ids_and_lines(chat.read("alice"))
    assert lines == ["<bob> before", "@N <bob> after"]
    assert len(ids) == 1
    assert chat.read("carol") == ["<bob> before", "<bob> after"]


def test_without_history_there_are_no_ids(hubs: Hubs) -> None:
    chat = Chat(hubs, history=False)
    chat.join("bob")
    _arrive(chat, "alice", "/ids")
    chat.type("bob", "one")
    assert chat.read("alice") == ["<bob> one"]


def test_a_topic_stays_with_the_history(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice")
    chat.type("alice", "/join games", "/topic chess at eight", "/part")
    chat.clear()
    chat.type("alice", "/join games")
    assert chat.read("alice")[:2] == [
        "*** #games has 1 user: alice",
        "*** Topic of #games: chess at eight",
    ]
