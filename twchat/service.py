"""The service that owns the chat's lifetime inside ``twistd``."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from .server import ChatServer

__all__ = ["ChatService"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ChatService(Service):
    """
    Stops the chat gracefully: users hear that the server is going down.

    ``twistd`` waits for the Deferred from ``stopService`` before the
    reactor stops, so goodbyes are written before the process exits. A
    second Ctrl-C or SIGTERM during that grace cuts the remaining
    connections at once; the server still exits 0.
    """

    log = Logger()

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self._previous: dict[int, Any] = {}

    def startService(self) -> None:
        super().startService()
        self.server.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._catch_second_signal()
        d = self.server.shutdown()
        # Everything said before the goodbye is stored (or published).
        d.addCallback(lambda _: self.server.stop())
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
        self.server.reactor.callFromThread(self._cut_now)  # type: ignore[attr-defined]

    def _cut_now(self) -> None:
        self.log.info("asked again to stop: cutting the remaining connections")
        self.server.pool.cut_all()

    def _stopped_on_purpose(self, _: None) -> None:
        # After SIGTERM/SIGINT twistd kills itself with the same signal so
        # its exit status says "died of a signal". A server that has said
        # goodbye to everyone stopped as asked: exit 0 tells systemd and
        # scripts so. Twisted keeps that signal on the reactor.
        reactor = self.server.reactor
        if getattr(reactor, "_exitSignal", None) is not None:
            reactor._exitSignal = None  # type: ignore[attr-defined]
