"""The protocol factory: the shared chat state, connection limits, shutdown."""

from __future__ import annotations

from collections import Counter

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .config import ChatConfig
from .events import Error, Notice
from .history import RoomHistory
from .hub import Hub
from .member import Member
from .outbox import Flusher
from .protocol import ChatProtocol
from .wire import render_line

__all__ = ["ChatFactory"]


#: Seconds between sweeps for connections past a deadline.
SWEEP_INTERVAL = 1.0


class _Refusal(Protocol):
    """Tells a connection we will not serve why, and closes it."""

    transport: ITransport

    def __init__(self, why: str) -> None:
        self._line = render_line(Error(why))

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
        history: RoomHistory | None = None,
    ) -> None:
        self.reactor = reactor
        self.config = config if config is not None else ChatConfig()
        self.hub = (
            hub
            if hub is not None
            else Hub(
                reactor,
                self.config.presence,
                default_room=self.config.default_room,
                max_rooms=self.config.max_rooms,
                history=history,
                history_replay=self.config.history_replay,
            )
        )
        #: Every open connection, registered or not.
        self.connections: set[ChatProtocol] = set()
        #: Sends each turn's lines, one batch per connection.
        self.flusher = Flusher(reactor)
        self._per_host: Counter[str] = Counter()
        # One sweep for every deadline, not a timer per connection.
        self._sweep = LoopingCall(self.sweep)
        self._sweep.clock = reactor
        self._drained: Deferred[None] | None = None
        self._deadline: IDelayedCall | None = None

    @property
    def users(self) -> dict[str, Member]:
        """Registered users by nickname key (the hub's map, shared)."""
        return self.hub.users

    def startFactory(self) -> None:
        if not self._sweep.running:
            self._sweep.start(SWEEP_INTERVAL, now=False)

    def stopFactory(self) -> None:
        if self._sweep.running:
            self._sweep.stop()

    def sweep(self) -> None:
        """Close connections past a deadline (registration, idle, send queue)."""
        # Runs over every connection each second: the common case (nothing
        # due) must cost next to nothing, or it delays the broadcasts.
        now = self.reactor.seconds()
        config = self.config
        register_by = now - config.register_timeout
        idle_since = now - config.idle_timeout if config.idle_timeout else -1.0
        stalled_by = now - config.sendq_timeout
        due = []
        for protocol in self.connections:
            waiting = protocol.outbox.waiting_since
            if (
                protocol.sweep_always
                or (not protocol.nick and protocol.connected_at <= register_by)
                or protocol.last_heard <= idle_since
                or (waiting is not None and waiting <= stalled_by)
            ):
                due.append(protocol)
        for protocol in due:
            protocol.check_deadlines(now)

    def refusal(self, addr: IAddress | None) -> str | None:
        """Why a new connection from ``addr`` cannot be served, if it cannot."""
        config = self.config
        if len(self.connections) >= config.max_clients:
            self.log.warn(
                "refused {peer}: server is full ({limit} connections)",
                peer=addr,
                limit=config.max_clients,
            )
            return f"server is full ({config.max_clients} users); try again later"
        host = getattr(addr, "host", "")
        if config.max_per_ip and host and self._per_host[host] >= config.max_per_ip:
            self.log.warn(
                "refused {peer}: {limit} connections from that address already",
                peer=addr,
                limit=config.max_per_ip,
            )
            return (
                "too many connections from your address "
                f"(limit {config.max_per_ip}); try again later"
            )
        return None

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        if self.hub.closing:
            return None
        why = self.refusal(addr)
        if why is not None:
            return _Refusal(why)
        protocol = ChatProtocol()
        protocol.factory = self
        return protocol

    def connected(self, protocol: ChatProtocol) -> None:
        self.connections.add(protocol)
        if protocol.host:
            self._per_host[protocol.host] += 1

    def disconnected(self, protocol: ChatProtocol) -> None:
        if protocol in self.connections:
            self.connections.discard(protocol)
            if protocol.host:
                self._per_host[protocol.host] -= 1
                if not self._per_host[protocol.host]:
                    del self._per_host[protocol.host]
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
