"""
The chat's rules, one suite run over every backend.

In one process, on one Redis node, and with users spread over two Redis
nodes, every notice, error and limit in the README's tables must read
the same: a rule that differs between backends fails here.
"""

from __future__ import annotations

from twchat.events import Error
from twchat.hub import WELCOME_NAMES
from twchat.room import PresencePolicy

from .support.fakes import RecordingMember
from .support.hubs import Chat, Hubs, SlowRoomState


def test_registration_welcome_and_announcement(hubs: Hubs) -> None:
    chat = Chat(hubs)
    hub, first = chat.connect()
    assert first.take() == [
        "*** Welcome to twchat! Nobody else is here yet.",
        "? Choose a nickname:",
    ]
    (carol,) = chat.join("carol")
    hubs.type(hub, first, "Alice")
    hubs.settle()
    # Not in join order (carol came first): the welcome and /who agree.
    assert first.take() == ["*** Welcome, Alice! #lobby has 2 users: Alice, carol"]
    assert carol.take() == ["*** Alice joined (2 here)"]
    hubs.type(hub, first, "/who")
    hubs.settle()
    assert first.take() == ["*** #lobby has 2 users: Alice, carol"]
    hub, late = chat.connect()
    assert late.take()[0] == "*** Welcome to twchat! 2 users online."


