"""
The chat server's state, as a service: configuration, the hub (with its
backend and history), every connection and the deadline sweep.

Each port is a child service that gets its factory from here, so every
port shares one hub, one set of limits and one deadline sweep. Stopping
closes the ports first, then says goodbye to everyone, then lets what
was said reach the disk (or Redis).
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, cast

from twisted.application.service import MultiService
from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger

from .accounts.hashing import Hasher
from .accounts.logins import Logins
from .accounts.memory import MemoryAccounts
from .backend import IBackend
from .backend.memory import MemoryBackend
from .config import ChatConfig
from .connection.factory import ConnectionFactory
from .connection.outbox import Flusher
from .connection.pool import ConnectionPool
from .history import History
from .hub import Hub
from .lifecycle import Lifecycle
from .moderation.store import IModerationStore
from .motd import MessageOfTheDay
from .startup import ListenError, StartupError
from .stats import Stats
from .transports.tcp import LineFactory

__all__ = ["ChatServer"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ChatServer(MultiService):
    """
    One chat: its hub and connection pool, and the factories of its ports.

    The reactor is injected so tests can drive time with ``task.Clock``.
    ``twistd`` waits for ``stopService`` before the reactor stops, so
    goodbyes are written before the process exits; a second Ctrl-C or
    SIGTERM during that grace cuts the remaining connections at once, and
    the server still exits 0.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        config: ChatConfig | None = None,
        backend: IBackend | None = None,
        history: History | None = None,
        logins: Logins | None = None,
        state: adbapi.ConnectionPool | None = None,
        moderation: IModerationStore | None = None,
        motd: MessageOfTheDay | None = None,
    ) -> None:
        super().__init__()
        self.reactor = reactor
        self.config = config if config is not None else ChatConfig()
        #: Lifecycle flags, set here only; the hub and the pool read them.
        self.lifecycle = Lifecycle()
        #: What the hot paths count, for --metrics.
        self.stats = Stats()
        if backend is None:
            backend = MemoryBackend(self.config.default_room, history)
        if logins is None:
            # Without a state file (tests, embedding): accounts in memory.
            threads = cast(IReactorFromThreads, reactor)  # the same reactor
            logins = Logins(MemoryAccounts(), Hasher(threads), reactor)
        #: Sends each turn's lines, one batch per connection.
        self.flusher = Flusher(reactor, self.stats)
        self.hub = Hub(
            backend,
            reactor,
            self.config.presence,
            default_room=self.config.default_room,
            max_rooms=self.config.max_rooms,
            history_replay=self.config.history_replay,
            lifecycle=self.lifecycle,
            logins=logins,
            moderation=moderation,
            stats=self.stats,
            later=self.flusher.later,
            hand_out=self.flusher.hand_out,
            motd=motd,
        )
        #: The state file's database thread, closed last (None: no file).
        self.state = state
        self.pool = ConnectionPool(reactor, self.config, self.lifecycle)
        self._tcp: ConnectionFactory | None = None
        self._previous: dict[int, Any] = {}

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

    # The phases, one by one (tests drive them directly).

    def start(self) -> None:
        self.pool.start()
        self.hub.start()

    def shutdown(self) -> Deferred[None]:
        """Goodbye to everyone; fires once all connections are closed."""
        self.lifecycle.closing = True
        self.hub.close()
        d = self.pool.shutdown()
        d.addCallback(lambda _: self.pool.stop())
        return d

    def stop(self) -> Deferred[None]:
        """After the goodbyes: let what was said reach the disk (or Redis)."""
        d = self.hub.stop()

        def close(result: object) -> object:
            self.hub.logins.hasher.stop()
            if self.state is not None:
                self.state.close()
            return result

        return d.addBoth(close)

    # As a service

    def privilegedStartService(self) -> None:
        # The ports listen here. The start-up checks found what they could;
        # what fails now still says one line and exits 1, no traceback.
        try:
            super().privilegedStartService()
        except ListenError as e:
            self.log.critical("{error}", error=str(e))
            raise StartupError(str(e)) from None

    def startService(self) -> None:
        self.start()
        super().startService()  # then the ports listen

    def stopService(self) -> Deferred[None]:
        self._catch_second_signal()
        d: Deferred[Any] = maybeDeferred(super().stopService)  # ports first
        d.addCallback(lambda _: self.shutdown())
        # Everything said before the goodbye is stored (or published).
        d.addCallback(lambda _: self.stop())
        d.addCallback(self._stopped_on_purpose)
        d.addBoth(self._release_signals)
        return d

    def _catch_second_signal(self) -> None:
        for signum in _STOP_SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread (an embedding program)
                return

    def _release_signals(self, result: object) -> object:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        return result

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler must not touch the reactor's state directly.
        cast(IReactorFromThreads, self.reactor).callFromThread(self._cut_now)

    def _cut_now(self) -> None:
        self.log.info("asked again to stop: cutting the remaining connections")
        self.pool.cut_all()

    def _stopped_on_purpose(self, _: None) -> None:
        # After SIGTERM/SIGINT twistd kills itself with the same signal so
        # its exit status says "died of a signal". A server that has said
        # goodbye to everyone stopped as asked: exit 0 tells systemd and
        # scripts so. Twisted keeps that signal on the reactor.
        if getattr(self.reactor, "_exitSignal", None) is not None:
            self.reactor._exitSignal = None  # type: ignore[attr-defined]
