"""Hostile and broken clients, on in-memory transports with a fake clock."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twchat.connection.connection import CLOSE_GRACE
from twchat.text import clean_text

from .support.fakes import FakeUser, make_server, register, room

_CONTROLS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | set(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class HostileTextTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server()
        self.alice, self.bob = room(self.server, "alice", "bob")

    def test_terminal_attacks_reach_nobody(self) -> None:
        attacks = [
            b"\x1b[2Jcleared",
            b"\x1b]0;pwned\x07retitled",
            b"csi \xc2\x9b2J",
            b"nul\x00 and soh\x01",
            "bidi \u202eevil\u2066x".encode(),
        ]
        for attack in attacks:
            self.alice.send(attack)
        self.assertEqual(
            self.bob.read(),
            [
                "<alice> cleared",
                "<alice> retitled",
                "<alice> csi",
                "<alice> nul and soh",
                "<alice> bidi evilx",
            ],
        )

    def test_every_line_ending(self) -> None:
        self.alice.raw(b"unix\nwindows\r\nold mac\rsplit\r")
        self.alice.raw(b"\nend\n")
        self.assertEqual(
            self.bob.read(),
            [
                "<alice> unix",
                "<alice> windows",
                "<alice> old mac",
                "<alice> split",
                "<alice> end",
            ],
        )

    def test_lookalike_nicknames_cannot_impersonate(self) -> None:
        user = FakeUser(self.server)
        user.read()
        for nick, error in [
            ("\u0430lice", "! nickname contains U+0430"),
            ("ALICE", "! nickname ALICE is already taken"),
            ("al\u200bice", "! nickname contains U+200B"),
            ("al ice", "! nickname contains U+0020"),
            ("", "! nickname cannot be empty"),
            ("a" * 25, "! nickname is too long"),
            ("al\x1b[2Jice", "! nickname contains U+001B"),
        ]:
            user.send(nick)
            lines = user.read()
            self.assertTrue(lines[0].startswith(error), (nick, lines))
            self.assertEqual(lines[1:], ["? Choose a nickname:"])
        self.assertEqual(sorted(self.server.hub.users), ["alice", "bob"])


class FloodTests(SynchronousTestCase):
    def test_a_thousand_lines_in_one_write_are_throttled_not_dropped(self) -> None:
        server, clock = make_server(flood_rate=2, flood_burst=10)
        flooder, watcher = room(server, "flooder", "watcher")
        # room() used 2 tokens per user; start from a full bucket.
        clock.advance(10)
        flooder.raw(b"".join(b"line %d\n" % i for i in range(1000)))
        self.assertEqual(len(watcher.read()), 10)  # the burst
        self.assertEqual(flooder.transport.producerState, "paused")
        clock.advance(1)
        self.assertEqual(len(watcher.read()), 2)  # then two a second
        clock.advance(5)
        got = watcher.read()
        self.assertEqual(len(got), 10)
        self.assertEqual(got[-1], "<flooder> line 21")
        self.assertFalse(flooder.closing)

    def test_reading_resumes_once_the_backlog_is_handled(self) -> None:
        server, clock = make_server(flood_rate=2, flood_burst=10)
        flooder, watcher = room(server, "flooder", "watcher")
        clock.advance(10)
        flooder.send(*[f"m{i}" for i in range(14)])
        clock.advance(2)
        self.assertEqual(len(watcher.read()), 14)
        self.assertEqual(flooder.transport.producerState, "producing")

    def test_pushing_past_the_receive_bound_is_excess_flood(self) -> None:
        server, _clock = make_server(flood_rate=2, flood_burst=10, max_recvq=4096)
        flooder, watcher = room(server, "flooder", "watcher")
        flooder.raw(b"x" * 100 + b"".join(b"%d\n" % i for i in range(2000)))
        self.assertEqual(
            flooder.read()[-1], "! excess flood: more than 4096 bytes unread"
        )
        self.assertTrue(flooder.closing)
        # What flood control let through before the backlog grew went out;
        # nothing after it did.
        *burst, leave = watcher.read()
        self.assertEqual(leave, "*** flooder left (1 here): excess flood")
        self.assertLessEqual(len(burst), 10)
        self.assertEqual(burst[1:], [f"<flooder> {i}" for i in range(1, len(burst))])

    def test_one_client_cannot_monopolise_a_turn(self) -> None:
        server, _clock = make_server(lines_per_turn=100)
        flooder, watcher = room(server, "flooder", "watcher")
        flooder.raw(b"".join(b"%d\n" % i for i in range(250)))
        self.assertEqual(flooder.transport.producerState, "paused")
        got = watcher.read()  # read() lets three turns pass
        self.assertEqual(got, [f"<flooder> {i}" for i in range(250)])
        self.assertEqual(flooder.transport.producerState, "producing")


class DeadlineTests(SynchronousTestCase):
    def test_silent_connection_is_closed_at_the_registration_deadline(self) -> None:
        server, clock = make_server(register_timeout=30)
        silent = FakeUser(server)
        silent.read()
        clock.advance(29)
        self.assertFalse(silent.closing)
        clock.advance(1)
        self.assertEqual(silent.read(), ["! no nickname after 30 seconds; closing"])
        self.assertTrue(silent.closing)

    def test_dribbling_does_not_extend_the_deadline(self) -> None:
        server, clock = make_server(register_timeout=30)
        dribbler = FakeUser(server)
        for _ in range(10):
            dribbler.raw(b"a")
            clock.advance(3)
        self.assertTrue(dribbler.closing)
        self.assertEqual(dribbler.read()[-1], "! no nickname after 30 seconds; closing")

    def test_registered_users_have_no_registration_deadline(self) -> None:
        server, clock = make_server(register_timeout=30)
        (alice,) = room(server, "alice")
        clock.advance(300)
        self.assertFalse(alice.closing)

    def test_idle_timeout(self) -> None:
        server, clock = make_server(idle_timeout=60)
        alice, bob = room(server, "alice", "bob")
        clock.advance(50)
        alice.send("still here")
        clock.advance(15)
        self.assertFalse(alice.closing)
        self.assertTrue(bob.closing)
        self.assertEqual(bob.read()[-1], "! idle for 60 seconds; closing")
        self.assertEqual(alice.read()[-1], "*** bob left (1 here): idle timeout")

    def test_a_close_the_peer_never_completes_is_cut(self) -> None:
        server, clock = make_server()
        (alice,) = room(server, "alice")
        alice.send("/quit")
        self.assertTrue(alice.transport.disconnecting)
        clock.advance(CLOSE_GRACE)
        self.assertTrue(alice.transport.disconnected)

    def test_stalled_send_queue(self) -> None:
        server, clock = make_server(sendq_timeout=30)
        alice, bob = room(server, "alice", "bob")
        bob.chat.outbox.pauseProducing()  # the transport stopped taking bytes
        alice.send("are you there?")
        clock.advance(29)
        self.assertFalse(bob.transport.disconnected)
        clock.advance(1)
        self.assertTrue(bob.transport.disconnected)
        self.assertEqual(alice.read(), ["*** bob left (1 here): send queue exceeded"])

    def test_send_queue_overflow(self) -> None:
        server, _clock = make_server(max_sendq=300)
        alice, bob, carol = room(server, "alice", "bob", "carol")
        bob.chat.outbox.pauseProducing()  # bob stopped reading
        for i in range(30):
            alice.send(f"message {i}")
        # carol got every line, then bob's leave: one order for everyone.
        self.assertEqual(
            carol.read(),
            [f"<alice> message {i}" for i in range(30)]
            + ["*** bob left (2 here): send queue exceeded"],
        )
        self.assertTrue(bob.transport.disconnected)


class ConnectionLimitTests(SynchronousTestCase):
    def test_seventeenth_connection_from_one_address(self) -> None:
        server, _ = make_server(max_per_ip=16)
        users = [FakeUser(server, host="10.0.0.1") for _ in range(16)]
        extra = FakeUser(server, host="10.0.0.1")
        self.assertEqual(
            extra.read(),
            ["! too many connections from your address (limit 16); try again later"],
        )
        self.assertTrue(extra.closing)
        other = FakeUser(server, host="10.0.0.2")
        self.assertEqual(other.read()[-1], "? Choose a nickname:")
        users[0].close()
        again = FakeUser(server, host="10.0.0.1")
        self.assertEqual(again.read()[-1], "? Choose a nickname:")


class WrongProtocolTests(SynchronousTestCase):
    def test_http_request_gets_one_line_and_is_closed(self) -> None:
        server, _ = make_server()
        browser = FakeUser(server)
        browser.read()
        browser.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertEqual(
            browser.read(),
            [
                "! this is a twchat chat server, not a web server; "
                "connect with nc, telnet or python -m twchat.client"
            ],
        )
        self.assertTrue(browser.closing)

    def test_tls_client_hello_on_the_plain_port(self) -> None:
        server, _ = make_server()
        client = FakeUser(server)
        client.read()
        client.raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40)
        self.assertEqual(
            client.read(),
            ["! this port speaks plain text, not TLS; connect without TLS"],
        )
        self.assertTrue(client.closing)


class PropertyTests(SynchronousTestCase):
    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        st.lists(
            st.tuples(
                st.integers(0, 2),
                st.binary(max_size=300)
                | st.sampled_from(
                    [b"alice\n", b"bob\r\n", b"/nick alice\n", b"/quit\n", b"\x1b[2J\n"]
                ),
            ),
            max_size=40,
        )
    )
    def test_random_bytes_never_break_the_rules(
        self, chunks: list[tuple[int, bytes]]
    ) -> None:
        server, clock = make_server(max_line=64, lines_per_turn=5)
        users = [FakeUser(server) for _ in range(3)]
        watcher = register(server, "watcher")
        watcher.read()
        for who, data in chunks:
            if not users[who].closing:
                users[who].raw(data)  # no exception may escape
            clock.advance(0)
        clock.advance(1)
        for line in watcher.read():
            self.assertFalse(_CONTROLS & set(line), repr(line))
            if line.startswith("<"):
                _nick, _, text = line[1:].partition("> ")
                self.assertLessEqual(len(text.encode()), 64)
                self.assertEqual(clean_text(text), text)
        keys = [user.nick.lower() for user in server.hub.users.values()]
        self.assertEqual(len(keys), len(set(keys)))
        for key, member in server.hub.users.items():
            self.assertEqual(key, member.nick.lower())
