"""
Where moderation state lives: rooms' founders, operators, modes, bans,
mutes and invitations, the server's bans, ignore lists, and the log of
moderation actions. Kept as flat ``field -> value`` strings per scope
(``twchat.moderation.state``), so the stores know no rule.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import Interface

from .state import Change

__all__ = ["LOG_KEEP", "IModerationStore"]

#: The moderation log keeps this many entries.
LOG_KEEP = 1000


class IModerationStore(Interface):
    """Every method may fail (store unreachable); the caller says so."""

    def fields(scope: str) -> Deferred[dict[str, str]]:
        """Everything stored under ``scope`` (empty if nothing)."""

    def change(scope: str, changes: list[Change]) -> Deferred[None]:
        """Set (or, for None, drop) the fields, all at once."""

    def add_new(scope: str, field: str, value: str) -> Deferred[bool]:
        """Set ``field`` unless it is set already; whether it was set now."""

    def record(entry: str) -> Deferred[None]:
        """Append to the moderation log (the oldest go beyond LOG_KEEP)."""

    def records(count: int) -> Deferred[list[str]]:
        """The last ``count`` log entries, oldest first."""
