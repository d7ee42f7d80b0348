"""The limits a server runs with, in one place for the options and the core."""

from __future__ import annotations

from dataclasses import dataclass, field

from .room import PresencePolicy

__all__ = ["ChatConfig"]


@dataclass(frozen=True, slots=True)
class ChatConfig:
    #: Connections held at once, registered or not; one more hears
    #: "server is full" and is closed.
    max_clients: int = 200
    #: Longest line accepted from a client, in bytes without the line end
    #: (512, as IRC).
    max_line: int = 512
    #: Bytes that may wait for a client that does not read before it is
    #: disconnected with "send queue exceeded".
    max_sendq: int = 256 * 1024
    #: When joins and leaves are summed up instead of announced one by one.
    presence: PresencePolicy = field(default_factory=PresencePolicy)
    #: On shutdown, how long users get to receive the goodbye line before
    #: their connections are cut.
    shutdown_grace: float = 5.0
