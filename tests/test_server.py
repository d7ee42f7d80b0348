import signal
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twchat.backend import UnavailableError
from twchat.config import ChatConfig
from twchat.hub import UNAVAILABLE
from twchat.server import ChatServer

from .support.fakes import FakeUser, RecordingMember, make_server, register, room


class ServerFullTests(SynchronousTestCase):
    def test_one_connection_too_many_is_told_and_closed(self) -> None:
        server, _ = make_server(max_clients=2)
        room(server, "alice")
        FakeUser(server)  # unregistered connections count too
        extra = FakeUser(server)
        self.assertEqual(extra.read(), ["! server is full (2 users); try again later"])
        self.assertTrue(extra.closing)
        self.assertEqual(len(server.pool.connections), 2)

    def test_a_place_frees_up_when_someone_leaves(self) -> None:
        server, _ = make_server(max_clients=1)
        (alice,) = room(server, "alice")
        alice.close()
        newcomer = FakeUser(server)
        self.assertEqual(newcomer.read()[-1], "? Choose a nickname:")


class ShutdownTests(SynchronousTestCase):
    def test_everyone_hears_the_shutdown_and_is_closed(self) -> None:
        server, clock = make_server()
        alice, bob = room(server, "alice", "bob")
        lurker = FakeUser(server)
        lurker.read()
        done = server.shutdown()
        for user in (alice, bob, lurker):
            self.assertEqual(user.read(), ["*** Server is shutting down. Bye!"])
            self.assertTrue(user.closing)
        self.assertNoResult(done)
        for user in (alice, bob, lurker):
            user.close()
        # No "left" notices fly around while everyone goes.
        self.assertEqual(alice.read() + bob.read(), [])
        self.successResultOf(done)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_peers_that_do_not_close_are_cut_at_the_deadline(self) -> None:
        server, clock = make_server(shutdown_grace=5.0)
        alice, bob = room(server, "alice", "bob")
        done = server.shutdown()
        alice.close()
        clock.advance(4.9)
        self.assertNoResult(done)
        clock.advance(0.2)
        self.successResultOf(done)
        self.assertTrue(bob.transport.disconnecting)

    def test_nobody_connected(self) -> None:
        server, _ = make_server()
        self.successResultOf(server.shutdown())

    def test_no_new_connections_while_shutting_down(self) -> None:
        server, _ = make_server()
        room(server, "alice")
        server.shutdown()
        late = FakeUser(server)
        self.assertEqual(late.read(), ["! server is shutting down"])
        self.assertTrue(late.closing)
        self.assertNotIn(late.protocol, server.pool.connections)


class _SignalledClock(Clock):
    """A clock standing in for a reactor that was stopped by SIGTERM."""

    _exitSignal: int | None = signal.SIGTERM


class ServerServiceTests(SynchronousTestCase):
    def test_graceful_stop_is_not_reported_as_death_by_signal(self) -> None:
        clock = _SignalledClock()
        service = server = ChatServer(clock, ChatConfig())
        service.startService()
        alice = register(server, "alice")
        d = service.stopService()
        self.assertEqual(clock._exitSignal, signal.SIGTERM)
        alice.close()
        self.successResultOf(d)
        self.assertIsNone(clock._exitSignal)
        self.assertFalse(service.running)


class JoinLogTests(SynchronousTestCase):
    """Registrations are logged with their peer, a line per reactor turn."""

    def joins(self) -> list[str]:
        texts = [str(formatEvent(e)) for e in self.events]
        return [text for text in texts if "joined" in text]

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)  # zope adapts it
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.clock = Clock()
        self.server = ChatServer(self.clock, ChatConfig(flood_rate=0))
        self.server.start()

    def test_one_join_one_line(self) -> None:
        user = register(self.server, "ann")
        port = user.transport.getPeer().port
        self.assertEqual(self.joins(), [f"ann joined from 127.0.0.1:{port}"])

    def test_the_joins_of_one_turn_share_a_line(self) -> None:
        users = [FakeUser(self.server) for _ in range(3)]
        for user, nick in zip(users, ("ann", "bob", "cy"), strict=True):
            user.send(nick)  # all in this turn: nothing has run the clock
        self.assertEqual(self.joins(), [])
        self.clock.advance(0)
        ports = [u.transport.getPeer().port for u in users]
        self.assertEqual(
            self.joins(),
            [
                f"3 joined: ann from 127.0.0.1:{ports[0]}, "
                f"bob from 127.0.0.1:{ports[1]}, cy from 127.0.0.1:{ports[2]}"
            ],
        )
        register(self.server, "dee")
        self.assertEqual(len(self.joins()), 2)
        self.assertIn("dee joined from 127.0.0.1:", self.joins()[1])


class BackgroundTests(SynchronousTestCase):
    """The hub runs an action's work at once, and waits only if it must."""

    def setUp(self) -> None:
        self.hub = ChatServer(Clock(), ChatConfig()).hub
        self.member = RecordingMember("ann")
        self.seen: list[object] = []

    def test_work_that_needs_no_wait_is_done_before_the_call_returns(self) -> None:
        async def work() -> None:
            self.seen.append(await succeed(1))
            self.seen.append(await succeed(2))

        self.assertIsNone(self.hub.background(self.member, work()))
        self.assertEqual(self.seen, [1, 2])

    def test_work_that_waits_goes_on_with_what_it_waited_for(self) -> None:
        first: Deferred[int] = Deferred()
        second: Deferred[int] = Deferred()

        async def work() -> None:
            self.seen.append(await first)
            self.seen.append(await succeed(2))
            self.seen.append(await second)

        waiting = self.hub.background(self.member, work())
        assert waiting is not None
        self.assertNoResult(waiting)
        first.callback(1)
        self.assertEqual(self.seen, [1, 2])
        self.assertNoResult(waiting)
        second.callback(3)
        self.assertEqual(self.seen, [1, 2, 3])
        self.assertIsNone(self.successResultOf(waiting))

    def test_the_state_out_of_reach_after_a_wait_is_told(self) -> None:
        later: Deferred[None] = Deferred()

        async def work() -> None:
            await later

        waiting = self.hub.background(self.member, work())
        assert waiting is not None
        later.errback(UnavailableError("gone"))
        self.successResultOf(waiting)
        self.assertEqual(self.member.take(), [f"! {UNAVAILABLE}"])

    def test_a_bug_in_work_done_at_once_is_logged_not_raised(self) -> None:
        async def work() -> None:
            raise ZeroDivisionError

        self.assertIsNone(self.hub.background(self.member, work()))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
