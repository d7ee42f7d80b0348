from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twchat import events as ev
from twchat.backend.memory import MemoryBackend
from twchat.hub import WELCOME_NAMES, Hub

from .support.fakes import RecordingMember


class HubTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.hub = Hub(MemoryBackend(), self.clock)
        self.hub.start()

    def join(self, nick: str) -> RecordingMember:
        member = RecordingMember()
        self.assertIsNone(self.hub.register(member, nick))
        self.assertIs(self.hub.find(nick), member)
        return member

    def test_register_welcomes_and_announces(self) -> None:
        alice = self.join("alice")
        self.assertEqual(alice.events, [ev.Welcome("alice", "lobby", 1, ("alice",))])
        bob = self.join("bob")
        self.assertEqual(bob.events, [ev.Welcome("bob", "lobby", 2, ("alice", "bob"))])
        self.assertEqual(alice.written, [repr(ev.Joined("bob", 2)).encode()])
        self.assertEqual(self.hub.online, 2)

    def test_refusal_names_the_reason_and_prompts_again(self) -> None:
        self.join("alice")
        member = RecordingMember()
        self.hub.register(member, "ALICE")
        self.assertIsNot(self.hub.find("ALICE"), member)
        self.assertEqual(
            member.events,
            [ev.Error("nickname ALICE is already taken"), ev.NickPrompt()],
        )
        self.assertEqual(member.nick, "")

    def test_welcome_lists_a_sample_in_big_rooms(self) -> None:
        for i in range(WELCOME_NAMES + 5):
            self.join(f"u{i}")
        last = self.join("last")
        welcome = last.events[0]
        assert isinstance(welcome, ev.Welcome)
        self.assertEqual(welcome.online, WELCOME_NAMES + 6)
        self.assertEqual(len(welcome.names), WELCOME_NAMES)

    def test_leave_is_announced_once(self) -> None:
        alice, bob = self.join("alice"), self.join("bob")
        alice.written.clear()
        self.hub.leave(bob, "bye\x1b[2J")
        self.hub.leave(bob, "again")
        self.assertEqual(alice.written, [repr(ev.Left("bob", 1, "bye")).encode()])
        self.assertIsNone(self.hub.find("bob"))

    def test_no_leave_notices_while_closing(self) -> None:
        alice, bob = self.join("alice"), self.join("bob")
        alice.written.clear()
        self.hub.closing = True
        self.hub.leave(bob)
        self.assertEqual(alice.written, [])

    def test_say_cleans_text_and_refuses_empty_result(self) -> None:
        alice, bob = self.join("alice"), self.join("bob")
        alice.written.clear()
        self.hub.say(bob, "\x1b]0;pwned\x07hi")
        self.assertEqual(alice.written, [repr(ev.Chat("bob", "hi")).encode()])
        self.hub.say(bob, "\x00\x01")
        self.assertEqual(len(alice.written), 1)
        self.assertEqual(bob.events[-1], ev.Error(bob.events[-1].text))  # type: ignore[attr-defined]
        self.assertIn("control characters", bob.events[-1].text)  # type: ignore[attr-defined]

    def test_rename_frees_old_name(self) -> None:
        self.join("alice")
        bob = self.join("bob")
        self.hub.rename(bob, "Rob")
        self.assertIs(self.hub.find("rob"), bob)
        self.assertIsNone(self.hub.find("bob"))
        self.join("bob")

    def test_rename_to_own_name_in_other_case(self) -> None:
        alice = self.join("alice")
        self.hub.rename(alice, "Alice")
        self.assertEqual(alice.nick, "Alice")
        self.assertIs(self.hub.find("ALICE"), alice)
