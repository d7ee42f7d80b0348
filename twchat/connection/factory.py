"""A listening port's factory: every protocol it builds is wrapped in a Connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from twisted.internet.interfaces import IAddress, IProtocol, IReactorTime
from twisted.protocols.policies import WrappingFactory

from .connection import Connection

if TYPE_CHECKING:
    from ..server import ChatServer

__all__ = ["ConnectionFactory", "WireFactory"]


class WireFactory(Protocol):
    """A transport's own protocol factory, which also knows how to say "no"."""

    #: Whether it serves browsers (the page and its WebSocket).
    web: bool

    def buildProtocol(self, addr: IAddress | None) -> IProtocol | None:
        """The transport's protocol for a connection that was let in."""

    def doStart(self) -> None:
        """A port started using this factory."""

    def doStop(self) -> None:
        """A port stopped using this factory."""

    def refusal(self, why: str, clock: IReactorTime) -> IProtocol:
        """A protocol that tells a refused peer ``why`` its wire's way, and closes."""


class ConnectionFactory(WrappingFactory):
    """
    Admits or refuses each new connection, then wraps the transport's own
    protocol in a ``Connection``. Shared rules and limits come from the
    server; only the wrapped factory differs per transport.
    """

    #: "Starting factory" lines say nothing a chat operator needs.
    noisy = False

    def __init__(self, server: ChatServer, wrapped: WireFactory) -> None:
        super().__init__(wrapped)
        self.server = server

    def buildProtocol(self, addr: IAddress | None) -> IProtocol | None:  # type: ignore[override]
        why = self.server.pool.refusal(addr)
        if why is not None:
            wrapped: WireFactory = self.wrappedFactory
            return wrapped.refusal(why, self.server.reactor)
        inner = self.wrappedFactory.buildProtocol(addr)
        if inner is None:
            return None
        return Connection(self, inner)

    def registerProtocol(self, p: Connection) -> None:
        self.server.pool.add(p)

    def unregisterProtocol(self, p: Connection) -> None:
        self.server.pool.remove(p)
