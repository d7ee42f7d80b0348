"""The connection as a transport for the protocol it wraps (HTTP, say)."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IPullProducer,
    IPushProducer,
)
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from twchat.connection.connection import Connection
from twchat.connection.factory import ConnectionFactory
from twchat.server import ChatServer

from .support.fakes import make_server


@implementer(IPushProducer, IPullProducer)
class _Producer:
    def __init__(self, consumer: Connection, chunk: bytes, chunks: int) -> None:
        self.consumer = consumer
        self.chunk = chunk
        self.left = chunks
        self.paused = False
        self.pulls = 0

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.pulls += 1
        if self.left:
            self.left -= 1
            self.consumer.write(self.chunk)

    def stopProducing(self) -> None:
        self.left = 0


class _Inner(Protocol):
    """A wrapped protocol that never chats (like HTTP before its upgrade)."""


class _InnerFactory:
    web = False

    def buildProtocol(self, addr: IAddress | None) -> IProtocol:
        return _Inner()

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass

    def refusal(self, why: str, clock: object) -> IProtocol:
        raise AssertionError("not refused in these tests")


def _connect(server: ChatServer) -> tuple[Connection, StringTransport]:
    factory = ConnectionFactory(server, _InnerFactory())
    built: object = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert isinstance(built, Connection)
    connection = built
    transport = StringTransport()
    connection.makeConnection(transport)
    return connection, transport


class ProducerTests(SynchronousTestCase):
    def test_a_push_producer_waits_while_the_outbox_cannot_send(self) -> None:
        server, clock = make_server()
        connection, transport = _connect(server)
        producer = _Producer(connection, b"x" * 1000, 10)
        connection.registerProducer(producer, True)
        connection.outbox.pauseProducing()  # the peer stopped reading
        producer.resumeProducing()
        self.assertTrue(producer.paused)
        connection.outbox.resumeProducing()  # it reads again
        self.assertFalse(producer.paused)
        clock.advance(0)
        self.assertEqual(transport.value(), b"x" * 2000)

    def test_a_pull_producer_is_asked_for_each_piece(self) -> None:
        server, clock = make_server()
        connection, transport = _connect(server)
        producer = _Producer(connection, b"y" * 100, 5)
        connection.registerProducer(producer, False)
        for _ in range(10):
            clock.advance(0)
        self.assertEqual(transport.value(), b"y" * 500)
        self.assertLessEqual(producer.pulls, 7)
        connection.unregisterProducer()
        clock.advance(0)
        self.assertEqual(transport.value(), b"y" * 500)
