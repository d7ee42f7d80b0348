"""The plain front end: lines in on stdin, lines out on stdout."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from .render import Line
from .session import ClientSession

__all__ = ["PlainIO"]


@implementer(IHalfCloseableProtocol)
class PlainIO(LineReceiver):
    """
    For pipes, scripts and ``--plain``: no escape codes, no line editing.

    Half-closeable, so that the end of the input (the end of a pipe) still
    leaves standard output open for the server's last answers.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, timestamps: bool = False) -> None:
        self.timestamps = timestamps
        self.session: ClientSession | None = None
        self._closed: Deferred[None] = Deferred()

    def lineReceived(self, line: bytes) -> None:
        if self.session is not None:
            self.session.typed(line.rstrip(b"\r").decode("utf-8", "replace"))

    def readConnectionLost(self) -> None:
        if self.session is not None:
            self.session.input_ended()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        if not self._closed.called:
            self._closed.callback(None)

    # FrontEnd

    def show(self, line: Line) -> None:
        if self.transport is not None:
            self.transport.write((line.plain(self.timestamps) + "\n").encode())

    def ask_nick(self) -> None:
        """The server's "? Choose a nickname:" line was shown: that is all."""

    def ask_password(self) -> None:
        """The prompt was shown; the next line read is the password."""

    def close(self) -> Deferred[None]:
        """Fires once everything written has reached standard output."""
        if self.transport is not None and not self._closed.called:
            self.transport.loseConnection()
        return self._closed
