"""
Moderation, as users see it: the same lines on every backend (one
process, one Redis node, users spread over two Redis nodes), with bans
and mutes ending by a fake clock.
"""

from __future__ import annotations

from twchat.events import RoomInfo

from .support.hubs import Chat, Hubs


def founded(chat: Chat, nick: str, room: str = "games") -> None:
    """``nick`` (logged in) creates ``room`` and so becomes its founder."""
    chat.clear()
    chat.type(nick, f"/join {room}")
    lines = chat.read(nick)
    assert lines[0] == f"*** #{room} has 1 user: {nick}", lines
    assert lines[-1] == f"*** {nick} founded #{room} and is its operator", lines


def joined(chat: Chat, nick: str, room: str = "games") -> None:
    chat.read(nick)
    chat.type(nick, f"/join {room}")
    lines = chat.read(nick)
    assert lines[0].startswith(f"*** #{room} has "), lines


def test_a_logged_in_creator_founds_the_room_and_guests_may_not_act(
    hubs: Hubs,
) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("bob")
    founded(chat, "alice")
    joined(chat, "bob")
    chat.clear()
    for line in ("/kick alice", "/ban account:alice", "/mode +m", "/op bob"):
        chat.type("bob", line)
        assert chat.read("bob") == ["! you are not an operator of #games"]
    # Topics are the operators' in a founded room (+t by default).
    chat.type("bob", "/topic mine now")
    assert chat.read("bob") == ["! only operators set the topic of #games (mode +t)"]
    chat.type("bob", "/mode")
    assert chat.read("bob") == ["*** #games modes: +t"]
    assert chat.read("alice") == []  # refusals are nobody else's business
    # A guest creating a room founds nothing.
    chat.type("bob", "/join guests")
    assert chat.read("bob")[-1] == "*** #guests has 1 user: bob"
    chat.type("bob", "/topic free for all")
    assert chat.read("bob") == ["*** bob set the topic of #guests: free for all"]


