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
