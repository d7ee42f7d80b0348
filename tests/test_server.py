import signal

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twchat.config import ChatConfig
from twchat.server import ChatServer

from .support.fakes import FakeUser, make_server, register, room


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