def test_kick_sends_the_user_to_the_default_room_and_says_why(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("bob", "carol")
    founded(chat, "alice")
    joined(chat, "bob")
    joined(chat, "carol")
    chat.clear()
    chat.type("alice", "/kick bob spamming links")
    chat.sent_back("bob")
    assert chat.read("carol") == [
        "*** bob was kicked by alice: spamming links",
        "*** bob left for #lobby (2 here)",
    ]
    bob_lines = chat.read("bob")
    assert bob_lines[:2] == [
        "*** bob was kicked by alice: spamming links",
        "! you were kicked from #games by alice: spamming links",
    ]
    assert bob_lines[2].startswith("*** #lobby has ")
    assert chat.users["bob"][1].room is not None
    assert chat.users["bob"][1].room.name == "lobby"
    chat.clear()
    chat.type("alice", "/kick nobody")
    assert chat.read("alice") == ["! nobody is not in #games"]
    # Kicked is not banned: bob may come back.
    joined(chat, "bob")


def test_kick_from_the_default_room_disconnects(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.operator("dora")
    (bob,) = chat.join("bob")
    chat.join("carol")
    chat.clear()
    chat.type("dora", "/kick bob bye")
    assert bob.quit_reason == "kicked by dora"
    assert chat.read("bob")[-1] == "! you were kicked from #lobby by dora: bye"
    assert chat.read("carol") == [
        "*** bob was kicked by dora: bye",
        "*** bob left (2 here): kicked by dora",
    ]


def test_ban_by_account_holds_until_it_ends(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.register("bob", host="198.51.100.7")
    founded(chat, "alice")
    joined(chat, "bob")
    chat.clear()
    chat.type("alice", "/ban bob 2h trolling")
    chat.sent_back("bob")
    assert chat.read("alice") == [
        "*** alice banned account:bob from #games for 2h: trolling",
        "*** bob left for #lobby (1 here)",
    ]
    assert chat.read("bob")[:2] == [
        "*** alice banned account:bob from #games for 2h: trolling",
        "! you are banned from #games for 2h: trolling",
    ]
    chat.type("bob", "/join games")
    assert chat.read("bob") == ["! you are banned from #games for 2h: trolling"]
    # The account, not the name or the address: bob as a guest elsewhere...
    chat.quit("bob")
    chat.join("bobby", host="198.51.100.7")
    joined(chat, "bobby")
    chat.quit("bobby")
    # ...and bob again, from anywhere: still out.
    chat.login("bob", host="203.0.113.9")
    chat.type("bob", "/join games")
    assert chat.read("bob") == ["! you are banned from #games for 2h: trolling"]
    hubs.later(2 * 3600 + 1)
    joined(chat, "bob")


def test_ban_by_address_and_cidr_and_the_list(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("guest", host="198.51.100.7")
    chat.join("other", host="198.51.100.200")
    founded(chat, "alice")
    joined(chat, "guest")
    chat.clear()
    chat.type("alice", "/ban guest")  # a guest: their address
    chat.sent_back("guest")
    assert chat.read("alice")[0] == (
        "*** alice banned 198.51.100.7 from #games until lifted"
    )
    assert chat.read("guest")[1] == "! you are banned from #games"
    joined(chat, "other")  # another address
    chat.read("guest")
    chat.type("alice", "/ban 198.51.100.0/24 10m whole block")
    chat.sent_back("other")
    lines = chat.read("other")
    assert lines[1] == "! you are banned from #games for 10m: whole block"
    chat.clear()
    chat.type("alice", "/bans")
    assert chat.read("alice") == [
        "*** 2 bans in #games:",
        "***   198.51.100.7 by alice, until lifted",
        "***   198.51.100.0/24 by alice, 10m left: whole block",
    ]
    chat.type("alice", "/unban 198.51.100.0/24", "/unban 198.51.100.0/24")
    assert chat.read("alice") == [
        "*** alice lifted the ban on 198.51.100.0/24 in #games",
        "! no ban on 198.51.100.0/24 in #games",
    ]
    joined(chat, "other")
    chat.clear()
    chat.type("guest", "/join games")
    assert chat.read("guest") == ["! you are banned from #games"]
    chat.type("alice", "/ban not-a-mask!")
    assert chat.read("alice") == ["! no such user: not-a-mask!"]


def test_moderation_actions_are_counted(hubs: Hubs) -> None:
    # What --metrics reports (twchat_moderation_actions), on the actor's node.
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("bob")
    founded(chat, "alice")
    joined(chat, "bob")
    chat.type("alice", "/kick bob out", "/ban bob 1h")
    node = chat.users["alice"][0]
    assert node.stats.moderation == {"founded": 1, "kick": 1, "ban": 1}
    chat.type("alice", "/kick nobody")  # refused: not counted
    assert node.stats.moderation == {"founded": 1, "kick": 1, "ban": 1}


def test_mute_and_moderated_rooms(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("bob", host="198.51.100.1")
    chat.join("carol", host="198.51.100.2")
    founded(chat, "alice")
    joined(chat, "bob")
    joined(chat, "carol")
    chat.clear()
    chat.type("alice", "/mute bob 10m")
    assert chat.read("carol") == ["*** alice muted bob in #games for 10m"]
    chat.clear()
    chat.type("alice", "/mutes")
    assert chat.read("alice") == [
        "*** 1 mute in #games:",
        "***   198.51.100.1 by alice, 10m left",
    ]
    chat.type("carol", "/mutes")
    assert chat.read("carol") == ["! you are not an operator of #games"]
    chat.type("bob", "hello?", "/me waves")
    assert chat.read("bob")[-2:] == [
        "! you are muted in #games for 10m",
        "! you are muted in #games for 10m",
    ]
    assert chat.read("carol") == []
    chat.clear()
    chat.type("carol", "still here")
    assert chat.read("alice") == ["<carol> still here"]
    hubs.later(601)
    chat.type("bob", "back")
    assert chat.read("carol") == ["<bob> back"]
    chat.clear()
    chat.type("alice", "/mutes")
    assert chat.read("alice") == ["*** No mutes in #games"]  # it ran out
    chat.type("alice", "/mute bob  shouting again", "/mutes")
    assert chat.read("carol") == [
        "*** alice muted bob in #games until lifted: shouting again"
    ]
    assert chat.read("alice")[-1] == (
        "***   198.51.100.1 by alice, until lifted: shouting again"
    )
    chat.type("bob", "HELLO")
    assert chat.read("bob")[-1] == (
        "! you are muted in #games: shouting again"  # why, not only that
    )
    chat.type("alice", "/unmute bob")
    assert chat.read("carol") == ["*** alice unmuted bob in #games"]
    # +m: only operators and voiced users speak.
    chat.type("alice", "/mode +m")
    assert chat.read("carol") == ["*** alice set mode +m on #games"]
    chat.type("bob", "hi")
    assert chat.read("bob")[-1] == (
        "! #games is moderated (+m): only operators and voiced users speak"
    )
    chat.type("alice", "/voice bob")
    chat.type("bob", "thanks")
    assert chat.read("carol") == [
        "*** alice gave bob a voice in #games",
        "<bob> thanks",
    ]
    chat.type("alice", "moderating")
    assert chat.read("carol") == ["<alice> moderating"]
    chat.type("alice", "/mode -m+i")
    assert chat.read("carol") == ["*** alice set mode +i-m on #games"]


def test_invite_only_rooms(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("carol")
    founded(chat, "alice")
    chat.type("alice", "/mode +i")
    chat.clear()
    chat.type("carol", "/join games")
    assert chat.read("carol") == [
        "! #games is invite-only; an operator can /invite you"
    ]
    chat.clear()
    chat.type("alice", "/invite alice")
    assert chat.read("alice") == ["! alice is already in #games"]
    chat.type("alice", "/invite carol")
    assert chat.read("alice") == ["*** alice invited carol to #games"]
    assert chat.read("carol") == ["*alice* invites you to #games (/join games)"]
    chat.type("carol", "/join games")
    hubs.settle()
    # The invitation is used up in silence: nobody reads a line about it.
    assert chat.read("carol") == ["*** #games has 2 users: alice, carol"]
    assert chat.read("alice") == ["*** carol joined from #lobby (2 here)"]
    chat.type("alice", "/invite Carol")
    assert chat.read("alice") == ["! carol is already in #games"]
    assert chat.read("carol") == []
    chat.type("carol", "/part")
    chat.clear()
    chat.type("carol", "/join games")  # an invitation is used once
    assert chat.read("carol") == [
        "! #games is invite-only; an operator can /invite you"
    ]


def test_operators_persist_while_the_room_is_empty(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.register("bob")
    chat.join("carol")
    founded(chat, "alice")
    joined(chat, "bob")
    chat.clear()
    chat.type("alice", "/op carol")
    assert chat.read("alice") == ["! carol is not logged in to an account"]
    chat.type("alice", "/op bob", "/ban account:zed")
    chat.quit("alice")
    chat.type("bob", "/part")
    chat.clear()
    # The room is empty; its founder, operators and bans are kept.
    joined(chat, "bob")
    chat.type("bob", "/bans")
    assert chat.read("bob") == [
        "*** 1 ban in #games:",
        "***   account:zed by alice, until lifted",
    ]
    joined(chat, "carol")
    chat.type("bob", "/deop bob")
    chat.type("bob", "/kick carol")
    assert chat.read("bob")[-1] == "! you are not an operator of #games"
    chat.login("alice")
    chat.type("alice", "/join games", "/kick carol")
    assert "*** carol was kicked by alice" in chat.read("bob")


def test_the_founder_and_server_operators_are_protected(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.register("bob")
    chat.operator("dora")
    founded(chat, "alice")
    joined(chat, "bob")
    joined(chat, "dora")
    chat.type("alice", "/op bob")
    chat.clear()
    chat.type("bob", "/kick alice", "/ban alice", "/kick dora", "/mute dora")
    assert chat.read("bob") == [
        "! you cannot kick alice",
        "! you cannot do that to alice",
        "! you cannot kick dora",
        "! you cannot do that to dora",
    ]
    # A server operator acts everywhere, the founder included.
    chat.type("dora", "/mute alice 1m")
    assert chat.read("bob") == ["*** dora muted alice in #games for 1m"]


def test_a_status_change_that_changes_nothing_is_refused(hubs: Hubs) -> None:
    # Announced, it would tell the room of a status lost that is kept.
    chat = Chat(hubs)
    chat.register("alice")
    chat.register("bob")
    chat.operator("dora")
    chat.join("carol")
    founded(chat, "alice")
    for nick in ("bob", "carol", "dora"):
        joined(chat, nick)
    chat.type("alice", "/op bob", "/voice carol")
    chat.clear()
    chat.type(
        "alice",
        "/op bob",
        "/deop alice",
        "/op alice",
        "/deop dora",
        "/voice carol",
        "/devoice bob",
    )
    assert chat.read("alice") == [
        "! bob is already an operator of #games",
        "! alice founded #games and is always its operator",
        "! alice founded #games and is always its operator",
        "! dora is a server operator: an operator everywhere",
        "! carol already has a voice in #games",
        "! bob has no voice in #games",
    ]
    assert chat.read("carol") == []
    chat.type("alice", "/deop bob", "/deop bob", "/devoice carol")
    assert chat.read("alice") == [
        "*** alice took operator status in #games from bob",
        "! bob is not an operator of #games",
        "*** alice took carol's voice in #games",
    ]


def test_a_mistyped_duration_is_refused_not_read_as_the_reason(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.operator("dora")
    chat.join("bob", host="198.51.100.9")
    chat.clear()
    chat.type("dora", "/ban bob 1hr spam", "/mute bob 2y", "/gban bob 0s", "/bans")
    durations = "use 30s, 10m, 2h, 7d or 2w (at most a year)"
    assert chat.read("dora") == [
        f"! bad duration 1hr: {durations}",
        f"! bad duration 2y: {durations}",
        f"! bad duration 0s: {durations}",
        "*** No bans in #lobby",
    ]
    assert chat.read("bob") == []
    chat.type("bob", "still here")
    assert chat.read("dora") == ["<bob> still here"]


def test_the_moderation_log(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("bob")
    founded(chat, "alice")
    joined(chat, "bob")
    chat.type("alice", "/kick bob flooding", "/ban 203.0.113.0/24 1d spam")
    chat.sent_back("bob")
    chat.clear()
    chat.type("alice", "/modlog")
    lines = chat.read("alice")
    assert lines[0] == "*** The last 3 moderation actions:"
    assert lines[1].endswith(" #games alice founded")
    assert lines[2].endswith(" #games alice kick bob: flooding")
    assert lines[3].endswith(" #games alice ban 203.0.113.0/24 for 1d: spam")
    chat.type("bob", "/modlog")
    assert chat.read("bob") == ["! you are not an operator of #lobby"]


def test_help_lists_what_the_user_may_use(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.join("bob")
    founded(chat, "alice")
    joined(chat, "bob")
    chat.type("bob", "/help")
    assert "*** Operator commands (in your room):" not in chat.read("bob")
    chat.type("alice", "/help")
    assert "*** Operator commands (in your room):" in chat.read("alice")


def test_server_operators_kill_ban_from_the_server_and_wall(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.operator("dora")
    (bob,) = chat.join("bob", host="198.51.100.9")
    chat.join("carol", host="203.0.113.5")
    chat.type("carol", "/join games")
    chat.clear()
    chat.type("bob", "/kill carol", "/wall hi", "/gbans")
    assert chat.read("bob") == ["! you are not a server operator"] * 3
    chat.type("dora", "/wall maintenance at noon")
    notice = "*** notice from dora to everyone: maintenance at noon"
    assert chat.read("carol") == [notice]
    assert chat.read("bob") == [notice]
    chat.type("dora", "/kill carol enough")
    hubs.settle()
    assert chat.users["carol"][1].quit_reason == "killed by dora"
    assert chat.read("carol")[-1] == "! you were disconnected by dora: enough"
    chat.users.pop("carol")
    chat.clear()
    # A server ban by address: who is here goes, and nobody comes back.
    chat.type("dora", "/gban 198.51.100.0/24 1h spam")
    assert chat.read("dora")[0] == (
        "*** 198.51.100.0/24 is banned from this server for 1h: spam"
    )
    hubs.settle()
    assert bob.quit_reason == "banned from the server"
    assert chat.read("bob")[-1] == "! you are banned from this server: spam"
    chat.users.pop("bob")
    hub, again = chat.connect()
    again.host = "198.51.100.77"
    hubs.done(hub.greet(again))
    assert again.take()[-1] == "! you are banned from this server for 1h: spam"
    chat.type("dora", "/gbans")
    assert chat.read("dora") == [
        "*** 1 ban on this server:",
        "***   198.51.100.0/24 by dora, 1h left: spam",
    ]
    chat.type("dora", "/ungban 198.51.100.0/24", "/ungban 198.51.100.0/24")
    assert chat.read("dora") == [
        "*** 198.51.100.0/24 is no longer banned from this server",
        "! no server ban on 198.51.100.0/24",
    ]
    chat.join("bob", host="198.51.100.9")


def test_a_server_operator_cannot_ban_themselves_from_the_server(hubs: Hubs) -> None:
    # On one machine every guest shares the operator's address: banning one
    # by nickname would have shut the operator out at their next connect.
    chat = Chat(hubs)
    chat.operator("dora", host="198.51.100.4")
    chat.join("bob", host="198.51.100.4")
    chat.clear()
    chat.type("dora", "/gban bob", "/gban 198.51.100.0/24 1h", "/gban account:Dora")
    assert chat.read("dora") == [
        "! 198.51.100.4 would ban you too; name someone else",
        "! 198.51.100.0/24 would ban you too; name someone else",
        "! account:dora would ban you too; name someone else",
    ]
    chat.type("dora", "/gbans")
    assert chat.read("dora") == ["*** No bans on this server"]
    assert chat.read("bob") == []


def test_a_server_ban_by_account_is_checked_at_login(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.operator("dora")
    chat.register("mallory")
    chat.quit("mallory")
    chat.type("dora", "/gban account:mallory")
    hub, member = chat.connect()
    member.take()
    hubs.type(hub, member, "mallory", "correct-horse")
    assert member.take()[-2:] == [
        "! you are banned from this server",
        "? Choose a nickname:",
    ]
    assert member.nick == ""


def test_who_names_the_rooms_operators(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.register("alice")
    chat.register("bob")
    chat.join("carol")
    founded(chat, "alice")
    joined(chat, "bob")
    joined(chat, "carol")
    chat.type("alice", "/op bob")
    _, carol = chat.users["carol"]
    chat.clear()
    chat.type("carol", "/who")
    info = carol.events[-1]
    assert isinstance(info, RoomInfo)
    assert info.names == ("alice", "bob", "carol")
    assert info.operators == ("alice", "bob")
    # The text wire names them on a line of their own.
    assert chat.read("carol") == [
        "*** #games has 3 users: alice, bob, carol",
        "***   operators: alice, bob",
    ]
    chat.type("carol", "/who lobby")
    info = carol.events[-1]
    assert isinstance(info, RoomInfo)
    assert info.operators == ()  # nobody was made one there
    assert chat.read("carol") == ["*** Nobody is in #lobby"]
