"""
The seam between the chat's rules and what is shared.

The hub (``twchat.hub``) states every rule and writes every line a user
reads; a backend stores what several connections, or several processes,
must agree on: who holds which nickname, who is in which room, each
room's lines in one order, topics, private delivery and history. Two
backends implement ``IBackend``: ``memory`` (one process) and ``redis``
(several processes sharing a Redis server). Neither knows a rule or a
user-facing text: a refusal is a return value or ``UnavailableError``.

What happens in a room comes back to the hub through ``IListener``, in
the room's one order, whichever node it happened on: the hub delivers it
to the room's members connected here.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from .._immutable import immutable
from ..events import (
    Action,
    Chat,
    Joined,
    Left,
    Moderated,
    NickChanged,
    Private,
    Topic,
)

__all__ = [
    "Entered",
    "IBackend",
    "IListener",
    "Profile",
    "RoomEvent",
    "UnavailableError",
    "UnconfirmedError",
]

#: What a room's members are told, in the room's order.
RoomEvent = Chat | Action | Topic | Joined | Left | NickChanged | Moderated


class UnavailableError(Exception):
    """The shared state cannot be reached right now; nothing was done."""


class UnconfirmedError(UnavailableError):
    """
    The shared state was lost while this was on its way: it may have been
    done or not, and nobody can tell which.
    """


@immutable
class Entered:
    """A room as its newcomer finds it, exactly as of their arrival."""

    #: The room's name as its creator spelled it.
    name: str
    #: People in the room, the newcomer included.
    online: int
    #: Their nicknames, the newcomer's included, in ``nick_key`` order (the
    #: first ``limit`` of them if ``enter`` was given one).
    names: tuple[str, ...]
    topic: str


@immutable
class Profile:
    """What other nodes may learn of a connected user (moderation, /whois)."""

    nick: str
    #: The account's key if logged in, else None.
    account: str | None
    host: str
    #: A server operator (accounts with the operator flag).
    operator: bool
    #: When they registered (epoch seconds).
    since: float
    #: The room they are in (its name).
    room: str = ""
    #: When they last said something (the hub's wall clock), to the minute.
    active: float = 0.0
    #: Why they are away ("" while they are here).
    away: str = ""


class IListener(Interface):
    """What a backend tells the hub."""

    def room_event(room: str, event: RoomEvent, origin: str) -> None:
        """
        Something happened in the room keyed ``room``, in the room's order.

        ``origin`` is the connection id that caused it ("" if none here).
        """

    def private(to: str, event: Private) -> None:
        """A private message for the user whose nickname key is ``to``."""

    def not_sent(conn: str, sure: bool) -> None:
        """
        A line ``post`` accepted from ``conn`` was not stored (``sure``), or
        may not have been: the state was lost while it was on its way.
        """

    def name_lost(conn: str) -> None:
        """Connection ``conn`` no longer holds its nickname (taken elsewhere)."""

    def taken_over(conn: str) -> None:
        """
        Connection ``conn``'s nickname was taken by a login on another node;
        its leave may have been told already (``leave`` does not repeat it).
        """


class IBackend(Interface):
    """
    Shared state, one atomic step per method.

    Rooms are named by their key (``room_key``); nicknames as users typed
    them. Methods returning a Deferred fail with ``UnavailableError`` when the
    state cannot be reached; the in-process backend's Deferreds have
    always fired already.
    """

    node = Attribute("This process's name among the nodes; prefixes conn ids.")
    up = Attribute("False while the shared state is known to be unreachable.")
    shared = Attribute("True when other processes share the state (Redis).")
    history = Attribute("The rooms' recent lines (a RoomHistory), or None.")
    writes = Attribute(
        "The shared store's writer, for --metrics (a WriteStats): what "
        "waits to be written and how long writing takes."
    )

    def probe() -> Deferred[float]:
        """
        Ask the shared store to answer now: fires with the round trip in
        seconds, or fails saying why (in-process: nothing to ask, 0).
        """

    def attach(listener: IListener) -> None:
        """Room events and private messages go to ``listener`` from now on."""

    def start() -> None:
        """Begin (connect, in Redis mode)."""

    def stop() -> Deferred[None]:
        """After everyone left: store what is pending, say goodbye."""

    def count() -> Deferred[int]:
        """How many people are online, on every node."""

    def claim(nick: str) -> Deferred[bool]:
        """Take a nickname for this node; False if someone holds it."""

    def release(nick: str) -> None:
        """Give back a nickname this node holds."""

    def takeover(nick: str, reason: str) -> Deferred[None]:
        """
        Take ``nick`` for this node whoever holds it (a login). A holder on
        another node leaves its room with ``reason`` (its members are told)
        and its node is told to close that connection (``taken_over``).
        A holder on this node is the hub's to take out first.
        """

    def describe(profile: Profile) -> None:
        """
        Publish what others may learn of this node's user ``profile.nick``,
        until they leave or change their name (then describe them anew).
        """

    def profile(nick: str) -> Deferred[Profile | None]:
        """The profile of whoever holds ``nick`` now, on any node."""

    def reserve(name: str, limit: int) -> Deferred[str | None]:
        """
        Make sure the room ``name`` exists, creating it only while fewer
        than ``limit`` rooms do, in one step. Returns the room's name as
        it exists, or None when it does not and there is no room left.
        """

    def unreserve(room: str) -> None:
        """A reserved room nobody entered goes again (not the default room)."""

    def enter(
        conn: str,
        nick: str,
        room: str,
        came_from: str = "",
        limit: int | None = None,
    ) -> Deferred[Entered | None]:
        """
        Bring ``conn`` into the (reserved) room; its members see ``Joined``.
        ``limit``: how many of the names (in order) the caller will show.

        Fires at the newcomer's place in the room's order, before the
        room's next event: None if ``leave`` came first.
        """

    def leave(
        conn: str,
        nick: str,
        room: str,
        reason: str,
        went_to: str = "",
        free: bool = True,
    ) -> None:
        """
        Take ``conn`` out of ``room`` (members see ``Left`` if they saw it
        come in); ``free`` gives its nickname back too. Never fails: what
        cannot be stored now is stored once the state is reachable.
        """

    def rename(conn: str, room: str, old: str, new: str) -> Deferred[None]:
        """After ``claim(new)``: ``old`` becomes ``new``; the room is told."""

    def post(conn: str, room: str, kind: str, nick: str, text: str) -> None:
        """
        A chat line or action (``kind``) in the room's order, and its
        history. The hot path: nothing to wait on; a line that cannot be
        stored is reported with ``IListener.not_sent``.
        """

    def set_topic(conn: str, room: str, nick: str, text: str) -> Deferred[None]:
        """Set the room's topic; the room is told and history keeps it."""

    def moderate(conn: str, room: str, event: Moderated) -> Deferred[None]:
        """
        Tell the room (keyed ``room``) that an operator acted, in its
        order, on every node following it (their members are told and
        their copies of the room's moderation state changed).
        """

    def tell(sender: str, target: str, text: str) -> Deferred[str | None]:
        """
        A private message to ``target`` on whichever node holds them;
        returns their nickname as they spell it, or None if nobody has it.
        """

    def roster(room: str) -> Deferred[tuple[str, tuple[str, ...]] | None]:
        """
        The room's name and everyone in it (in ``nick_key`` order, as
        ``Entered.names``), or None if it does not exist.
        """

    def rooms() -> Deferred[list[tuple[str, int, str]]]:
        """Every room: (name, people, topic), the default room included."""
