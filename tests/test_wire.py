from twisted.trial.unittest import SynchronousTestCase

from twchat import events as ev
from twchat.wire import WHO_LINE_LENGTH, render_line


class RenderLineTests(SynchronousTestCase):
    def test_each_kind_starts_with_its_marker(self) -> None:
        cases: list[tuple[ev.Event, str]] = [
            (ev.Chat("alice", "hi"), "<alice> hi"),
            (ev.Action("alice", "waves"), "* alice waves"),
            (ev.Private("alice", "psst"), "*alice* psst"),
            (ev.PrivateSent("bob", "psst"), "-> *bob* psst"),
            (ev.Joined("bob", 2), "*** bob joined (2 here)"),
            (ev.Left("bob", 1), "*** bob left (1 here)"),
            (
                ev.Left("bob", 1, "gone fishing"),
                "*** bob left (1 here): gone fishing",
            ),
            (ev.NickChanged("bob", "rob"), "*** bob is now known as rob"),
            (
                ev.Presence(7, ("a", "b"), 1, ("c",), 506),
                "*** 7 joined: a, b and 5 more; 1 left: c (506 here)",
            ),
            (ev.Presence(0, (), 2, ("c", "d"), 5), "*** 2 left: c, d (5 here)"),
            (ev.Notice("Goodbye!"), "*** Goodbye!"),
            (ev.Error("no such user: carol"), "! no such user: carol"),
            (ev.NickPrompt(), "? Choose a nickname:"),
            (ev.Greeting(0), "*** Welcome to twchat! Nobody else is here yet."),
            (ev.Greeting(1), "*** Welcome to twchat! 1 user online."),
            (ev.Greeting(3), "*** Welcome to twchat! 3 users online."),
            (
                ev.RoomInfo("lobby", 2, ("alice", "bob")),
                "*** #lobby has 2 users: alice, bob",
            ),
            (ev.Topic("games", "chess at 8"), "*** Topic of #games: chess at 8"),
            (ev.Topic("games", ""), "*** #games has no topic"),
            (
                ev.Topic("games", "go", setter="bob"),
                "*** bob set the topic of #games: go",
            ),
            (
                ev.Joined("bob", 3, came_from="lobby"),
                "*** bob joined from #lobby (3 here)",
            ),
            (ev.Left("bob", 1, went_to="games"), "*** bob left for #games (1 here)"),
        ]
        for event, line in cases:
            self.assertEqual(render_line(event), line.encode() + b"\r\n")

    def test_utf8_on_the_wire(self) -> None:
        self.assertEqual(render_line(ev.Chat("a", "café")), "<a> café\r\n".encode())

    def test_welcome_lists_names_and_says_how_many_more(self) -> None:
        self.assertEqual(
            render_line(ev.Welcome("bob", "lobby", 2, ("alice", "bob"))),
            b"*** Welcome, bob! #lobby has 2 users: alice, bob\r\n",
        )
        line = render_line(ev.Welcome("bob", "lobby", 500, ("alice", "bob"))).decode()
        self.assertIn("alice, bob and 498 more (/who lists everyone)", line)

    def test_room_list(self) -> None:
        event = ev.RoomList((("games", 3, "chess at 8"), ("lobby", 12, "")))
        self.assertEqual(
            render_line(event).decode().split("\r\n")[:-1],
            ["*** 2 rooms:", "***   #games (3): chess at 8", "***   #lobby (12)"],
        )

    def test_long_who_is_split_into_readable_lines(self) -> None:
        names = tuple(f"user{i:04d}" for i in range(300))
        lines = render_line(ev.RoomInfo("big", 300, names)).decode().split("\r\n")[:-1]
        self.assertGreater(len(lines), 1)
        self.assertTrue(lines[0].startswith("*** #big has 300 users: user0000, "))
        for line in lines:
            self.assertTrue(line.startswith("*** "))
            self.assertLessEqual(len(line), WHO_LINE_LENGTH + 12)
        listed = ",".join(
            line.removeprefix("*** #big has 300 users: ").removeprefix("***  ")
            for line in lines
        )
        self.assertEqual(
            [n.strip() for n in listed.split(",") if n.strip()], list(names)
        )
