"""
The chat server's state: configuration, the hub, and every connection.

Each transport gets its factory from here, so every port shares one hub,
one set of limits and one deadline sweep.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from .backend import IBackend
from .backend.memory import MemoryBackend
from .config import ChatConfig
from .connection.factory import ConnectionFactory
from .connection.outbox import Flusher
from .connection.pool import ConnectionPool
from .history import History
from .hub import Hub
from .transports.tcp import LineFactory

__all__ = ["ChatServer"]


class ChatServer:
    """
    One chat: its hub and connection pool, and the factories of its ports.

    The reactor is injected so tests can drive time with ``task.Clock``.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        config: ChatConfig | None = None,
        backend: IBackend | None = None,
        history: History | None = None,
    ) -> None:
        self.reactor = reactor
        self.config = config if config is not None else ChatConfig()
        if backend is None:
            backend = MemoryBackend(self.config.default_room, history)
        self.hub = Hub(
            backend,
            reactor,
            self.config.presence,
            default_room=self.config.default_room,
            max_rooms=self.config.max_rooms,
            history_replay=self.config.history_replay,
        )
        self.pool = ConnectionPool(reactor, self.config)
        #: Sends each turn's lines, one batch per connection.
        self.flusher = Flusher(reactor)
        self._tcp: ConnectionFactory | None = None

    def tcp_factory(self) -> ConnectionFactory:
        """The factory for text-line ports (TCP, TLS, UNIX sockets)."""
        if self._tcp is None:
            self._tcp = ConnectionFactory(self, LineFactory())
        return self._tcp

    def web_factory(
        self, origins: tuple[str, ...] = (), hosts: tuple[str, ...] = ()
    ) -> ConnectionFactory:
        """The factory for a browser port: the page and its WebSocket."""
        # twisted.web is loaded only by servers that have a web port.
        from .transports.web import web_site

        return ConnectionFactory(self, web_site(origins, hosts))

    def start(self) -> None:
        self.pool.start()
        self.hub.start()

    def shutdown(self) -> Deferred[None]:
        """Goodbye to everyone; fires once all connections are closed."""
        self.hub.close()
        d = self.pool.shutdown()
        d.addCallback(lambda _: self.pool.stop())
        return d

    def stop(self) -> Deferred[None]:
        """After the goodbyes: let what was said reach the disk (or Redis)."""
        return self.hub.stop()
