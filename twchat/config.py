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
    #: Seconds a client's connection may go without taking any bytes while
    #: lines wait for it, before "send queue exceeded".
    sendq_timeout: float = 30.0
    #: Lines per second a client may send, sustained (0: no flood control).
    flood_rate: float = 2.0
    #: Lines a client may send at once before the rate applies.
    flood_burst: int = 10
    #: Bytes of lines read from a client but not yet handled; past that the
    #: client is disconnected with "excess flood".
    max_recvq: int = 16 * 1024
    #: Lines handled per client per reactor turn, so that one client cannot
    #: hold up everyone else.
    lines_per_turn: int = 100
    #: Seconds a connection has to choose a nickname (absolute: dribbling
    #: bytes does not extend it).
    register_timeout: float = 30.0
    #: Seconds a web connection has, from connecting, to upgrade to a
    #: WebSocket (absolute: a page load finishes well within it).
    web_request_timeout: float = 15.0
    #: Seconds without a line from a client before it is closed (0: never).
    idle_timeout: float = 0.0
    #: Connections at once from one IP address (0: no limit).
    max_per_ip: int = 16
    #: The room everyone starts in; it always exists.
    default_room: str = "lobby"
    #: Rooms that may exist at once (the default room included).
    max_rooms: int = 100
    #: Lines of a room's history replayed to whoever enters it.
    history_replay: int = 20
    #: When joins and leaves are summed up instead of announced one by one.
    presence: PresencePolicy = field(default_factory=PresencePolicy)
    #: On shutdown, how long users get to receive the goodbye line before
    #: their connections are cut.
    shutdown_grace: float = 5.0
