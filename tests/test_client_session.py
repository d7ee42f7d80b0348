"""The client's session over StringTransport, with a fake clock."""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import (
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from twchat.accounts import TAKEN_OVER
from twchat.client.app import session_service
from twchat.client.render import Kind, Line
from twchat.client.session import (
    QUIT_TIMEOUT,
    RETRY_NICK_EVERY,
    RETRY_NICK_FOR,
    ClientProtocol,
    ClientSession,
)
from twchat.client.tty import TerminalUI
from twchat.wire import IDLE_FOR


class Screen:
    """A front end that remembers what it was asked to show."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.asked = 0
        self.asked_password = 0

    def show(self, line: Line) -> None:
        self.lines.append(line)

    def ask_nick(self) -> None:
        self.asked += 1

    def ask_password(self) -> None:
        self.asked_password += 1

    def texts(self) -> list[str]:
        seen, self.lines = [line.text for line in self.lines], []
        return seen


class Connection:
    def __init__(self, session: ClientSession) -> None:
        self.transport = StringTransport()
        self.protocol = ClientProtocol(session)
        self.protocol.makeConnection(self.transport)
        #: What the client says as soon as it is connected.
        self.opening = self.sent()
        assert self.opening[0] == "/ids", self.opening

    def server(self, *lines: str) -> None:
        for line in lines:
            self.protocol.dataReceived(line.encode() + b"\r\n")

    def sent(self) -> list[str]:
        data: bytes = self.transport.value()
        self.transport.clear()
        return data.decode().splitlines()

    def lose(self, clean: bool = False) -> None:
        why = ConnectionDone() if clean else ConnectionLost()
        self.protocol.connectionLost(Failure(why))


GREETING = ("*** Welcome to twchat! 1 user online.", "? Choose a nickname:")


def make(
    nick: str = "", pipe: bool = False, password: str = "", tls: bool = False
) -> tuple[ClientSession, Screen, Clock]:
    screen, clock = Screen(), Clock()
    session = ClientSession(
        screen, clock, nick=nick, pipe=pipe, password=password, tls=tls
    )
    return session, screen, clock


class PasswordTests(SynchronousTestCase):
    def test_the_user_is_asked_and_the_password_is_not_shown(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING)
        self.assertEqual(conn.sent(), ["alice"])
        conn.server("? Password for alice:")
        self.assertEqual(screen.asked_password, 1)
        session.typed("s3cret-pass")
        self.assertEqual(conn.sent(), ["s3cret-pass"])
        conn.server("*** Welcome, alice! #lobby has 1 user: alice")
        self.assertNotIn("<alice> s3cret-pass", screen.texts())
        self.assertTrue(session.registered)

    def test_an_empty_password_gives_the_name_back_to_choose_another(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING)
        conn.server("? Password for alice:")
        self.assertEqual(conn.sent(), ["alice"])
        session.typed("")
        self.assertEqual(conn.sent(), [""])
        conn.server("? Choose a nickname:")
        # The user chooses, not the client again with the same name.
        self.assertEqual(conn.sent(), [])
        self.assertEqual(screen.asked, 1)
        session.typed("carol")
        self.assertEqual(conn.sent(), ["carol"])

    def test_after_a_reconnect_it_logs_in_again_by_itself(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING)
        conn.server("? Password for alice:")
        session.typed("s3cret-pass")
        conn.server("*** Welcome, alice! #lobby has 1 user: alice")
        conn.sent()
        conn.lose()
        again = Connection(session)
        again.server(*GREETING)
        again.server("? Password for alice:")
        self.assertEqual(again.sent(), ["alice", "s3cret-pass"])
        self.assertEqual(screen.asked_password, 1)

    def test_a_password_set_in_the_session_is_the_one_used_after_a_reconnect(
        self,
    ) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING, "*** Welcome, alice! #lobby has 1 user: alice")
        session.typed("/register first-pass")
        self.assertEqual(conn.sent(), ["alice", "/register first-pass"])
        conn.server(
            "*** alice is now registered; next time you will be asked for its password"
        )
        session.typed("/password first-pass second-pass")
        session.typed("/password wrong-pass third-pass")
        conn.server("*** your password has been changed", "! wrong password for alice")
        conn.lose()
        again = Connection(session)
        again.server(*GREETING, "? Password for alice:")
        # The one the server confirmed; the refused change is not kept.
        self.assertEqual(again.sent(), ["alice", "second-pass"])
        self.assertEqual(screen.asked_password, 0)

    def test_a_given_password_answers_and_a_wrong_one_is_dropped(self) -> None:
        session, screen, _ = make(nick="alice", password="given-pass")
        conn = Connection(session)
        conn.server(*GREETING, "? Password for alice:")
        self.assertEqual(conn.sent(), ["alice", "given-pass"])
        conn.server("! wrong password for alice", "? Password for alice:")
        self.assertEqual(screen.asked_password, 1)  # the wrong one is not resent
        self.assertEqual(session.password, "")
        self.assertEqual(conn.sent(), [])
        session.typed("right-pass")
        self.assertEqual(conn.sent(), ["right-pass"])
        conn.server("*** Welcome, alice! #lobby has 1 user: alice")
        self.assertTrue(session.registered)

    def test_piped_without_a_password_exits_2(self) -> None:
        session, screen, _ = make(nick="alice", pipe=True)
        conn = Connection(session)
        conn.server(*GREETING, "? Password for alice:")
        self.assertEqual(self.successResultOf(session.done), 2)
        self.assertIn(
            "-- no password: give --password-file or TWCHAT_PASSWORD", screen.texts()
        )

    def test_piped_with_a_wrong_password_exits_2(self) -> None:
        session, _, _ = make(nick="alice", pipe=True, password="wrong-pass")
        conn = Connection(session)
        conn.server(*GREETING, "? Password for alice:")
        conn.server("! wrong password for alice", "? Password for alice:")
        self.assertEqual(self.successResultOf(session.done), 2)


class HandshakeTests(SynchronousTestCase):
    def test_nick_from_the_command_line_answers_the_prompt(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING)
        self.assertEqual(conn.sent(), ["alice"])
        conn.server("*** Welcome, alice! #lobby has 2 users: bob, alice")
        self.assertTrue(session.registered)
        self.assertEqual(screen.asked, 0)

    def test_without_a_nick_the_user_is_asked(self) -> None:
        session, screen, _ = make()
        conn = Connection(session)
        conn.server(*GREETING)
        self.assertEqual(screen.asked, 1)
        self.assertEqual(conn.sent(), [])
        session.typed("alice")
        self.assertEqual(conn.sent(), ["alice"])

    def test_refused_nick_lets_the_user_try_again(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING)
        conn.sent()
        conn.server("! nickname alice is already taken", "? Choose a nickname:")
        self.assertEqual(screen.asked, 1)
        session.typed("alice2")
        self.assertEqual(conn.sent(), ["alice2"])
        conn.server("*** Welcome, alice2! #lobby has 2 users: alice, alice2")
        self.assertEqual(session.nick, "alice2")
        self.assertIn("! nickname alice is already taken", screen.texts())

    def test_refused_piped_nick_exits_2(self) -> None:
        session, _, _ = make(pipe=True)
        conn = Connection(session)
        session.typed("9bad")
        conn.server(*GREETING)
        self.assertEqual(conn.sent(), ["9bad"])
        conn.server("! nickname must not start with a digit or '-'")
        self.assertEqual(self.successResultOf(session.done), 2)

    def test_banned_from_the_server_exits_1(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server("! you are banned from this server for 1h: spam")
        conn.lose(clean=True)
        self.assertEqual(self.successResultOf(session.done), 1)
        self.assertEqual(
            screen.texts(), ["! you are banned from this server for 1h: spam"]
        )

    def test_an_account_banned_at_login_may_choose_another_name(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING)
        self.assertEqual(conn.sent(), ["alice"])
        conn.server("! you are banned from this server", "? Choose a nickname:")
        self.assertEqual(conn.sent(), [])  # not alice again, and again
        self.assertEqual(screen.asked, 1)
        conn.lose()  # later, a connection lost like any other
        self.assertFalse(session.done.called)
        self.assertIn("-- connection lost; reconnecting...", screen.texts())

    def test_a_banned_pipe_exits_1(self) -> None:
        session, _, _ = make(nick="alice", pipe=True)
        conn = Connection(session)
        conn.server(*GREETING, "! you are banned from this server")
        self.assertEqual(self.successResultOf(session.done), 1)

    def test_server_full_exits_1(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server("! server is full (200 users); try again later")
        self.assertEqual(self.successResultOf(session.done), 1)
        self.assertEqual(
            screen.texts(), ["! server is full (200 users); try again later"]
        )


class ChattingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.session, self.screen, self.clock = make(nick="alice")
        self.conn = Connection(self.session)
        self.conn.server(*GREETING, "*** Welcome, alice! #lobby has 1 user: alice")
        self.conn.sent()
        self.screen.texts()

    def test_typed_lines_are_sent_and_shown_as_own(self) -> None:
        self.session.typed("hello")
        self.session.typed("/me waves")
        self.session.typed("//slash")
        self.session.typed("/who")
        self.assertEqual(self.conn.sent(), ["hello", "/me waves", "//slash", "/who"])
        own = [line for line in self.screen.lines if line.kind is Kind.OWN]
        self.assertEqual(
            [line.text for line in own],
            ["<alice> hello", "* alice waves", "<alice> /slash"],
        )

    def test_incoming_lines_are_classified_and_cleaned(self) -> None:
        self.conn.server("<bob> hi alice \x1b[2J", "*bob* psst", "! oops")
        kinds = [(line.kind, line.text, line.mentions_me) for line in self.screen.lines]
        self.assertEqual(
            kinds,
            [
                (Kind.CHAT, "<bob> hi alice", True),
                (Kind.PRIVATE, "*bob* psst", False),
                (Kind.ERROR, "! oops", False),
            ],
        )

    def test_nick_change_is_followed(self) -> None:
        self.session.typed("/nick alicia")
        self.conn.server("*** alice is now known as alicia")
        self.assertEqual(self.session.nick, "alicia")
        self.conn.server("*** bob is now known as robert")
        self.assertEqual(self.session.nick, "alicia")

    def test_sent_away_by_an_operator_exits_1_without_reconnecting(self) -> None:
        self.conn.server("! you were disconnected by olga: enough")
        self.conn.lose(clean=True)
        self.assertEqual(self.successResultOf(self.session.done), 1)
        # Shown, and no "connection lost; reconnecting...".
        self.assertEqual(
            self.screen.texts(), ["! you were disconnected by olga: enough"]
        )

    def test_closed_as_idle_exits_1_without_reconnecting(self) -> None:
        # Back at once, the absent user would be closed again, and again.
        self.conn.server(f"! {IDLE_FOR}600 seconds; closing")
        self.conn.lose(clean=True)
        self.assertEqual(self.successResultOf(self.session.done), 1)
        self.assertEqual(self.screen.texts(), [f"! {IDLE_FOR}600 seconds; closing"])

    def test_taken_over_by_another_login_exits_1_without_reconnecting(self) -> None:
        # Reconnecting would log in again and take the other one over in
        # turn: two clients of one account closing each other for ever.
        self.conn.server(f"*** alice{TAKEN_OVER}")
        self.conn.lose(clean=True)
        self.assertEqual(self.successResultOf(self.session.done), 1)
        self.assertEqual(self.screen.texts(), [f"*** alice{TAKEN_OVER}"])

    def test_reconnect_registers_again_with_the_same_nick(self) -> None:
        self.conn.lose()
        self.assertEqual(self.screen.texts(), ["-- connection lost; reconnecting..."])
        self.assertFalse(self.session.registered)
        self.session.typed("typed while away")
        again = Connection(self.session)
        again.server(*GREETING)
        self.assertEqual(again.sent(), ["alice"])
        again.server("*** Welcome, alice! #lobby has 1 user: alice")
        self.assertEqual(again.sent(), ["typed while away"])
        self.assertFalse(self.session.done.called)

    def test_reconnect_waits_for_the_nick_the_lost_connection_holds(self) -> None:
        # Behind a load balancer the reconnect may reach another server
        # while the lost connection still holds the name (Redis mode).
        self.conn.lose()
        again = Connection(self.session)
        again.server(*GREETING)
        self.assertEqual(again.sent(), ["alice"])
        self.screen.texts()
        again.server("! nickname alice is already taken", "? Choose a nickname:")
        self.assertEqual(self.screen.asked, 0)
        self.assertIn(
            "-- alice is still held by the lost connection; trying again in 2 s",
            self.screen.texts(),
        )
        self.assertEqual(again.sent(), [])
        self.clock.advance(RETRY_NICK_EVERY)
        self.assertEqual(again.sent(), ["alice"])
        again.server(
            "! the chat has lost contact with its Redis server; try again shortly",
            "? Choose a nickname:",
        )
        self.clock.advance(RETRY_NICK_EVERY)
        self.assertEqual(again.sent(), ["alice"])
        again.server("*** Welcome, alice! #lobby has 1 user: alice")
        self.assertTrue(self.session.registered)
        self.assertEqual(self.screen.asked, 0)

    def test_after_a_while_the_user_chooses_another_nick(self) -> None:
        self.conn.lose()
        again = Connection(self.session)
        again.server(*GREETING)
        self.assertEqual(again.sent(), ["alice"])
        tries = 0  # retries after that first attempt
        while self.screen.asked == 0:
            again.server("! nickname alice is already taken", "? Choose a nickname:")
            self.clock.advance(RETRY_NICK_EVERY)
            tries += len(again.sent())
        self.assertEqual(tries, RETRY_NICK_FOR / RETRY_NICK_EVERY)
        # Someone else's refusal reasons are not waited on.
        self.session.typed("alicia")
        self.assertEqual(again.sent(), ["alicia"])
        again.server("! nickname alicia is reserved", "? Choose a nickname:")
        self.assertEqual(self.screen.asked, 2)

    def test_quit_waits_for_the_server_then_exits_0(self) -> None:
        self.session.typed("/quit bye all")
        self.assertEqual(self.conn.sent(), ["/quit bye all"])
        self.assertNoResult(self.session.done)
        self.conn.server("*** Goodbye!")
        self.conn.lose(clean=True)
        self.assertEqual(self.successResultOf(self.session.done), 0)

    def test_quit_gives_up_waiting_after_a_while(self) -> None:
        self.session.input_ended()  # Ctrl-D
        self.assertEqual(self.conn.sent(), ["/quit"])
        self.clock.advance(QUIT_TIMEOUT)
        self.assertEqual(self.successResultOf(self.session.done), 0)
        self.assertTrue(self.conn.transport.disconnecting)


class PipeTests(SynchronousTestCase):
    def test_piped_lines_before_connecting_go_out_in_order(self) -> None:
        session, screen, _ = make(pipe=True)
        for line in ["bot", "one", "two", "/me three"]:
            session.typed(line)
        session.input_ended()
        conn = Connection(session)
        conn.server(*GREETING)
        self.assertEqual(conn.sent(), ["bot"])
        conn.server("*** Welcome, bot! #lobby has 2 users: x, bot")
        self.assertEqual(conn.sent(), ["one", "two", "/me three", "/quit"])
        # Pipe mode shows only what the server sent: no local echo.
        self.assertFalse([line for line in screen.lines if line.kind is Kind.OWN])
        conn.server("*** Goodbye!")
        conn.lose(clean=True)
        self.assertEqual(self.successResultOf(session.done), 0)

    def test_losing_the_connection_in_pipe_mode_exits_1(self) -> None:
        session, screen, _ = make(nick="bot", pipe=True)
        conn = Connection(session)
        conn.server(*GREETING, "*** Welcome, bot! #lobby has 1 user: bot")
        conn.lose()
        self.assertEqual(self.successResultOf(session.done), 1)
        self.assertTrue(screen.texts()[-1].startswith("-- connection lost"))


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """Connects every attempt to a fresh StringTransport."""

    def __init__(self) -> None:
        self.connections: list[tuple[ClientProtocol, StringTransport]] = []

    def connect(self, factory: Any) -> Deferred[Any]:
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.connections.append((protocol, transport))
        return succeed(protocol)


class ReconnectTests(SynchronousTestCase):
    def test_the_service_reconnects_with_backoff_and_registers_again(self) -> None:
        session, screen, clock = make(nick="alice")
        endpoint = FakeEndpoint()
        service = session_service(endpoint, session, clock)
        service.startService()
        protocol, transport = endpoint.connections[0]
        protocol.dataReceived(b"? Choose a nickname:\r\n")
        protocol.dataReceived(b"*** Welcome, alice! #lobby has 1 user: alice\r\n")
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertIn("-- connection lost; reconnecting...", screen.texts())
        self.assertEqual(len(endpoint.connections), 1)
        clock.advance(2.5)  # 1 s backoff plus up to 1 s of jitter
        self.assertEqual(len(endpoint.connections), 2)
        protocol, transport = endpoint.connections[1]
        protocol.dataReceived(b"? Choose a nickname:\r\n")
        self.assertEqual(transport.value(), b"/ids\nalice\n")
        self.assertFalse(session.done.called)
        service.stopService()

    def test_a_countdown_between_attempts_and_the_nick_kept(self) -> None:
        session, screen, clock = make(nick="alice")
        ui = TerminalUI(color=False)
        ui.session = session
        endpoint = FlakyEndpoint()
        service = session_service(endpoint, session, clock)
        service.startService()
        protocol, _ = endpoint.connections[0]
        protocol.dataReceived(b"? Choose a nickname:\r\n")
        protocol.dataReceived(b"*** Welcome, alice! #lobby has 1 user: alice\r\n")
        self.assertEqual(ui._message(), "alice> ")
        endpoint.refusing = True
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(screen.texts()[-1], "-- connection lost; reconnecting...")
        # The prompt keeps the nickname and counts down to the next attempt.
        first = session.countdown()
        assert first is not None
        self.assertIn(first, (2, 3))  # 1.5 s after a loss, plus up to 1 s jitter
        self.assertEqual(ui._message(), f"alice (reconnecting in {first} s)> ")
        waits = [first]
        for _ in range(4):  # each refused attempt: a longer wait, said once
            clock.advance(session.countdown() or 0)
            said = screen.texts()
            self.assertEqual(len(said), 1, said)
            self.assertTrue(said[0].startswith("-- no connection; trying again in "))
            left = session.countdown()
            assert left is not None
            waits.append(left)
            self.assertGreater(left, 1)  # backoff: 1.5 s and up after the first
            clock.advance(1)
            self.assertEqual(session.countdown(), left - 1)
        self.assertEqual(waits, sorted(waits))
        self.assertGreater(waits[-1], waits[0])
        endpoint.refusing = False
        clock.advance(session.countdown() or 0)
        self.assertEqual(screen.texts(), ["-- connected again"])
        self.assertIsNone(session.countdown())
        self.assertEqual(ui._message(), "alice (connecting)> ")
        protocol, transport = endpoint.connections[-1]
        protocol.dataReceived(b"? Choose a nickname:\r\n")
        self.assertEqual(transport.value(), b"/ids\nalice\n")
        protocol.dataReceived(b"*** Welcome, alice! #lobby has 1 user: alice\r\n")
        self.assertEqual(ui._message(), "alice> ")
        service.stopService()


@implementer(IStreamClientEndpoint)
class FlakyEndpoint(FakeEndpoint):
    """Refuses every attempt while ``refusing`` is set."""

    refusing = False

    def connect(self, factory: Any) -> Deferred[Any]:
        if self.refusing:
            return fail(ConnectionRefusedError())
        return super().connect(factory)


class ResumeTests(SynchronousTestCase):
    def test_back_to_our_room_after_the_last_line_seen(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING)
        self.assertEqual(conn.sent(), ["alice"])
        conn.server(
            "@#lobby *** Welcome, alice! #lobby has 2 users: alice, bob",
            "@3 <bob> hi",
            "*** bob joined (2 here)",
            "@#games *** #games has 1 user: alice",
            "@9 [12:00] <bob> earlier",
            "@12 * bob waves",
        )
        # Shown without the tags, as an untagged server would say them.
        self.assertEqual(
            screen.texts()[-5:],
            [
                "<bob> hi",
                "*** bob joined (2 here)",
                "*** #games has 1 user: alice",
                "[12:00] <bob> earlier",
                "* bob waves",
            ],
        )
        conn.lose()
        again = Connection(session)
        self.assertEqual(again.opening, ["/ids", "/resume games 12"])
        again.server(*GREETING)
        self.assertEqual(again.sent(), ["alice"])
        # Back in the same room: the id seen so far is kept.
        again.server(
            "@#lobby *** Welcome, alice! #lobby has 1 user: alice",
            "@#games *** #games has 2 users: alice, bob",
        )
        again.lose()
        self.assertEqual(Connection(session).opening, ["/ids", "/resume games 12"])


class WrongServerTests(SynchronousTestCase):
    """A port that is not a twchat server's, or not on the wire we speak."""

    def test_a_server_that_closes_without_a_word_is_a_clear_exit_1(self) -> None:
        said = "-- the server closed the connection without a word: "
        for pipe, tls, hint in [
            (False, False, " (one that speaks TLS needs --tls)"),
            (True, False, " (one that speaks TLS needs --tls)"),
            (False, True, ""),  # over TLS already: only the question
        ]:
            session, screen, _ = make(nick="alice", pipe=pipe, tls=tls)
            Connection(session).lose(clean=True)
            # Not "reconnecting" forever: a twchat server always greets first.
            self.assertEqual(self.successResultOf(session.done), 1)
            self.assertEqual(screen.texts(), [f"{said}is it a twchat server?{hint}"])

    def test_once_the_server_has_spoken_a_loss_is_a_loss(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        conn.server(*GREETING, "*** Welcome, alice! #lobby has 1 user: alice")
        conn.lose()
        screen.texts()
        # A restarting server may close the next connection unheard: retry.
        Connection(session).lose(clean=True)
        self.assertFalse(session.done.called)
        self.assertEqual(
            screen.texts(),
            ["-- connected again", "-- connection lost; reconnecting..."],
        )

    def test_tls_to_a_port_without_tls_says_so(self) -> None:
        session, screen, _ = make(nick="alice")
        conn = Connection(session)
        error = SSL.Error([("SSL routines", "", "wrong version number")])
        conn.protocol.connectionLost(Failure(error))
        self.assertEqual(self.successResultOf(session.done), 1)
        self.assertEqual(
            screen.texts(),
            [
                "-- TLS failed: the server does not speak TLS on this port "
                "(wrong version number)"
            ],
        )
