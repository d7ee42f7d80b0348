from __future__ import annotations

import socket

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import ISystemHandle
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from twchat.connection.outbox import Flusher, Outbox


class CountingTransport(StringTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


class PushModeTests(SynchronousTestCase):
    """Any transport without a socket of its own: TLS, test transports."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.flusher = Flusher(self.clock)
        self.transport = CountingTransport()
        self.overflows = 0
        self.outbox = Outbox(
            self.transport, self.flusher, 100, self, self.clock.seconds
        )

    def send_queue_exceeded(self) -> None:
        self.overflows += 1

    def test_registers_as_streaming_producer(self) -> None:
        self.assertIs(self.transport.producer, self.outbox)
        self.assertTrue(self.transport.streaming)

    def test_one_turns_lines_leave_in_one_write_in_order(self) -> None:
        for i in range(5):
            self.outbox.write(b"line %d\r\n" % i)
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0)
        self.assertEqual(self.transport.writes, 1)
        self.assertEqual(
            self.transport.value(), b"".join(b"line %d\r\n" % i for i in range(5))
        )

    def test_end_of_turn_work_fills_outboxes_that_send_in_the_same_run(
        self,
    ) -> None:
        self.flusher.later(lambda: self.outbox.write(b"from the room\r\n"))
        self.outbox.write(b"direct\r\n")
        self.clock.advance(0)
        self.assertEqual(self.transport.writes, 1)
        self.assertEqual(self.transport.value(), b"direct\r\nfrom the room\r\n")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_work_brought_by_work_runs_next_turn(self) -> None:
        done: list[str] = []

        def first() -> None:
            done.append("first")
            self.flusher.later(lambda: done.append("second"))

        self.flusher.later(first)
        self.clock.advance(0)
        self.assertEqual(done, ["first", "second"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_what_sending_brings_waits_for_the_next_turn(self) -> None:
        turns: list[int] = []

        def write_more(data: bytes) -> None:
            CountingTransport.write(self.transport, data)
            if self.transport.writes == 1:
                self.outbox.write(b"next chunk\r\n")  # a producer's, say
                # Not sent in this run: a turn of its own is scheduled.
                turns.append(len(self.clock.getDelayedCalls()))

        self.transport.write = write_more  # type: ignore[method-assign]
        self.outbox.write(b"first\r\n")
        self.clock.advance(0)
        self.assertEqual(turns, [1])
        self.assertEqual(self.transport.writes, 2)
        self.assertEqual(self.transport.value(), b"first\r\nnext chunk\r\n")

    def test_paused_transport_lines_wait_and_are_counted(self) -> None:
        self.clock.advance(3)
        self.outbox.pauseProducing()
        self.outbox.write(b"a" * 40)
        self.outbox.write(b"b" * 40)
        self.clock.advance(0)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.outbox.queued, 80)
        self.assertEqual(self.outbox.waiting_since, 3)
        self.outbox.resumeProducing()
        self.assertEqual(self.transport.value(), b"a" * 40 + b"b" * 40)
        self.assertEqual(self.outbox.queued, 0)
        self.assertIsNone(self.outbox.waiting_since)

    def test_overflow_behind_a_paused_transport(self) -> None:
        self.outbox.pauseProducing()
        self.outbox.write(b"x" * 60)
        self.outbox.write(b"x" * 60)
        self.assertEqual(self.overflows, 1)
        self.outbox.write(b"more")
        self.outbox.resumeProducing()
        self.clock.advance(0)
        self.assertEqual(self.overflows, 1)
        self.assertEqual(self.transport.value(), b"")

    def test_a_big_burst_to_a_reading_client_is_no_overflow(self) -> None:
        for _ in range(10):
            self.outbox.write(b"y" * 50)
        self.clock.advance(0)
        self.assertEqual(self.overflows, 0)
        self.assertEqual(len(self.transport.value()), 500)

    def test_close_sends_what_waits_then_lets_go(self) -> None:
        self.outbox.write(b"bye\r\n")
        self.outbox.close()
        self.assertEqual(self.transport.value(), b"bye\r\n")
        self.assertIsNone(self.transport.producer)
        self.outbox.write(b"late")
        self.clock.advance(0)
        self.assertEqual(self.transport.value(), b"bye\r\n")

    def test_discard_drops_what_waits(self) -> None:
        self.outbox.write(b"never")
        self.outbox.discard()
        self.clock.advance(0)
        self.assertEqual(self.transport.value(), b"")
        self.assertIsNone(self.transport.producer)


@implementer(ISystemHandle)
class SocketTransport(FileDescriptor):
    """A real socket behind Twisted's own buffering, on a fake reactor."""

    def __init__(self, sock: socket.socket, reactor: MemoryReactorClock) -> None:
        super().__init__(reactor)
        self.socket = sock
        self.connected = True

    def getHandle(self) -> socket.socket:
        return self.socket

    def fileno(self) -> int:
        return self.socket.fileno()

    def writeSomeData(self, data: bytes) -> int:
        try:
            return self.socket.send(data)
        except BlockingIOError:
            return 0


class DirectModeTests(SynchronousTestCase):
    """Plain sockets: an idle one is written to straight away."""

    def setUp(self) -> None:
        self.ours, self.peer = socket.socketpair()
        self.addCleanup(self.ours.close)
        self.addCleanup(self.peer.close)
        self.ours.setblocking(False)
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.peer.setblocking(False)
        self.reactor = MemoryReactorClock()
        self.transport = SocketTransport(self.ours, self.reactor)
        self.flusher = Flusher(self.reactor)
        self.outbox = Outbox(
            self.transport,
            self.flusher,
            1_000_000,
            self,
            self.reactor.seconds,
        )

    def send_queue_exceeded(self) -> None:
        self.fail("nothing here comes near the 1 MB bound")

    def received(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                data = self.peer.recv(1 << 20)
            except BlockingIOError:
                return b"".join(chunks)
            chunks.append(data)

    def test_registers_as_pull_producer(self) -> None:
        self.assertIs(self.transport.producer, self.outbox)
        self.assertFalse(self.transport.streamingProducer)

    def test_idle_socket_gets_the_bytes_without_the_reactor(self) -> None:
        self.outbox.write(b"hello\r\n")
        self.outbox.write(b"world\r\n")
        self.reactor.advance(0)
        self.assertEqual(self.received(), b"hello\r\nworld\r\n")
        self.assertEqual(self.reactor.getWriters(), [])

    def test_a_rooms_lines_at_the_turns_end_leave_as_they_are_handed_out(
        self,
    ) -> None:
        seen: list[bytes] = []

        def hand_out() -> None:  # a room at the end of its turn
            self.outbox.write(b"<ann> hi\r\n")
            seen.append(self.received())

        self.flusher.later(hand_out)
        self.reactor.advance(0)
        self.assertEqual(seen, [b"<ann> hi\r\n"])
        self.assertEqual(self.flusher.stats.bytes_out, len(b"<ann> hi\r\n"))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_what_waits_from_earlier_in_the_turn_still_goes_first(self) -> None:
        self.flusher.later(lambda: self.outbox.write(b"<ann> hi\r\n"))
        self.outbox.write(b"*** notice\r\n")  # during the turn: it waits
        self.reactor.advance(0)
        self.assertEqual(self.received(), b"*** notice\r\n<ann> hi\r\n")

    def test_leftovers_go_through_the_transport_then_direct_again(self) -> None:
        big = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes
        self.outbox.write(big)
        self.reactor.advance(0)
        self.assertIn(self.transport, self.reactor.getWriters())
        self.outbox.write(b"after\r\n")  # waits: the transport is busy
        self.reactor.advance(0)
        got = self.received()
        while self.transport in self.reactor.getWriters():
            self.transport.doWrite()  # the reactor's job, by hand
            got += self.received()
        got += self.received()
        self.assertEqual(got, big + b"after\r\n")
        self.assertEqual(self.outbox.queued, 0)


class HandOutTests(SynchronousTestCase):
    """A room's bytes for many members: ``Flusher.hand_out``."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.flusher = Flusher(self.reactor)
        self.peers: list[socket.socket] = []
        self.transports: list[SocketTransport] = []
        self.outboxes = [self.socket_outbox() for _ in range(3)]
        self.pushed = CountingTransport()  # TLS or WebSocket: no socket
        self.outboxes.append(
            Outbox(self.pushed, self.flusher, 1_000_000, self, self.reactor.seconds)
        )

    def socket_outbox(self) -> Outbox:
        ours, peer = socket.socketpair()
        for sock in (ours, peer):
            self.addCleanup(sock.close)
            sock.setblocking(False)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.peers.append(peer)
        transport = SocketTransport(ours, self.reactor)
        self.transports.append(transport)
        return Outbox(transport, self.flusher, 1_000_000, self, self.reactor.seconds)

    def send_queue_exceeded(self) -> None:
        self.fail("nothing here comes near the 1 MB bound")

    def received(self, i: int) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                data = self.peers[i].recv(1 << 20)
            except BlockingIOError:
                return b"".join(chunks)
            chunks.append(data)

    def test_each_gets_the_bytes_at_once_and_each_byte_is_counted_once(
        self,
    ) -> None:
        seen: list[list[bytes]] = []
        line = b"<ann> hi\r\n"

        def room() -> None:
            self.flusher.hand_out(self.outboxes, line)
            seen.append([self.received(i) for i in range(3)])
            seen.append([self.pushed.value()])

        self.flusher.later(room)
        self.reactor.advance(0)
        self.assertEqual(seen, [[line] * 3, [line]])
        self.assertEqual(self.flusher.stats.bytes_out, 4 * len(line))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_what_waits_goes_first_and_a_closed_outbox_gets_nothing(
        self,
    ) -> None:
        self.outboxes[0].write(b"*** notice\r\n")  # during the turn: it waits
        self.outboxes[1].discard()  # being cut
        self.flusher.later(lambda: self.flusher.hand_out(self.outboxes, b"<a> x\r\n"))
        self.reactor.advance(0)
        self.assertEqual(self.received(0), b"*** notice\r\n<a> x\r\n")
        self.assertEqual(self.received(1), b"")
        self.assertEqual(self.received(2), b"<a> x\r\n")
        self.assertEqual(
            self.flusher.stats.bytes_out, len(b"*** notice\r\n") + 3 * len(b"<a> x\r\n")
        )

    def test_what_a_socket_does_not_take_follows_through_its_transport(
        self,
    ) -> None:
        big = bytes(range(256)) * 4096  # 1 MiB: more than a socket takes
        self.flusher.later(lambda: self.flusher.hand_out(self.outboxes[:2], big))
        self.reactor.advance(0)
        self.assertFalse(self.outboxes[0].writable)
        self.assertIsNotNone(self.outboxes[0].waiting_since)
        # Later lines wait behind the rest, and every byte arrives in order.
        self.flusher.later(
            lambda: self.flusher.hand_out(self.outboxes[:2], b"after\r\n")
        )
        self.reactor.advance(0)
        got = [self.received(0), self.received(1)]
        while any(t in self.reactor.getWriters() for t in self.transports[:2]):
            for i, transport in enumerate(self.transports[:2]):
                if transport in self.reactor.getWriters():
                    transport.doWrite()  # the reactor's job, by hand
                got[i] += self.received(i)
            self.reactor.advance(0)
        got = [got[i] + self.received(i) for i in range(2)]
        self.assertEqual(got, [big + b"after\r\n"] * 2)
        self.assertEqual(self.flusher.stats.bytes_out, 2 * len(big + b"after\r\n"))

    def test_outside_the_turns_end_the_bytes_wait_for_the_flush(self) -> None:
        self.flusher.hand_out(self.outboxes, b"<a> late\r\n")  # as Room.stop
        self.assertEqual(self.received(0), b"")
        self.reactor.advance(0)
        self.assertEqual([self.received(i) for i in range(3)], [b"<a> late\r\n"] * 3)
        self.assertEqual(self.pushed.value(), b"<a> late\r\n")
