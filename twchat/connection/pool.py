"""
Every open connection, on every transport: who may connect, the deadline
sweep, and closing them all on shutdown.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..config import ChatConfig
from ..events import Notice
from ..lifecycle import Lifecycle

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["SWEEP_INTERVAL", "ConnectionPool"]

#: Seconds between sweeps for connections past a deadline.
SWEEP_INTERVAL = 1.0


class ConnectionPool:
    """
    Admission (``--max-clients``, ``--max-per-ip``, shutdown) and deadlines.

    A web connection counts from the moment it is accepted, before it has
    upgraded to a WebSocket, exactly like a TCP one.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        config: ChatConfig,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.reactor = reactor
        self.config = config
        #: The server's; once it closes, nobody new gets in.
        self.lifecycle = lifecycle if lifecycle is not None else Lifecycle()
        #: Every open connection, chatting or not.
        self.connections: set[Connection] = set()
        self._per_host: Counter[str] = Counter()
        # One sweep for every deadline, not a timer per connection.
        self._sweep = LoopingCall(self.sweep)
        self._sweep.clock = reactor
        self._drained: Deferred[None] | None = None
        self._deadline: IDelayedCall | None = None

    def start(self) -> None:
        if not self._sweep.running:
            self._sweep.start(SWEEP_INTERVAL, now=False)

    def stop(self) -> None:
        if self._sweep.running:
            self._sweep.stop()

    def refusal(self, addr: IAddress | None) -> str | None:
        """Why a new connection from ``addr`` cannot be served, if it cannot."""
        config = self.config
        if self.lifecycle.closing:
            return "server is shutting down"
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

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        if connection.host:
            self._per_host[connection.host] += 1

    def remove(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            if connection.host:
                self._per_host[connection.host] -= 1
                if not self._per_host[connection.host]:
                    del self._per_host[connection.host]
        if self._drained is not None and not self.connections:
            self._finish_shutdown()

    def sweep(self) -> None:
        """Close connections past a deadline."""
        # Runs over every connection each second: the common case (nothing
        # due) must cost next to nothing, or it delays the broadcasts.
        now = self.reactor.seconds()
        config = self.config
        register_by = now - config.register_timeout
        request_by = now - config.web_request_timeout
        idle_since = now - config.idle_timeout if config.idle_timeout else -1.0
        stalled_by = now - config.sendq_timeout
        due = []
        for connection in self.connections:
            waiting = connection.outbox.waiting_since
            if (
                connection.sweep_always
                or (
                    not connection.nick
                    and (
                        connection.attached_at <= register_by
                        if connection.chatting
                        else connection.connected_at <= request_by
                    )
                )
                or connection.last_line <= idle_since
                or (waiting is not None and waiting <= stalled_by)
            ):
                due.append(connection)
        for connection in due:
            connection.check_deadlines(now)

    def shutdown(self) -> Deferred[None]:
        """
        Say goodbye to everyone and close their connections.

        Fires when all are closed, or after ``shutdown_grace`` seconds, when
        those still open (peers that do not read) are cut.
        """
        if not self.connections:
            return succeed(None)
        count = len(self.connections)
        self.log.info(
            "shutting down: closing {count} connection{s}",
            count=count,
            s="" if count == 1 else "s",
        )
        self._drained = Deferred()
        for connection in list(self.connections):
            connection.disconnect(Notice("Server is shutting down. Bye!"))
        self._deadline = self.reactor.callLater(
            self.config.shutdown_grace, self.cut_all
        )
        return self._drained

    def cut_all(self) -> None:
        """Cut every connection still open: the grace is over (or was cut short)."""
        self._deadline = None
        if self.connections:
            self.log.warn(
                "cutting {count} connections that did not close in time",
                count=len(self.connections),
            )
        for connection in list(self.connections):
            connection.abortConnection()
        self._finish_shutdown()

    def _finish_shutdown(self) -> None:
        drained, self._drained = self._drained, None
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        if drained is not None:
            drained.callback(None)
