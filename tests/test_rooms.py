"""Rooms: /join, /part, /rooms, /who ROOM, /topic — each room its own broadcast."""

from twisted.trial.unittest import SynchronousTestCase

from twchat.room import room_error, room_key

from .support.fakes import FakeUser, make_server, room


class RoomNameTests(SynchronousTestCase):
    def test_valid_names(self) -> None:
        for name in ["games", "#games", "a", "Room_1-b", "x" * 32]:
            self.assertIsNone(room_error(name), name)

    def test_invalid_names_say_why(self) -> None:
        self.assertEqual(room_error(""), "room name cannot be empty")
        self.assertEqual(room_error("#"), "room name cannot be empty")
        self.assertIn("too long", room_error("x" * 33) or "")
        for name in ["two words", "caf\u00e9", "a/b", "##x", "a.b"]:
            self.assertEqual(
                room_error(name),
                "room names may contain only letters, digits, '-' and '_'",
                name,
            )

    def test_names_ignore_case_and_the_hash(self) -> None:
        self.assertEqual(room_key("#Games"), room_key("games"))


class RoomCommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server(max_rooms=3)
        self.alice, self.bob, self.carol = room(self.server, "alice", "bob", "carol")

    def test_welcome_names_the_room_and_shows_its_topic(self) -> None:
        self.alice.send("/topic welcome all")
        dave = FakeUser(self.server)
        dave.read()
        dave.send("dave")
        self.assertEqual(
            dave.read(),
            [
                "*** Welcome, dave! #lobby has 4 users: alice, bob, carol, dave",
                "*** Topic of #lobby: welcome all",
            ],
        )

    def test_join_moves_you_and_tells_both_rooms(self) -> None:
        self.bob.send("/join #Games")
        self.assertEqual(self.bob.read(), ["*** #Games has 1 user: bob"])
        self.assertEqual(self.alice.read(), ["*** bob left for #Games (2 here)"])
        self.carol.send("/join games")
        self.assertEqual(
            self.carol.read(),
            ["*** bob left for #Games (2 here)", "*** #Games has 2 users: bob, carol"],
        )
        self.assertEqual(self.bob.read(), ["*** carol joined from #lobby (2 here)"])
        self.assertEqual(self.alice.read(), ["*** carol left for #Games (1 here)"])

    def test_chat_stays_in_its_room(self) -> None:
        self.bob.send("/join games")
        for user in (self.alice, self.bob, self.carol):
            user.read()
        self.bob.send("in games", "/me plays")
        self.alice.send("in the lobby")
        self.carol.send("/nick caroline")
        self.assertEqual(
            self.alice.read(),
            ["*** carol is now known as caroline"],
        )
        self.assertEqual(
            self.carol.read(),
            ["<alice> in the lobby", "*** carol is now known as caroline"],
        )
        self.assertEqual(self.bob.read(), [])

    def test_private_messages_cross_rooms(self) -> None:
        self.bob.send("/join games")
        self.alice.read()
        self.bob.read()
        self.alice.send("/msg bob over here")
        self.assertEqual(self.bob.read(), ["*alice* over here"])

    def test_part_goes_back_and_empty_rooms_disappear(self) -> None:
        self.bob.send("/join games")
        self.bob.send("/topic chess")
        self.bob.read()
        self.alice.read()
        self.bob.send("/part")
        self.assertEqual(self.bob.read(), ["*** #lobby has 3 users: alice, bob, carol"])
        self.assertEqual(self.alice.read(), ["*** bob joined from #games (3 here)"])
        self.bob.send("/rooms")
        self.assertEqual(self.bob.read(), ["*** 1 room:", "***   #lobby (3)"])
        self.bob.send("/join games")
        self.assertEqual(
            self.bob.read(), ["*** #games has 1 user: bob"]
        )  # new topic-less
        self.bob.send("/part", "/part")
        self.assertEqual(self.bob.read()[-1], "! you are already in #lobby")

    def test_the_default_room_never_disappears(self) -> None:
        for user in (self.alice, self.bob, self.carol):
            user.send("/join elsewhere")
        self.alice.send("/rooms")
        self.assertEqual(
            self.alice.read()[-3:],
            ["*** 2 rooms:", "***   #elsewhere (3)", "***   #lobby (0)"],
        )

    def test_leaving_the_server_is_told_in_your_room_only(self) -> None:
        self.bob.send("/join games")
        self.carol.send("/join games")
        for user in (self.alice, self.bob, self.carol):
            user.read()
        self.carol.send("/quit bye")
        self.assertEqual(self.bob.read(), ["*** carol left (1 here): bye"])
        self.assertEqual(self.alice.read(), [])
        self.bob.close()
        self.alice.send("/rooms")
        self.assertEqual(self.alice.read(), ["*** 1 room:", "***   #lobby (1)"])

    def test_who_in_a_room(self) -> None:
        self.bob.send("/join games")
        self.alice.read()
        self.alice.send("/who")
        self.assertEqual(self.alice.read(), ["*** #lobby has 2 users: alice, carol"])
        self.alice.send("/who #GAMES")
        self.assertEqual(self.alice.read(), ["*** #games has 1 user: bob"])
        self.alice.send("/who nowhere")
        self.assertEqual(self.alice.read(), ["! no such room: #nowhere"])

    def test_topic_shown_and_set(self) -> None:
        self.alice.send("/topic")
        self.assertEqual(self.alice.read(), ["*** #lobby has no topic"])
        self.alice.send("/topic release \x1b[2Jfriday")
        expected = ["*** alice set the topic of #lobby: release friday"]
        for user in (self.alice, self.bob, self.carol):
            self.assertEqual(user.read(), expected)
        self.bob.send("/topic")
        self.assertEqual(self.bob.read(), ["*** Topic of #lobby: release friday"])

    def test_bad_room_names_change_nothing(self) -> None:
        self.bob.send("/join two words")
        self.assertEqual(
            self.bob.read(),
            ["! room names may contain only letters, digits, '-' and '_'"],
        )
        self.bob.send("/join")
        self.assertEqual(self.bob.read(), ["! usage: /join ROOM"])
        self.bob.send("/join lobby")
        self.assertEqual(self.bob.read(), ["! you are already in #lobby"])
        self.assertEqual(self.alice.read(), [])

    def test_max_rooms(self) -> None:
        self.alice.send("/join one")
        self.bob.send("/join two")
        self.carol.send("/join three")
        self.assertEqual(
            self.carol.read()[-1], "! too many rooms (max 3); join one that exists"
        )
        self.carol.send("/join ONE")
        self.assertEqual(self.carol.read()[0], "*** #one has 2 users: alice, carol")

    def test_order_within_a_room(self) -> None:
        self.bob.send("/join games")
        self.carol.send("/join games")
        for user in (self.alice, self.bob, self.carol):
            user.read()
        for i in range(10):
            (self.bob if i % 2 else self.carol).send(f"m{i}")
            self.alice.send(f"lobby {i}")
        bob_saw = [line for line in self.bob.read() if line.startswith("<carol>")]
        self.assertEqual(bob_saw, [f"<carol> m{i}" for i in range(0, 10, 2)])
        self.assertEqual(self.carol.read(), [f"<bob> m{i}" for i in range(1, 10, 2)])
