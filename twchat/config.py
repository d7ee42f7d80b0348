"""
The limits a server runs with, in one place for the options and the core.

Each field that is a command-line option says so in its metadata (its help
text and the check its value must pass); ``twchat.tap`` builds the options
and the config from these fields, so there is no second table to drift.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any

from .room import PresencePolicy

__all__ = ["ChatConfig", "option_fields", "option_name"]

#: Lines of each room kept in memory: the most /history shows.
HISTORY_KEEP = 100


def _option(help: str, check: str = "") -> dict[str, str]:
    """Field metadata: the option's help, and which check its value needs."""
    return {"help": help, "check": check}


@dataclass(frozen=True, slots=True)
class ChatConfig:
    max_clients: int = field(
        default=200,
        metadata=_option(
            "Connections held at once, registered or not; one more is told "
            "'server is full' and closed.",
            "at least 1",
        ),
    )
    max_line: int = field(
        default=512,
        metadata=_option(
            "Longest line accepted from a user, in bytes without the line "
            "end; a longer one gets an error line and is not relayed.",
            "at least 16 bytes",
        ),
    )
    max_sendq: int = field(
        default=256 * 1024,
        metadata=_option(
            "Bytes that may wait for a client that does not read; past that "
            "it is disconnected with 'send queue exceeded'.",
            "at least 1",
        ),
    )
    sendq_timeout: float = field(
        default=30.0,
        metadata=_option(
            "Seconds a client may take no bytes at all while lines wait for "
            "it, before 'send queue exceeded'.",
            "positive",
        ),
    )
    flood_rate: float = field(
        default=2.0,
        metadata=_option(
            "Lines per second a client may send, sustained; faster lines wait "
            "and the client is read more slowly. 0 turns flood control off.",
            "not negative",
        ),
    )
    flood_burst: int = field(
        default=10,
        metadata=_option(
            "Lines a client may send at once before --flood-rate applies.",
            "at least 1",
        ),
    )
    max_recvq: int = field(
        default=16 * 1024,
        metadata=_option(
            "Bytes of a client's lines that may wait to be handled; past that "
            "it is disconnected with 'excess flood'.",
            "at least 1",
        ),
    )
    #: Lines handled per client per reactor turn, so that one client cannot
    #: hold up everyone else (not an option).
    lines_per_turn: int = 100
    register_timeout: float = field(
        default=30.0,
        metadata=_option(
            "Seconds a new connection has to choose a nickname.", "positive"
        ),
    )
    web_request_timeout: float = field(
        default=15.0,
        metadata=_option(
            "Seconds a browser connection has, from connecting, to open the "
            "chat's WebSocket; page loads finish well within it.",
            "positive",
        ),
    )
    idle_timeout: float = field(
        default=0.0,
        metadata=_option(
            "Seconds without a line from a client before it is closed; 0 never.",
            "not negative",
        ),
    )
    max_per_ip: int = field(
        default=16,
        metadata=_option(
            "Connections at once from one IP address; 0 for no limit.",
            "not negative",
        ),
    )
    default_room: str = field(
        default="lobby",
        metadata=_option(
            "The room everyone starts in and /part leads back to.", "room"
        ),
    )
    max_rooms: int = field(
        default=100,
        metadata=_option(
            "Rooms that may exist at once, the default room included.",
            "at least 1",
        ),
    )
    history_replay: int = field(
        default=20,
        metadata=_option(
            f"Lines of history shown on entering a room (at most {HISTORY_KEEP}).",
            "history",
        ),
    )
    #: When joins and leaves are summed up instead of announced one by one
    #: (options --presence-batch-above and --presence-interval).
    presence: PresencePolicy = field(default_factory=PresencePolicy)
    shutdown_grace: float = field(
        default=5.0,
        metadata=_option(
            "On stop, seconds users get to receive the goodbye line before "
            "their connections are cut.",
            "not negative",
        ),
    )


def option_name(setting: Field[Any]) -> str:
    """The command-line name of a config field: ``max_clients`` -> ``max-clients``."""
    return setting.name.replace("_", "-")


def option_fields() -> list[Field[Any]]:
    """The config fields that are command-line options."""
    return [f for f in fields(ChatConfig) if "help" in f.metadata]
