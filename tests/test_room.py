from twisted.trial.unittest import SynchronousTestCase

from twchat.events import Chat
from twchat.room import Room

from .support import RecordingMember


class RoomTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.room = Room("lobby")
        self.alice = RecordingMember("alice")
        self.bob = RecordingMember("Bob")
        self.carol = RecordingMember("carol")
        for member in (self.alice, self.bob, self.carol):
            self.room.add(member)

    def test_broadcast_reaches_everyone_but_the_excluded(self) -> None:
        self.room.broadcast(Chat("alice", "hi"), exclude=self.alice)
        self.assertEqual(self.alice.written, [])
        self.assertEqual(self.bob.written, [repr(Chat("alice", "hi")).encode()])
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
