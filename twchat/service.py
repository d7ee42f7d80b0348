"""The service that owns the chat's lifetime inside ``twistd``."""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from .factory import ChatFactory

__all__ = ["ChatService"]


class ChatService(Service):
    """
    Stops the chat gracefully: users hear that the server is going down.

    ``twistd`` waits for the Deferred from ``stopService`` before the
    reactor stops, so goodbyes are written before the process exits.
    """

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory

    def startService(self) -> None:
        super().startService()
        self.factory.hub.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        d = self.factory.shutdown()
        # Everything said before the goodbye is stored (or published).
        d.addCallback(lambda _: self.factory.hub.stop())
        d.addCallback(self._stopped_on_purpose)
        return d

    def _stopped_on_purpose(self, _: None) -> None:
        # After SIGTERM/SIGINT twistd kills itself with the same signal so
        # its exit status says "died of a signal". A server that has said
        # goodbye to everyone stopped as asked: exit 0 tells systemd and
        # scripts so. Twisted keeps that signal on the reactor.
        reactor = self.factory.reactor
        if getattr(reactor, "_exitSignal", None) is not None:
            reactor._exitSignal = None  # type: ignore[attr-defined]
