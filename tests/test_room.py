from collections.abc import Sequence
from typing import cast

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twchat.events import Chat, Joined, Left, Notice, Presence
from twchat.member import Member, Outlet
from twchat.room import HOLD_LIMIT, PresencePolicy, Room
from twchat.stats import Stats
from twchat.wire import render_line, render_tagged

from .support.fakes import RecordingMember


class RoomTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.stats = Stats()
        self.room = Room("lobby", self.clock, stats=self.stats)
        self.alice = RecordingMember("alice")
        self.bob = RecordingMember("Bob")
        self.carol = RecordingMember("carol")
        for member in (self.alice, self.bob, self.carol):
            self.room.add(member)
            member.room = self.room  # as the hub does

    def test_broadcast_reaches_everyone_but_the_excluded(self) -> None:
        self.room.broadcast(Chat("alice", "hi"), exclude=self.alice)
        self.clock.advance(0)
        self.assertEqual(self.alice.written, [])
        self.assertEqual(self.bob.written, [render_line(Chat("alice", "hi"))])
        self.assertEqual(self.carol.written, self.bob.written)

    def test_renders_once_per_renderer_not_per_member(self) -> None:
        before = RecordingMember.renders
        self.room.broadcast(Chat("alice", "hi"))
        self.clock.advance(0)
        self.assertEqual(RecordingMember.renders - before, 1)

    def test_everyone_sees_the_same_order(self) -> None:
        for turn in range(5):
            for i in range(10):
                self.room.broadcast(Chat("x", f"{turn}.{i}"))
            self.clock.advance(0)
        self.assertEqual(self.alice.written, self.bob.written)
        self.assertEqual(self.bob.written, self.carol.written)
        self.assertEqual(
            self.carol.lines, [f"<x> {t}.{i}" for t in range(5) for i in range(10)]
        )

    def test_one_chunk_per_member_per_turn_the_same_for_all(self) -> None:
        for i in range(100):
            self.room.broadcast(Chat("x", str(i)))
        self.assertEqual(self.bob.written, [])  # until the turn ends
        self.clock.advance(0)
        self.assertEqual(len(self.bob.written), 1)
        # One object for everyone who gets every line: no copy per member.
        self.assertIs(self.alice.written[0], self.bob.written[0])
        self.assertIs(self.bob.written[0], self.carol.written[0])
        self.assertEqual(self.stats.deliveries, 300)

    def test_senders_and_ignorers_get_their_own_chunk(self) -> None:
        self.room.broadcast(Chat("alice", "1"), exclude=self.alice)
        self.room.broadcast(Chat("Bob", "2"), exclude=self.bob, deaf={self.carol})
        self.room.broadcast(Chat("x", "3"))
        self.clock.advance(0)
        self.assertEqual(self.alice.lines, ["<Bob> 2", "<x> 3"])
        self.assertEqual(self.bob.lines, ["<alice> 1", "<x> 3"])
        self.assertEqual(self.carol.lines, ["<alice> 1", "<x> 3"])
        self.assertEqual(self.stats.deliveries, 6)

    def test_a_direct_line_comes_after_the_room_lines_before_it(self) -> None:
        self.room.broadcast(Chat("x", "before"))
        self.bob.send(Notice("direct"))  # catches up first, as a connection does
        self.room.broadcast(Chat("x", "after"))
        self.clock.advance(0)
        self.assertEqual(self.bob.lines, ["<x> before", "*** direct", "<x> after"])
        self.assertEqual(self.alice.lines, ["<x> before", "<x> after"])
        self.assertEqual(self.stats.deliveries, 6)

    def test_newcomers_get_only_what_is_said_after_they_come_in(self) -> None:
        self.room.broadcast(Chat("x", "before"))
        dave = RecordingMember("dave")
        self.room.add(dave)
        self.room.broadcast(Chat("x", "after"))
        self.clock.advance(0)
        self.assertEqual(dave.lines, ["<x> after"])
        self.assertEqual(self.bob.lines, ["<x> before", "<x> after"])

    def test_leavers_get_what_was_said_before_they_left(self) -> None:
        self.room.broadcast(Chat("x", "before"))
        self.room.remove(self.bob)
        self.room.broadcast(Chat("x", "after"))
        self.clock.advance(0)
        self.assertEqual(self.bob.lines, ["<x> before"])
        self.assertEqual(self.carol.lines, ["<x> before", "<x> after"])

    def test_a_held_newcomer_gets_the_room_after_what_is_sent_to_them(self) -> None:
        dave = RecordingMember("dave")
        self.room.broadcast(Chat("x", "before"))
        self.room.add(dave, held=True)
        dave.room = self.room
        self.room.broadcast(Chat("x", "same turn"))
        self.clock.advance(0)
        self.room.broadcast(Chat("x", "next turn"))
        dave.send(Notice("roll call"))  # does not let the room's lines out
        self.clock.advance(0)
        self.assertEqual(dave.lines, ["*** roll call"])
        self.assertEqual(self.bob.lines[-2:], ["<x> same turn", "<x> next turn"])
        self.room.broadcast(Chat("x", "as it is let out"))
        self.room.release(dave)
        self.room.broadcast(Chat("x", "after"))
        self.clock.advance(0)
        self.assertEqual(
            dave.lines,
            [
                "*** roll call",
                "<x> same turn",
                "<x> next turn",
                "<x> as it is let out",
                "<x> after",
            ],
        )
        self.assertEqual(self.carol.lines, self.bob.lines)
        self.room.release(dave)  # once only
        self.assertEqual(len(dave.lines), 5)

    def test_a_held_newcomer_who_leaves_is_given_nothing(self) -> None:
        dave = RecordingMember("dave")
        self.room.add(dave, held=True)
        dave.room = self.room
        self.room.broadcast(Chat("x", "one"))
        self.clock.advance(0)
        self.room.broadcast(Chat("x", "two"))
        self.room.remove(dave)
        self.room.release(dave)
        self.clock.advance(0)
        self.assertEqual(dave.lines, [])
        self.assertEqual(self.bob.lines, ["<x> one", "<x> two"])

    def test_a_newcomer_held_too_long_gets_the_lines_rather_than_grow_memory(
        self,
    ) -> None:
        dave = RecordingMember("dave")
        self.room.add(dave, held=True)
        dave.room = self.room
        line = "x" * 1000
        turns = 2 * HOLD_LIMIT // 1000
        most = 0
        for i in range(turns):
            self.room.broadcast(Chat("x", f"{i} {line}"))
            self.clock.advance(0)
            most = max(most, len(self.room._held.get(dave, b"")))
        assert HOLD_LIMIT - 1100 < most <= HOLD_LIMIT
        self.room.release(dave)
        self.assertEqual([int(t.split()[1]) for t in dave.lines], list(range(turns)))
        self.assertEqual(dave.lines, self.bob.lines)

    def test_an_ignore_list_changed_later_in_the_turn_does_not_reach_back(
        self,
    ) -> None:
        deaf: set[Member] = {self.carol}
        self.room.broadcast(Chat("Bob", "1"), exclude=self.bob, deaf=deaf)
        deaf.clear()
        self.room.broadcast(Chat("Bob", "2"), exclude=self.bob, deaf=deaf)
        self.clock.advance(0)
        self.assertEqual(self.carol.lines, ["<Bob> 2"])

    def test_a_failing_member_does_not_stall_the_room(self) -> None:
        def broken(data: bytes) -> None:
            raise RuntimeError("a bug in one member")

        self.bob.write = broken  # type: ignore[method-assign]
        self.room.broadcast(Chat("x", "lost for some"))
        with self.assertRaises(RuntimeError):
            self.room.deliver_turn()
        del self.bob.write  # mended
        # The next line is a new turn, handed out as usual.
        self.room.broadcast(Chat("x", "next"))
        self.clock.advance(0)
        self.assertEqual(self.bob.lines, ["<x> next"])

    def test_who_gets_every_line_is_handed_it_with_all_of_its_renderer(
        self,
    ) -> None:
        handed: list[tuple[list[str], bytes]] = []

        def hand_out(outlets: Sequence[Outlet], data: bytes) -> None:
            handed.append(([cast(RecordingMember, o).nick for o in outlets], data))
            for outlet in outlets:
                outlet.write(data)

        room = Room("lobby", self.clock, stats=self.stats, hand_out=hand_out)
        dave, erin = RecordingMember("dave"), RecordingMember("erin")
        dave.tag_lines()  # another renderer, between members of the first
        for member in (self.alice, self.bob, self.carol, dave, erin):
            room.add(member)
            member.room = room
        room.broadcast(Chat("alice", "hi", 7), exclude=self.alice)
        room.broadcast(Chat("alice", "again", 8), exclude=self.alice)
        self.clock.advance(0)
        text = render_line(Chat("alice", "hi", 7)) + render_line(
            Chat("alice", "again", 8)
        )
        self.assertEqual(
            handed,
            [(["Bob", "carol", "erin"], text), (["dave"], dave.written[0])],
        )
        self.assertNotEqual(dave.written[0], text)
        self.assertEqual(self.alice.written, [])  # the sender: on their own
        self.assertEqual(self.stats.deliveries, 8)

    def test_a_member_rendering_anew_gets_this_turns_lines_that_way(self) -> None:
        self.room.broadcast(Chat("alice", "hi", 7), exclude=self.alice)
        self.bob.tag_lines()
        self.room.renderer_changed(self.bob)
        self.room.broadcast(Chat("alice", "again", 8), exclude=self.alice)
        self.clock.advance(0)
        self.assertEqual(
            self.bob.written,
            [
                render_tagged(Chat("alice", "hi", 7))
                + render_tagged(Chat("alice", "again", 8))
            ],
        )
        self.assertEqual(self.carol.lines, ["<alice> hi", "<alice> again"])
        self.room.remove(self.bob)
        self.room.broadcast(Chat("alice", "gone", 9))
        self.clock.advance(0)
        self.assertEqual(len(self.bob.written), 1)  # out of every group
        self.assertEqual(self.stats.deliveries, 6)

    def test_a_sender_who_left_gets_nothing_more(self) -> None:
        self.room.broadcast(Chat("bob", "bye", 7), exclude=self.bob)
        self.room.remove(self.bob)
        self.room.broadcast(Chat("carol", "hi", 8), exclude=self.carol)
        self.clock.advance(0)
        self.assertEqual(self.bob.written, [])
        self.assertEqual(self.alice.lines, ["<bob> bye", "<carol> hi"])
        self.assertEqual(self.carol.lines, ["<bob> bye"])

    def test_stop_delivers_what_was_said(self) -> None:
        self.room.broadcast(Chat("x", "last"))
        self.room.stop()
        self.assertEqual(self.bob.lines, ["<x> last"])

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
        self.clock.advance(0)
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
        self.clock.advance(0)  # the end of the turn
        seen, self.watcher.written[:] = list(self.watcher.written), []
        return seen

    def test_small_room_announces_each_join_and_leave(self) -> None:
        self.arrive("a")
        self.arrive("b")
        self.assertEqual(
            self.events(), [render_line(Joined("a", 2)) + render_line(Joined("b", 3))]
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
