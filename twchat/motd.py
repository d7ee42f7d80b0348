"""
The message of the day (``--motd FILE``): the rules, news and links each
user is shown on arriving, and again with ``/motd``.

Read at start-up, where a missing or broken file stops the server with one
line, and again on SIGHUP, in a thread (the reactor never waits on disk),
where a broken file keeps the old message and the log says why.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from .text import clean_text

__all__ = [
    "MAX_LINE",
    "MAX_LINES",
    "MessageOfTheDay",
    "MotdError",
    "parse_motd",
    "read_motd",
]

#: A message of the day is read by everyone on arriving: a screenful.
MAX_LINES = 40
MAX_LINE = 400


class MotdError(Exception):
    """Why a message of the day file cannot be used, in one line."""


def parse_motd(data: bytes) -> tuple[str, ...]:
    """The file's lines, cleaned of terminal controls, blank ends dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MotdError(f"not UTF-8 text (byte {e.start})") from None
    lines = [clean_text(line) for line in text.removeprefix("\ufeff").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if len(lines) > MAX_LINES:
        raise MotdError(f"{len(lines)} lines; at most {MAX_LINES}")
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE:
            raise MotdError(f"line {number} is longer than {MAX_LINE} characters")
    return tuple(lines)


def read_motd(path: Path) -> tuple[str, ...]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MotdError(f"cannot read it: {e.strerror or e}") from None
    return parse_motd(data)


class MessageOfTheDay:
    """
    The message in use (``lines``, as read from ``path`` at start-up, when
    the options were checked); ``reload`` reads the file again.
    """

    log = Logger()

    def __init__(
        self, reactor: IReactorThreads, path: Path, lines: tuple[str, ...]
    ) -> None:
        self._reactor = reactor
        self.path = path
        self.lines = lines

    def reload(self) -> Deferred[bool]:
        """Read the file again; fires True if its message is now in use."""
        d = deferToThreadPool(
            self._reactor,
            self._reactor.getThreadPool(),
            read_motd,
            self.path,
        )
        return d.addCallbacks(self._loaded, self._failed)

    def _loaded(self, lines: tuple[str, ...]) -> bool:
        self.lines = lines
        self.log.info(
            "reloaded the message of the day from {path} ({count} lines)",
            path=str(self.path),
            count=len(lines),
        )
        return True

    def _failed(self, failure: Failure) -> bool:
        self.log.error(
            "could not reload the message of the day from {path}: {error}; "
            "keeping the old one",
            path=str(self.path),
            error=failure.getErrorMessage(),
        )
        return False