def test_nickname_refusals_prompt_again(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice")
    hub, member = chat.connect()
    member.take()
    for name, error in [
        ("ALICE", "! nickname ALICE is already taken"),
        ("", "! nickname cannot be empty"),
        ("9lives", "! nickname must not start with a digit or '-'"),
        ("a" * 25, "! nickname is too long (25 characters, max 24)"),
        (
            "al ice",
            "! nickname contains U+0020; use only ASCII letters, digits and _-[]{}|^`",
        ),
        ("admin", "! nickname admin is reserved"),
    ]:
        hubs.type(hub, member, name)
        assert member.take() == [error, "? Choose a nickname:"], name
    hubs.type(hub, member, "/who")
    assert member.take() == ["! choose a nickname first", "? Choose a nickname:"]
    assert member.nick == ""


def test_welcome_lists_a_sample_in_big_rooms(hubs: Hubs) -> None:
    chat = Chat(hubs)
    names = [f"u{i:02}" for i in range(WELCOME_NAMES + 2)]
    chat.join(*names)
    hub, member = chat.connect()
    member.take()
    hubs.type(hub, member, "zed")
    hubs.settle()
    welcome = member.take()
    listed = ", ".join(names[:WELCOME_NAMES])
    assert welcome == [
        f"*** Welcome, zed! #lobby has {WELCOME_NAMES + 3} users: {listed} "
        "and 3 more (/who lists everyone)"
    ]


def test_chat_actions_and_no_echo(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob", "carol")
    chat.type("alice", "hi all", "/me waves", "\x1b]0;pwned\x07clean", "\x00\x01")
    expected = ["<alice> hi all", "* alice waves", "<alice> clean"]
    assert chat.read("bob") == expected
    assert chat.read("carol") == expected
    assert chat.read("alice") == [
        "! nothing left to send once control characters were removed"
    ]
    chat.type("alice", "/me", "//not a command")
    assert chat.read("alice") == ["! usage: /me ACTION"]
    assert chat.read("bob") == ["<alice> /not a command"]


def test_one_order_for_everyone(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob", "carol")
    for i in range(20):
        chat.type("alice" if i % 2 else "bob", f"line {i}")
    seen = chat.read("carol")
    assert seen == [f"<{'alice' if i % 2 else 'bob'}> line {i}" for i in range(20)]


def test_nickname_changes(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob")
    chat.type("bob", "/nick alice")
    assert chat.read("bob") == ["! nickname alice is already taken"]
    chat.type("bob", "/nick bob")
    assert chat.read("bob") == ["! you are already called bob"]
    chat.type("bob", "/nick rob")
    assert chat.read("bob") == ["*** bob is now known as rob"]
    assert chat.read("alice") == ["*** bob is now known as rob"]
    chat.type("alice", "/nick Alice")
    assert chat.read("alice") == ["*** alice is now known as Alice"]
    # The old name is free again.
    hub, member = chat.connect()
    hubs.type(hub, member, "bob")
    assert member.nick == "bob"
    chat.clear()
    chat.type("alice", "/msg rob psst")
    assert chat.read("alice") == ["-> *rob* psst"]


def test_private_messages(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob", "carol")
    chat.type("alice", "/msg BOB psst", "/msg dave hi", "/msg alice me", "/msg bob")
    assert chat.read("alice") == [
        "-> *bob* psst",
        "! no such user: dave",
        "! you cannot send a private message to yourself",
        "! usage: /msg NICK TEXT",
    ]
    assert chat.read("bob") == ["*alice* psst"]
    assert chat.read("carol") == []


def test_rooms_joins_and_parts(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob", "carol")
    chat.type("bob", "/join Games")
    assert chat.read("bob") == ["*** #Games has 1 user: bob"]
    assert chat.read("alice") == ["*** bob left for #Games (2 here)"]
    chat.read("carol")
    chat.type("carol", "/join #games")
    assert chat.read("carol") == ["*** #Games has 2 users: bob, carol"]
    assert chat.read("bob") == ["*** carol joined from #lobby (2 here)"]
    chat.type("carol", "in games")
    assert chat.read("bob") == ["<carol> in games"]
    assert chat.read("alice") == ["*** carol left for #Games (1 here)"]
    chat.type("carol", "/join games", "/join bad!name", "/join", "/join " + "x" * 33)
    assert chat.read("carol") == [
        "! you are already in #Games",
        "! room names may contain only letters, digits, '-' and '_'",
        "! usage: /join ROOM",
        "! room name is too long (max 32 characters)",
    ]
    chat.type("alice", "/part")
    assert chat.read("alice") == ["! you are already in #lobby"]
    chat.type("carol", "/part")
    assert chat.read("carol") == ["*** #lobby has 2 users: alice, carol"]
    assert chat.read("bob") == ["*** carol left for #lobby (1 here)"]
    assert chat.read("alice") == ["*** carol joined from #Games (2 here)"]


def test_who_and_rooms(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("carol", "Bob", "alice")
    chat.type("alice", "/join chess", "/topic openings")
    chat.clear()
    chat.type("carol", "/who")
    assert chat.read("carol") == ["*** #lobby has 2 users: Bob, carol"]
    chat.type("carol", "/who CHESS", "/who nowhere", "/who #nowhere")
    chat.type("carol", "/who lobby extra", "/rooms")
    assert chat.read("carol") == [
        "*** #chess has 1 user: alice",
        "! no such room: #nowhere",
        "! no such room: #nowhere",
        "! usage: /who [ROOM]",
        "*** 2 rooms:",
        "***   #chess (1): openings",
        "***   #lobby (2)",
    ]


def test_topics(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob")
    chat.type("alice", "/topic")
    assert chat.read("alice") == ["*** #lobby has no topic"]
    chat.type("alice", "/topic welcome all")
    told = ["*** alice set the topic of #lobby: welcome all"]
    assert chat.read("alice") == told
    assert chat.read("bob") == told
    chat.type("bob", "/topic")
    assert chat.read("bob") == ["*** Topic of #lobby: welcome all"]
    chat.type("bob", "/topic \x07")
    assert chat.read("bob") == [
        "! nothing left to send once control characters were removed"
    ]
    # A room's topic stays with its history when the room empties.
    chat.type("bob", "/join games", "/topic chess")
    chat.clear()
    chat.type("bob", "/part", "/join games")
    assert chat.read("bob") == [
        "*** #lobby has 2 users: alice, bob",
        "*** Topic of #lobby: welcome all",
        "[T] *** alice set the topic of #lobby: welcome all",
        "*** #games has 1 user: bob",
        "*** Topic of #games: chess",
        "[T] *** bob set the topic of #games: chess",
    ]


def test_entering_a_room_shows_its_topic_and_past(hubs: Hubs) -> None:
    chat = Chat(hubs, history_replay=3)
    chat.join("alice", "bob")
    chat.type("alice", "/join games", "/topic chess", "one", "/me moves", "three")
    chat.clear()
    chat.type("bob", "/join games")
    assert chat.read("bob") == [
        "*** #games has 2 users: alice, bob",
        "*** Topic of #games: chess",
        "[T] <alice> one",
        "[T] * alice moves",
        "[T] <alice> three",
    ]
    chat.type("bob", "/history 2", "/history many")
    assert chat.read("bob") == [
        "[T] * alice moves",
        "[T] <alice> three",
        "! usage: /history [N]",
    ]
    chat.type("bob", "/history 100")
    assert len(chat.read("bob")) == 4  # the topic line counts
    chat.type("bob", "/join empty", "/history")
    assert chat.read("bob")[-1] == "*** No history in #empty yet"


def test_a_newcomer_is_shown_the_room_before_what_happens_in_it(hubs: Hubs) -> None:
    # Their roll call waits (for the room's moderation state, read the first
    # time someone enters it on a node): what is said and who comes in
    # meanwhile follows their welcome and the room's past, once each.
    chat = Chat(hubs, history_replay=3)
    chat.join("alice")
    chat.type("alice", "before")
    slow = [SlowRoomState(hub) for hub in chat.nodes]
    hub, bob = chat.connect()
    chat.users["bob"] = (hub, bob)
    bob.take()
    registering = hubs.type_later(hub, bob, "bob")
    hubs.until(lambda: sum(s.waiting for s in slow) == 1)
    chat.type("alice", "during")
    hub, carol = chat.connect()
    chat.users["carol"] = (hub, carol)
    carol.take()
    arriving = hubs.type_later(hub, carol, "carol")
    hubs.until(lambda: sum(s.waiting for s in slow) == 2)
    hubs.settle()
    for state in slow:
        state.arrive()
    hubs.done(registering)
    hubs.done(arriving)
    assert chat.read("bob") == [
        "*** Welcome, bob! #lobby has 2 users: alice, bob",
        "[T] <alice> before",
        "<alice> during",
        "*** carol joined (3 here)",
    ]
    assert chat.read("carol") == [
        "*** Welcome, carol! #lobby has 3 users: alice, bob, carol",
        "[T] <alice> before",
        "[T] <alice> during",
    ]
    assert chat.read("alice") == [
        "*** bob joined (2 here)",
        "*** carol joined (3 here)",
    ]


def test_one_moving_in_is_shown_the_room_before_what_happens_in_it(
    hubs: Hubs,
) -> None:
    chat = Chat(hubs, history_replay=3)
    chat.join("alice", "bob")
    chat.type("alice", "/join games", "/topic chess", "before")
    chat.clear()
    slow = [SlowRoomState(hub) for hub in chat.nodes]
    hub, bob = chat.users["bob"]
    moving = hubs.type_later(hub, bob, "/join games")
    hubs.until(lambda: sum(s.waiting for s in slow) == 1)
    chat.type("alice", "during", "/topic go")
    for state in slow:
        state.arrive()
    hubs.done(moving)
    assert chat.read("bob") == [
        "*** #games has 2 users: alice, bob",
        "*** Topic of #games: chess",
        "[T] *** alice set the topic of #games: chess",
        "[T] <alice> before",
        "<alice> during",
        "*** alice set the topic of #games: go",
    ]


def test_history_turned_off(hubs: Hubs) -> None:
    chat = Chat(hubs, history=False)
    chat.join("alice")
    chat.type("alice", "/history")
    assert chat.read("alice") == ["! history is turned off on this server"]


def test_the_room_limit(hubs: Hubs) -> None:
    chat = Chat(hubs, max_rooms=2)
    chat.join("alice", "bob")
    chat.type("alice", "/join one")
    chat.clear()
    chat.type("bob", "/join two")
    assert chat.read("bob") == ["! too many rooms (max 2); join one that exists"]
    chat.type("bob", "/join ONE")
    assert chat.read("bob") == ["*** #one has 2 users: alice, bob"]
    # Once empty, a room is gone and its place free.
    chat.type("alice", "/part")
    chat.type("bob", "/part", "/join two")
    assert chat.read("bob")[-1] == "*** #two has 1 user: bob"


def test_leaving_says_why(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob", "carol")
    hub, bob = chat.users["bob"]
    chat.quit("bob", "see you\x1b[2J")
    hub.leave(bob, "again")  # a second leave (the connection closing) is nothing
    assert chat.read("alice") == ["*** bob left (2 here): see you"]
    chat.quit("carol")
    assert chat.read("alice") == ["*** carol left (1 here)"]
    chat.type("alice", "/who")
    assert chat.read("alice") == ["*** #lobby has 1 user: alice"]


def test_big_rooms_sum_presence_up(hubs: Hubs) -> None:
    interval = 0.2
    chat = Chat(hubs, presence=PresencePolicy(batch_above=3, interval=interval))
    (watcher,) = chat.join("watcher")
    for nick in "abcde":
        chat.join(nick)
    chat.quit("a")
    hubs.later(interval)
    hubs.until(lambda: any("3 joined" in line for line in watcher.lines))
    assert chat.read("watcher") == [
        "*** a joined (2 here)",
        "*** b joined (3 here)",
        "*** 3 joined: c, d, e; 1 left: a (5 here)",
    ]


def test_no_notices_while_the_server_closes(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("alice", "bob", "carol")
    hub, _ = chat.users["alice"]
    assert chat.users["carol"][0] is hub
    hub.lifecycle.closing = True  # as the server does on shutdown
    hub.close()
    chat.type("bob", "still here")
    chat.quit("carol")
    # Users of a closing server hear nothing more but the goodbye.
    assert chat.read("alice") == []


def test_errors_say_when_the_users_own_line_did_not_go_out(hubs: Hubs) -> None:
    # The page gives such a line back to be edited (``unsent`` in JSON).
    chat = Chat(hubs)
    alice = chat.register("alice")
    (bob,) = chat.join("bob")
    hub = chat.users["bob"][0]

    def refused(member: RecordingMember) -> list[tuple[str, bool]]:
        hubs.settle()
        errors = [(e.text, e.unsent) for e in member.events if isinstance(e, Error)]
        member.events.clear()
        return errors

    chat.type("bob", "/msg dave hi", "/nosuch", "/me")
    assert refused(bob) == [
        ("no such user: dave", True),
        ("unknown command /nosuch; /help lists the commands", False),
        ("usage: /me ACTION", False),
    ]
    hub.line_refused(bob, "line too long (max 512 bytes); it was not sent")
    assert refused(bob) == [("line too long (max 512 bytes); it was not sent", True)]
    chat.type("bob", "/nick alice")  # an account: its password is asked
    hub.line_refused(bob, "line too long (max 512 bytes); it was not sent")
    assert refused(bob) == [("line too long (max 512 bytes); it was not sent", False)]
    chat.type("bob", "")  # bob he stays
    _, newcomer = chat.connect()
    hub.line_refused(newcomer, "line too long (max 512 bytes); it was not sent")
    assert refused(newcomer) == [  # a nickname, at the prompt: no line of theirs
        ("line too long (max 512 bytes); it was not sent", False)
    ]
    chat.type("alice", "/join games")
    chat.type("bob", "/join games")
    chat.type("alice", "/mute bob 10m")
    refused(alice)
    chat.type("bob", "can I?", "/me tries")
    assert refused(bob) == [
        ("you are muted in #games for 10m", True),
        ("you are muted in #games for 10m", True),
    ]
