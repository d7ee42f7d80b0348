import json

from twisted.trial.unittest import SynchronousTestCase

from twchat import events as ev
from twchat.jsonwire import TYPES, render_json


def decode(data: bytes) -> object:
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    return json.loads(data)


class RenderJsonTests(SynchronousTestCase):
    def test_every_event_has_a_type(self) -> None:
        self.assertEqual(set(TYPES), set(ev.Event.__args__))

    def test_chat_and_friends(self) -> None:
        self.assertEqual(
            decode(render_json(ev.Chat("alice", "hi <b>", 42))),
            {"type": "chat", "nick": "alice", "text": "hi <b>", "id": 42},
        )
        self.assertEqual(
            decode(render_json(ev.Welcome("bob", "lobby", 2, ("alice", "bob")))),
            {
                "type": "registered",
                "nick": "bob",
                "room": "lobby",
                "online": 2,
                "names": ["alice", "bob"],
            },
        )
        self.assertEqual(
            decode(render_json(ev.Error("unknown command /x"))),
            {"type": "error", "text": "unknown command /x", "unsent": False},
        )
        self.assertEqual(
            decode(render_json(ev.Error("no such user: x", unsent=True))),
            {"type": "error", "text": "no such user: x", "unsent": True},
        )

    def test_room_list(self) -> None:
        self.assertEqual(
            decode(render_json(ev.RoomList((("games", 3, "chess"),)))),
            {
                "type": "rooms",
                "rooms": [{"name": "games", "users": 3, "topic": "chess"}],
            },
        )

    def test_unicode_stays_readable(self) -> None:
        self.assertIn("café ☕".encode(), render_json(ev.Chat("a", "café ☕")))

    def test_line_separators_cannot_split_a_message(self) -> None:
        data = render_json(ev.Chat("a", "one\u2028two\nthree"))
        self.assertEqual(data.count(b"\n"), 1)
