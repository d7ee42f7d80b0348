"""The in-process backend's roster: names in key order, kept so cheaply."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twchat.backend import Entered
from twchat.backend.memory import MemoryBackend

from .support.fakes import RecordingListener


class RosterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.backend = MemoryBackend("lobby")
        self.backend.attach(RecordingListener())

    def enter(self, conn: str, nick: str, limit: int | None = None) -> Entered:
        entered = self.successResultOf(
            self.backend.enter(conn, nick, "lobby", "", limit)
        )
        assert entered is not None
        return entered

    def test_names_come_in_key_order_and_at_most_the_limit(self) -> None:
        for i, nick in enumerate(["mike", "Alice", "zed", "bob", "Carol"]):
            entered = self.enter(f"c{i}", nick)
        self.assertEqual(entered.names, ("Alice", "bob", "Carol", "mike", "zed"))
        self.assertEqual(entered.online, 5)
        entered = self.enter("c5", "dave", limit=3)
        self.assertEqual(entered.names, ("Alice", "bob", "Carol"))
        self.assertEqual(entered.online, 6)

    def test_renames_and_leaves_keep_the_order(self) -> None:
        for i, nick in enumerate(["mike", "alice", "zed"]):
            self.enter(f"c{i}", nick)
        self.successResultOf(self.backend.rename("c1", "lobby", "alice", "Yann"))
        self.backend.leave("c0", "mike", "lobby", "bye")
        self.backend.leave("c9", "nobody", "lobby", "never here")
        roster = self.successResultOf(self.backend.roster("lobby"))
        self.assertEqual(roster, ("lobby", ("Yann", "zed")))
        # A case-only rename keeps one place.
        self.successResultOf(self.backend.rename("c1", "lobby", "Yann", "yann"))
        self.assertEqual(self.enter("c3", "anna").names, ("anna", "yann", "zed"))

    def test_the_first_names_follow_every_change_among_them(self) -> None:
        # A welcome's names are kept between arrivals; each of these changes
        # the first three, and the next welcome must show it.
        for i, nick in enumerate(["mike", "nina", "oscar", "paul"]):
            self.enter(f"c{i}", nick, limit=3)
        self.assertEqual(self.enter("c4", "zoe", limit=3).names[-1], "oscar")
        self.assertEqual(
            self.enter("c5", "adam", limit=3).names, ("adam", "mike", "nina")
        )
        self.backend.leave("c1", "nina", "lobby", "bye")
        self.assertEqual(
            self.enter("c6", "zack", limit=3).names, ("adam", "mike", "oscar")
        )
        self.successResultOf(self.backend.rename("c0", "lobby", "mike", "Mike"))
        self.assertEqual(
            self.enter("c7", "yves", limit=3).names, ("adam", "Mike", "oscar")
        )
        self.successResultOf(self.backend.rename("c5", "lobby", "adam", "quinn"))
        self.assertEqual(self.enter("c8", "xena", limit=2).names, ("Mike", "oscar"))
        self.assertEqual(
            self.enter("c9", "will", limit=3).names, ("Mike", "oscar", "paul")
        )

    def test_a_room_smaller_than_the_limit_lists_each_newcomer(self) -> None:
        self.assertEqual(self.enter("c0", "mike", limit=30).names, ("mike",))
        self.assertEqual(self.enter("c1", "zed", limit=30).names, ("mike", "zed"))
        self.backend.leave("c1", "zed", "lobby", "bye")
        self.assertEqual(self.enter("c2", "yan", limit=30).names, ("mike", "yan"))
