from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twchat.events import Chat, Joined, Left, Presence
from twchat.room import PresencePolicy, Room
from twchat.wire import render_line

from .support.fakes import RecordingMember


class RoomTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.room = Room("lobby", self.clock)
        self.alice = RecordingMember("alice")
        self.bob = RecordingMember("Bob")
        self.carol = RecordingMember("carol")
        for member in (self.alice, self.bob, self.carol):
            self.room.add(member)

    def test_broadcast_reaches_everyone_but_the_excluded(self) -> None:
        self.room.broadcast(Chat("alice", "hi"), exclude=self.alice)
        self.assertEqual(self.alice.written, [])
        self.assertEqual(self.bob.written, [render_line(Chat("alice", "hi"))])
        self.assertEqual(self.carol.written, self.bob.written)

    def test_renders_once_per_renderer_not_per_member(self) -> None:
        before = RecordingMember.renders
        self.room.broadcast(Chat("alice", "hi"))
        self.assertEqual(RecordingMember.renders - before, 1)

    def test_everyone_sees_the_same_order(self) -> None:
        for i in range(50):
            self.room.broadcast(Chat("x", str(i)))
        self.assertEqual(self.alice.written, self.bob.written)
        self.assertEqual(self.bob.written, self.carol.written)
        self.assertEqual(len(self.carol.written), 50)

    def test_membership_and_names(self) -> None:
        self.assertEqual(len(self.room), 3)
        self.assertIn(self.bob, self.room)
        self.assertEqual(self.room.names(), ("alice", "Bob", "carol"))
        self.assertEqual(self.room.names(limit=2), ("alice", "Bob"))
        self.room.remove(self.bob)
        self.assertNotIn(self.bob, self.room)
        self.assertEqual(self.room.names(), ("alice", "carol"))

    def test_rename_keeps_member(self) -> None:
        self.bob.nick = "rob"
        self.room.renamed(self.bob, "Bob")
        self.assertIn(self.bob, self.room)
        self.assertEqual(len(self.room), 3)
        self.room.broadcast(Chat("x", "y"))
        self.assertEqual(len(self.bob.written), 1)


class PresenceTests(SynchronousTestCase):
    """Joins and leaves: one line each in small rooms, summed up in big ones."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.room = Room("lobby", self.clock, PresencePolicy(batch_above=3, interval=5))
        self.watcher = RecordingMember("watcher")
        self.room.add(self.watcher)

    def arrive(self, nick: str) -> RecordingMember:
        member = RecordingMember(nick)
        self.room.announce_join(Joined(nick, len(self.room) + 1))
        self.room.add(member)
        return member

    def events(self) -> list[bytes]:
        seen, self.watcher.written[:] = list(self.watcher.written), []
        return seen

    def test_small_room_announces_each_join_and_leave(self) -> None:
        self.arrive("a")
        self.arrive("b")
        self.assertEqual(
            self.events(),
            [render_line(Joined("a", 2)), render_line(Joined("b", 3))],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_big_room_sums_up_once_per_interval(self) -> None:
        self.arrive("a")
        self.arrive("b")
        self.events()
        for i in range(8):
            self.arrive(f"n{i}")
        gone = self.room.names()[-1]
        self.room.remove(next(m for m in self.room if m.nick == gone))
        self.room.announce_leave(Left(gone, len(self.room), "bye"))
        self.assertEqual(self.events(), [])
        self.clock.advance(4.9)
        self.assertEqual(self.events(), [])
        self.clock.advance(0.1)
        summary = Presence(8, ("n0", "n1", "n2", "n3", "n4"), 1, ("n7",), 10)
        self.assertEqual(self.events(), [render_line(summary)])
        self.clock.advance(10)
        self.assertEqual(self.events(), [])

    def test_stop_drops_the_pending_summary(self) -> None:
        for i in range(5):
            self.arrive(f"n{i}")
        self.events()
        self.room.stop()
        self.clock.advance(10)
        self.assertEqual(self.events(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
