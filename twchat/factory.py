"""The protocol factory: the shared chat state, connection limits, shutdown."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from .config import ChatConfig
from .events import Error, Notice
from .hub import Hub
from .member import Member
from .outbox import Flusher
from .protocol import ChatProtocol
from .wire import render_line

__all__ = ["ChatFactory"]


class _ServerFull(Protocol):
    """Tells one connection too many why it is being closed."""

    transport: ITransport

    def __init__(self, limit: int) -> None:
        self._line = render_line(
            Error(f"server is full ({limit} users); try again later")
        )

    def connectionMade(self) -> None:
        self.transport.write(self._line)
        self.transport.loseConnection()


class ChatFactory(Factory):
    """
    Builds a ``ChatProtocol`` per connection around one shared ``Hub``.

    The reactor is injected so tests can drive time with ``task.Clock``.
    """

    log = Logger()
    #: "Starting factory" lines say nothing a chat operator needs.
    noisy = False

    def __init__(
        self,
        reactor: IReactorTime,
        config: ChatConfig | None = None,
        hub: Hub | None = None,
    ) -> None:
        self.reactor = reactor
        self.config = config if config is not None else ChatConfig()
        self.hub = hub if hub is not None else Hub(reactor, self.config.presence)
        #: Every open connection, registered or not.
        self.connections: set[ChatProtocol] = set()
        #: Sends each turn's lines, one batch per connection.
        self.flusher = Flusher(reactor)
        self._drained: Deferred[None] | None = None
        self._deadline: IDelayedCall | None = None

    @property
    def users(self) -> dict[str, Member]:
        """Registered users by nickname key (the hub's map, shared)."""
        return self.hub.users

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        if self.hub.closing:
            return None
        if len(self.connections) >= self.config.max_clients:
            self.log.warn(
                "refused {peer}: server is full ({limit} connections)",
                peer=addr,
                limit=self.config.max_clients,
            )
            return _ServerFull(self.config.max_clients)
        protocol = ChatProtocol()
        protocol.factory = self
        return protocol

    def connected(self, protocol: ChatProtocol) -> None:
        self.connections.add(protocol)

    def disconnected(self, protocol: ChatProtocol) -> None:
        self.connections.discard(protocol)
        if self._drained is not None and not self.connections:
            self._finish_shutdown()

    def shutdown(self) -> Deferred[None]:
        """
        Say goodbye to everyone and close their connections.

        Fires when all are closed, or after ``shutdown_grace`` seconds, when
        those still open (peers that do not read) are cut.
        """
        self.hub.close()
        if not self.connections:
            return succeed(None)
        self.log.info(
            "shutting down: closing {count} connections", count=len(self.connections)
        )
        self._drained = Deferred()
        for protocol in list(self.connections):
            protocol.disconnect(Notice("Server is shutting down. Bye!"))
        self._deadline = self.reactor.callLater(
            self.config.shutdown_grace, self._abort_stragglers
        )
        return self._drained

    def _abort_stragglers(self) -> None:
        self._deadline = None
        if self.connections:
            self.log.warn(
                "cutting {count} connections that did not close in time",
                count=len(self.connections),
            )
        for protocol in list(self.connections):
            protocol.abort()
        self._finish_shutdown()

    def _finish_shutdown(self) -> None:
        drained, self._drained = self._drained, None
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        if drained is not None:
            drained.callback(None)
