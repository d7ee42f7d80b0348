"""What the chat core needs from a connected user, whatever the transport."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .events import Event
from .wire import Renderer

if TYPE_CHECKING:
    from .room import Room

__all__ = ["Member", "Outlet"]


class Outlet(Protocol):
    """Where a member's bytes go out: its connection's queue."""

    def write(self, data: bytes) -> None:
        """Queue bytes already rendered with the member's ``renderer``."""


class Member(Protocol):
    """
    One connected user as the hub and rooms see it.

    The core never touches sockets: it hands events to ``send`` and, for a
    room's lines, bytes rendered once per ``renderer`` to ``outbox`` (once
    per reactor turn: all the lines of the turn that are for this member).
    """

    #: Empty until the user has registered a nickname.
    nick: str
    #: The address alone (failed logins are counted per address).
    host: str
    #: The room the user is in (None until registered).
    room: Room | None

    @property
    def peer(self) -> str:
        """Where the user connects from, for the log."""

    @property
    def renderer(self) -> Renderer:
        """
        Turns an event into this user's wire bytes.

        One function shared by all users of a transport, so a broadcast
        renders each line once per transport, not once per user.
        """

    @property
    def outbox(self) -> Outlet:
        """
        Where a room hands this member's lines. Rooms write to it directly,
        not through a method of ours: a call less per receiver per line.
        """

    def send(self, event: Event) -> None:
        """
        Render ``event`` for this user and queue it, after the lines its
        room holds for it this turn (``room.catch_up(self)`` first), so
        that nothing overtakes them.
        """

    def tag_lines(self) -> None:
        """From now on, mark history ids and rooms entered (``/ids``)."""

    def quit(self, reason: str) -> None:
        """End this user's session at their own request."""

    def end(self, reason: str, last: Event) -> None:
        """The server ends this session: ``reason`` for the room, ``last`` for them."""
