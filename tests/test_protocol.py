"""What a user on nc sees, over StringTransport."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from twchat.commands import HELP
from twchat.room import PresencePolicy

from .support.fakes import FakeUser, make_server, register, room


class HandshakeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server()

    def test_greeting_then_prompt(self) -> None:
        user = FakeUser(self.server)
        self.assertEqual(
            user.read(),
            ["*** Welcome to twchat! Nobody else is here yet.", "? Choose a nickname:"],
        )

    def test_first_line_is_the_nickname(self) -> None:
        user = FakeUser(self.server)
        user.read()
        user.send("alice")
        self.assertEqual(user.read(), ["*** Welcome, alice! #lobby has 1 user: alice"])
        self.assertIn("alice", self.server.hub.users)

    def test_crlf_and_surrounding_spaces(self) -> None:
        user = FakeUser(self.server)
        user.send("  alice ", eol=b"\r\n")
        self.assertEqual(
            user.read()[-1], "*** Welcome, alice! #lobby has 1 user: alice"
        )

    def test_slash_nick_is_accepted_as_the_answer(self) -> None:
        user = FakeUser(self.server)
        user.send("/nick alice")
        self.assertEqual(
            user.read()[-1], "*** Welcome, alice! #lobby has 1 user: alice"
        )

    def test_each_bad_nickname_is_explained_and_asked_again(self) -> None:
        allowed = "use only ASCII letters, digits and _-[]{}|^`"
        cases = {
            "": "! nickname cannot be empty",
            "al ice": f"! nickname contains U+0020; {allowed}",
            "9lives": "! nickname must not start with a digit or '-'",
            "-dash": "! nickname must not start with a digit or '-'",
            "a" * 25: "! nickname is too long (25 characters, max 24)",
            "server": "! nickname server is reserved",
            "\u0430lice": f"! nickname contains U+0430; {allowed}",
        }
        user = FakeUser(self.server)
        user.read()
        for nick, error in cases.items():
            user.send(nick)
            self.assertEqual(user.read(), [error, "? Choose a nickname:"], nick)
        self.assertFalse(user.closing)
        user.send("alice")
        self.assertEqual(
            user.read()[-1], "*** Welcome, alice! #lobby has 1 user: alice"
        )

    def test_taken_nickname_in_any_case(self) -> None:
        register(self.server, "alice")
        user = FakeUser(self.server)
        user.read()
        for nick in ["alice", "ALICE", "Alice"]:
            user.send(nick)
            self.assertEqual(
                user.read(),
                [f"! nickname {nick} is already taken", "? Choose a nickname:"],
            )
        user.send("bob")
        self.assertEqual(
            user.read(), ["*** Welcome, bob! #lobby has 2 users: alice, bob"]
        )

    def test_unregistered_users_hear_no_chat(self) -> None:
        alice, bob = room(self.server, "alice", "bob")
        lurker = FakeUser(self.server)
        lurker.read()
        alice.send("secret plans")
        self.assertEqual(lurker.read(), [])
        self.assertEqual(bob.read(), ["<alice> secret plans"])

    def test_commands_before_registration(self) -> None:
        user = FakeUser(self.server)
        user.read()
        user.send("/who")
        self.assertEqual(
            user.read(), ["! choose a nickname first", "? Choose a nickname:"]
        )
        user.send("/help")
        self.assertEqual(len(user.read()), len(HELP) + 1)
        user.send("/quit")
        self.assertEqual(user.read(), ["*** Goodbye!"])
        self.assertTrue(user.closing)

    def test_join_is_announced_to_everyone_else(self) -> None:
        alice, bob = room(self.server, "alice", "bob")
        carol = register(self.server, "carol")
        self.assertEqual(alice.read(), ["*** carol joined (3 here)"])
        self.assertEqual(bob.read(), ["*** carol joined (3 here)"])
        self.assertEqual(carol.read(), [])


class ChatTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server()
        self.alice, self.bob, self.carol = room(self.server, "alice", "bob", "carol")

    def test_line_reaches_everyone_else_with_nick_and_no_echo(self) -> None:
        self.alice.send("hello all")
        self.assertEqual(self.bob.read(), ["<alice> hello all"])
        self.assertEqual(self.carol.read(), ["<alice> hello all"])
        self.assertEqual(self.alice.read(), [])

    def test_everyone_sees_the_server_order(self) -> None:
        for i in range(20):
            (self.alice if i % 2 else self.bob).send(f"line {i}")
        seen_by_carol = self.carol.read()
        self.assertEqual(
            seen_by_carol,
            [f"<{'alice' if i % 2 else 'bob'}> line {i}" for i in range(20)],
        )

    def test_several_lines_in_one_packet_keep_order(self) -> None:
        self.alice.send("one", "two", "three")
        self.assertEqual(
            self.bob.read(), ["<alice> one", "<alice> two", "<alice> three"]
        )

    def test_unicode_round_trip(self) -> None:
        self.alice.send("café 日本 🙂")
        self.assertEqual(self.bob.read(), ["<alice> café 日本 🙂"])

    def test_empty_lines_are_ignored(self) -> None:
        self.alice.send("", "   ")
        self.assertEqual(self.bob.read(), [])
        self.assertEqual(self.alice.read(), [])

    def test_double_slash_sends_a_line_starting_with_slash(self) -> None:
        self.alice.send("//usr/bin is full")
        self.assertEqual(self.bob.read(), ["<alice> /usr/bin is full"])

    def test_terminal_escapes_are_not_relayed(self) -> None:
        self.alice.send("\x1b[2J\x1b]0;pwned\x07hi \u202ethere\x00")
        self.assertEqual(self.bob.read(), ["<alice> hi there"])

    def test_over_long_line_is_refused_and_nothing_else_disturbed(self) -> None:
        self.alice.send("x" * 513, "after")
        self.assertEqual(
            self.alice.read(), ["! line too long (max 512 bytes); it was not sent"]
        )
        self.assertEqual(self.bob.read(), ["<alice> after"])
        self.alice.send("y" * 512)
        self.assertEqual(self.bob.read(), ["<alice> " + "y" * 512])
        self.assertFalse(self.alice.closing)

    def test_over_long_line_without_newline_is_refused_early(self) -> None:
        self.alice.raw(b"z" * 16384)
        self.assertEqual(
            self.alice.read(), ["! line too long (max 512 bytes); it was not sent"]
        )
        self.alice.raw(b"zzz\nok\n")
        self.assertEqual(self.bob.read(), ["<alice> ok"])

    def test_invalid_utf8_is_refused_and_not_relayed(self) -> None:
        for bad in [b"hi\xaa", b"\xc0\xaf", b"\xed\xa0\x80"]:
            self.alice.send(bad)
            self.assertEqual(
                self.alice.read(), ["! your line was not valid UTF-8; it was not sent"]
            )
        self.alice.send("still here")
        self.assertEqual(self.bob.read(), ["<alice> still here"])
        self.assertFalse(self.alice.closing)

    def test_split_multibyte_character_across_packets(self) -> None:
        data = "emoji 🙂\n".encode()
        for i in range(len(data)):
            self.alice.raw(data[i : i + 1])
        self.assertEqual(self.bob.read(), ["<alice> emoji 🙂"])


class CommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server()
        self.alice, self.bob, self.carol = room(self.server, "alice", "bob", "carol")

    def test_who(self) -> None:
        self.bob.send("/who")
        self.assertEqual(self.bob.read(), ["*** #lobby has 3 users: alice, bob, carol"])
        self.assertEqual(self.alice.read(), [])

    def test_command_names_ignore_case(self) -> None:
        self.bob.send("/WHO")
        self.assertEqual(self.bob.read(), ["*** #lobby has 3 users: alice, bob, carol"])

    def test_private_message_reaches_only_its_target(self) -> None:
        self.alice.send("/msg Bob meet me at 5")
        self.assertEqual(self.bob.read(), ["*alice* meet me at 5"])
        self.assertEqual(self.alice.read(), ["-> *bob* meet me at 5"])
        self.assertEqual(self.carol.read(), [])

    def test_private_message_errors(self) -> None:
        self.alice.send("/msg dave hello")
        self.assertEqual(self.alice.read(), ["! no such user: dave"])
        self.alice.send("/msg bob")
        self.assertEqual(self.alice.read(), ["! usage: /msg NICK TEXT"])
        self.alice.send("/msg")
        self.assertEqual(self.alice.read(), ["! usage: /msg NICK TEXT"])
        self.alice.send("/msg alice hi me")
        self.assertEqual(
            self.alice.read(), ["! you cannot send a private message to yourself"]
        )
        self.assertEqual(self.bob.read() + self.carol.read(), [])

    def test_me(self) -> None:
        self.alice.send("/me waves")
        self.assertEqual(self.bob.read(), ["* alice waves"])
        self.assertEqual(self.carol.read(), ["* alice waves"])
        self.assertEqual(self.alice.read(), [])
        self.alice.send("/me")
        self.assertEqual(self.alice.read(), ["! usage: /me ACTION"])

    def test_nick_change_is_told_to_everyone(self) -> None:
        self.bob.send("/nick rob")
        for user in (self.alice, self.bob, self.carol):
            self.assertEqual(user.read(), ["*** bob is now known as rob"])
        self.bob.send("hi")
        self.assertEqual(self.alice.read(), ["<rob> hi"])
        self.assertNotIn("bob", self.server.hub.users)
        register(self.server, "bob")

    def test_nick_change_follows_the_rules(self) -> None:
        self.bob.send("/nick ALICE")
        self.assertEqual(self.bob.read(), ["! nickname ALICE is already taken"])
        self.bob.send("/nick 1x")
        self.assertEqual(
            self.bob.read(), ["! nickname must not start with a digit or '-'"]
        )
        self.bob.send("/nick")
        self.assertEqual(self.bob.read(), ["! usage: /nick NEW"])
        self.bob.send("/nick bob")
        self.assertEqual(self.bob.read(), ["! you are already called bob"])
        self.assertEqual(self.alice.read(), [])

    def test_unknown_command_is_an_error_and_not_broadcast(self) -> None:
        self.alice.send("/dance wildly")
        self.assertEqual(
            self.alice.read(), ["! unknown command /dance; /help lists the commands"]
        )
        self.assertEqual(self.bob.read(), [])

    def test_help_lists_every_command(self) -> None:
        self.alice.send("/help")
        lines = self.alice.read()
        text = "\n".join(lines)
        for command in ["/who", "/msg", "/me", "/nick", "/quit", "/help", "//"]:
            self.assertIn(command, text)
        self.assertTrue(all(line.startswith("*** ") for line in lines))

    def test_quit_with_reason(self) -> None:
        self.bob.send("/quit gone fishing")
        self.assertEqual(self.bob.read(), ["*** Goodbye!"])
        self.assertTrue(self.bob.closing)
        self.assertEqual(self.alice.read(), ["*** bob left (2 here): gone fishing"])
        self.bob.close()
        self.assertEqual(self.alice.read(), [])

    def test_quit_without_reason(self) -> None:
        self.bob.send("/quit")
        self.assertEqual(self.carol.read(), ["*** bob left (2 here)"])

    def test_lines_after_quit_in_the_same_packet_are_ignored(self) -> None:
        self.bob.send("/quit", "after quit")
        self.assertEqual(self.alice.read(), ["*** bob left (2 here)"])


class LeavingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server()
        self.alice, self.bob = room(self.server, "alice", "bob")

    def test_eof(self) -> None:
        self.bob.close(clean=True)
        self.assertEqual(
            self.alice.read(), ["*** bob left (1 here): connection closed"]
        )
        self.assertNotIn("bob", self.server.hub.users)
        self.assertEqual(len(self.server.pool.connections), 1)

    def test_reset(self) -> None:
        self.bob.close(clean=False)
        self.assertEqual(self.alice.read(), ["*** bob left (1 here): connection lost"])

    def test_unregistered_leave_silently(self) -> None:
        lurker = FakeUser(self.server)
        lurker.close()
        self.assertEqual(self.alice.read(), [])
        self.assertEqual(len(self.server.pool.connections), 2)

    def test_nickname_is_free_again(self) -> None:
        self.bob.close()
        register(self.server, "BOB")


class BigRoomTests(SynchronousTestCase):
    def test_joins_in_a_big_room_arrive_as_one_summary(self) -> None:
        server, clock = make_server(presence=PresencePolicy(batch_above=2, interval=3))
        alice, bob = room(server, "alice", "bob")
        register(server, "carol")
        register(server, "dave")
        self.assertEqual(alice.read(), [])
        clock.advance(3)
        self.assertEqual(alice.read(), ["*** 2 joined: carol, dave (4 here)"])
        self.assertEqual(bob.read(), ["*** 2 joined: carol, dave (4 here)"])


class WaitingActionTests(SynchronousTestCase):
    """An action that finishes later (Redis mode) holds the user's next lines."""

    def test_next_lines_wait_until_the_action_is_done(self) -> None:
        server, clock = make_server()
        alice = register(server, "alice")
        alice.read()
        said: list[str] = []
        pending: list[Deferred[None]] = []

        def say(member: object, text: str) -> Deferred[None]:
            said.append(text)
            pending.append(Deferred())
            return pending[-1]

        server.hub.say = say  # type: ignore[method-assign]
        alice.send("one", "two", "three")
        self.assertEqual(said, ["one"])
        self.assertEqual(alice.transport.producerState, "paused")
        clock.advance(5)
        self.assertEqual(said, ["one"], "nothing moves while the first is out")
        pending[0].callback(None)
        clock.advance(0)
        self.assertEqual(said, ["one", "two"])
        pending[1].errback(RuntimeError("redis said no"))
        clock.advance(0)
        self.assertEqual(said, ["one", "two", "three"])
        pending[2].callback(None)
        clock.advance(0)
        self.assertEqual(alice.transport.producerState, "producing")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_a_user_who_leaves_while_waiting_is_not_resumed(self) -> None:
        server, clock = make_server()
        alice = register(server, "alice")
        said: list[str] = []
        pending: Deferred[None] = Deferred()

        def say(member: object, text: str) -> Deferred[None]:
            said.append(text)
            return pending

        server.hub.say = say  # type: ignore[method-assign]
        alice.send("one", "two")
        alice.close()
        pending.callback(None)
        clock.advance(0)
        self.assertEqual(said, ["one"])
