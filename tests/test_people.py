"""
/ignore, /away and /whois on every backend (one process, one Redis node,
users spread over two Redis nodes).
"""

from __future__ import annotations

import re

from .support.hubs import Chat, Hubs


def test_ignore_stops_lines_actions_and_messages_server_side(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob", "carol")
    chat.type("alice", "/ignore Bob")
    assert chat.read("alice") == [
        "*** ignoring Bob: their lines and messages no longer reach you"
    ]
    chat.type("bob", "hello all", "/me waves", "/msg alice psst")
    assert chat.read("alice") == []
    assert chat.read("carol") == ["<bob> hello all", "* bob waves"]
    # bob is not told he is ignored.
    assert chat.read("bob") == ["-> *alice* psst"]
    _, alice = chat.users["alice"]
    assert not any(b"hello all" in data for data in alice.written)
    chat.type("alice", "/ignore bob", "/ignore alice", "/ignore")
    assert chat.read("alice") == [
        "! you are already ignoring Bob",
        "! you cannot ignore yourself",
        "*** you are ignoring Bob",
    ]
    # It follows alice from room to room.
    chat.type("alice", "/join games")
    chat.type("bob", "/join games")
    chat.clear()
    chat.type("bob", "in games")
    assert chat.read("alice") == []
    chat.type("alice", "/unignore bob", "/unignore bob")
    assert chat.read("alice") == [
        "*** no longer ignoring bob",
        "! you are not ignoring bob",
    ]
    chat.type("bob", "heard again")
    assert chat.read("alice") == ["<bob> heard again"]


def test_an_ignored_nicknames_past_lines_are_not_shown_either(hubs: Hubs) -> None:
    chat = Chat(hubs, history_replay=5)
    chat.join("alice", "bob", "carol")
    chat.type("bob", "/join games", "/topic chess", "old line", "/me old move")
    chat.type("carol", "/join games", "carol was here")
    chat.type("alice", "/ignore bob")
    chat.clear()
    chat.type("alice", "/join games")
    # The room's state (its topic, set by bob) still shows; bob's lines not.
    assert chat.read("alice") == [
        "*** #games has 3 users: alice, bob, carol",
        "*** Topic of #games: chess",
        "[T] *** bob set the topic of #games: chess",
        "[T] <carol> carol was here",
    ]
    # The last lines they can see: bob's two between are passed over.
    chat.type("alice", "/history 2")
    assert chat.read("alice") == [
        "[T] *** bob set the topic of #games: chess",
        "[T] <carol> carol was here",
    ]
    # Nothing at all to show is said, not left blank.
    chat.type("bob", "/part", "back in the lobby")
    chat.type("alice", "/part", "/history")
    assert chat.read("alice")[-1:] == [
        "*** No history in #lobby from anyone you do not ignore"
    ]
    chat.type("alice", "/join games")
    chat.clear()
    chat.type("alice", "/unignore bob", "/history 3")
    assert chat.read("alice")[1:] == [
        "[T] <bob> old line",
        "[T] * bob old move",
        "[T] <carol> carol was here",
    ]


def test_an_accounts_ignore_list_comes_back_at_login(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("troll")
    chat.type("alice", "/ignore troll")
    chat.quit("alice")
    chat.login("alice")
    chat.type("alice", "/ignore")
    assert chat.read("alice") == ["*** you are ignoring troll"]
    chat.type("troll", "still here?")
    assert chat.read("alice") == []
    # A guest's list goes with the connection.
    chat.join("guest")
    chat.type("guest", "/ignore troll")
    chat.quit("guest")
    chat.join("guest")
    chat.type("guest", "/ignore")
    assert chat.read("guest") == ["*** you are ignoring nobody"]


def test_away_tells_who_writes_privately(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob")
    chat.type("alice", "/away at lunch")
    assert chat.read("alice") == ["*** you are marked as away: at lunch"]
    chat.type("bob", "/msg alice are you there?")
    assert chat.read("bob") == [
        "-> *alice* are you there?",
        "*** alice is away: at lunch",
    ]
    assert chat.read("alice") == ["*bob* are you there?"]
    chat.type("alice", "/away", "/away")
    assert chat.read("alice") == [
        "*** you are back",
        "! usage: /away TEXT (and /away alone when you are back)",
    ]
    chat.type("bob", "/msg alice welcome back")
    assert chat.read("bob") == ["-> *alice* welcome back"]


def _since(lines: list[str]) -> list[str]:
    return [re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "[T]", line) for line in lines]


def test_whois(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice", host="198.51.100.4")
    chat.join("bob")
    chat.operator("dora")
    chat.type("alice", "/join games", "/away back soon")
    chat.clear()
    hubs.later(150)
    chat.type("bob", "/whois ALICE")
    assert _since(chat.read("bob")) == [
        "*** alice is in #games",
        "***   logged in to the account alice",
        "***   connected since [T]",
        "***   idle 2m",
        "***   away: back soon",
    ]
    chat.type("alice", "talking")
    chat.type("bob", "/whois alice")
    assert chat.read("bob")[3] == "***   idle less than a minute"
    # The address only to server operators.
    chat.type("dora", "/whois bob", "/whois dora")
    assert _since(chat.read("dora")) == [
        "*** bob is in #lobby",
        "***   a guest (not logged in)",
        "***   connected since [T]",
        "***   idle 2m",
        "***   connected from 192.0.2.1",
        "*** dora is in #lobby",
        "***   logged in to the account dora (server operator)",
        "***   connected since [T]",
        "***   idle 2m",
        "***   connected from 192.0.2.1",
    ]
    chat.type("bob", "/whois nobody", "/whois")
    assert chat.read("bob") == ["! no such user: nobody", "! usage: /whois NICK"]
