"""
SIGHUP reads the files a running server uses again: TLS certificates and
the message of the day. Open connections carry on.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

__all__ = ["ReloadService", "Reloadable"]


class Reloadable(Protocol):
    def reload(self) -> Deferred[bool]:
        """Read again; fires True if the new contents are in use."""


class ReloadService(Service):
    """
    Reloads each of ``reloadables`` on SIGHUP while the server runs.

    Installed even with nothing to reload, so that a SIGHUP meant for a
    reload (logrotate, habit) never kills the server.
    """

    log = Logger()

    def __init__(self, reactor: Any, reloadables: list[Reloadable]) -> None:
        self._reactor = reactor
        self.reloadables = reloadables
        self._previous: Any = None

    def startService(self) -> None:
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._on_sighup)

    def stopService(self) -> None:
        super().stopService()
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
            self._previous = None

    def _on_sighup(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler must not touch the reactor's state directly.
        self._reactor.callFromThread(self.reload)

    def reload(self) -> None:
        if not self.reloadables:
            self.log.info("SIGHUP: nothing to reload (no TLS port, no --motd)")
        for reloadable in self.reloadables:
            reloadable.reload()
