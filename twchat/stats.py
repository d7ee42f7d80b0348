"""
Plain counters that the hot paths bump and ``--metrics`` reads.

Ints on a slotted object, not prometheus_client's metric objects: those
take a lock per increment, and a broadcast must stay a loop of writes.
The metrics collector reads these when it is scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

__all__ = ["DISCONNECT_REASONS", "PASSWORD_CHECKS", "Stats", "WriteStats"]

#: Why connections end, as counted (a bounded set: a quit message or a
#: moderator's reason is not a label).
DISCONNECT_REASONS = (
    "quit",
    "closed",
    "lost",
    "shutdown",
    "removed",
    "refused",
    "excess flood",
    "registration timeout",
    "idle timeout",
    "ping timeout",
    "send queue exceeded",
    "message too big",
    "message too fragmented",
)

#: How a password was checked (at login, or /password's old one): right,
#: wrong, or refused unchecked while failures lock the account or address.
PASSWORD_CHECKS = ("ok", "wrong", "locked")


class Stats:
    __slots__ = (
        "accounts_created",
        "bytes_out",
        "deliveries",
        "disconnects",
        "flood_pauses",
        "lines_in",
        "moderation",
        "password_checks",
        "sendq_cuts",
    )

    def __init__(self) -> None:
        #: Lines users sent that were handled (chat lines and commands).
        self.lines_in = 0
        #: Lines handed to receivers by broadcasts (one per receiver).
        self.deliveries = 0
        #: Bytes handed to connections' sockets or transports.
        self.bytes_out = 0
        #: Times a connection's reading was paused by flood control.
        self.flood_pauses = 0
        #: Connections cut because they did not read what was sent to them.
        self.sendq_cuts = 0
        self.disconnects: Counter[str] = Counter()
        #: Passwords checked, by result (PASSWORD_CHECKS).
        self.password_checks: Counter[str] = Counter()
        #: Accounts made here (/register, or a new name at the prompt).
        self.accounts_created = 0
        #: Moderation actions taken here, by the moderation log's name.
        self.moderation: Counter[str] = Counter()

    def disconnected(self, reason: str) -> None:
        self.disconnects[reason if reason in DISCONNECT_REASONS else "removed"] += 1


class WriteStats:
    """A store's writer: what waits, and how long each write took."""

    __slots__ = ("_waiting", "last_seconds", "seconds", "writes")

    def __init__(self, waiting: Callable[[], int] = lambda: 0) -> None:
        self._waiting = waiting
        #: Writes done (SQLite transactions, Redis pipelines) and their time.
        self.writes = 0
        self.seconds = 0.0
        self.last_seconds = 0.0

    @property
    def waiting(self) -> int:
        """Lines (or commands) not yet written."""
        return self._waiting()

    def wrote(self, seconds: float) -> None:
        self.writes += 1
        self.seconds += seconds
        self.last_seconds = seconds
