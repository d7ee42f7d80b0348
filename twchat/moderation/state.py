"""
A room's moderation state (founder, operators, voices, modes, bans,
mutes, invitations) and the server's bans, as the stores keep them: one
flat set of ``field -> value`` strings per scope, so every store (SQLite,
Redis, memory) and every node's cache applies a change the same way.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .._immutable import immutable
from ..nicknames import nick_key
from .masks import ACCOUNT_PREFIX, Identity, Mask, parse_mask

__all__ = [
    "Change",
    "Rules",
    "Sanction",
    "ban_field",
    "mute_field",
    "op_field",
    "room_scope",
    "voice_field",
    "who_id",
]

#: One change to a scope: a field set to a value, or dropped (None).
Change = tuple[str, str | None]

SERVER_SCOPE = "server"
FOUNDER = "founder"
MODES = "modes"
#: Modes a room can have: invite-only, topic by operators, moderated.
ROOM_MODES = "itm"


def room_scope(room_key: str) -> str:
    return f"room:{room_key}"


def op_field(account: str) -> str:
    return f"op:{account}"


def voice_field(who: str) -> str:
    return f"voice:{who}"


def invite_field(who: str) -> str:
    return f"invite:{who}"


def ban_field(mask: Mask) -> str:
    return f"ban:{mask.text}"


def mute_field(mask: Mask) -> str:
    return f"mute:{mask.text}"


def gban_field(mask: Mask) -> str:
    return f"gban:{mask.text}"


def who_id(who: Identity) -> str:
    """How voices and invitations name a user: their account, else nick."""
    if who.account is not None:
        return ACCOUNT_PREFIX + who.account
    return "nick:" + nick_key(who.nick)


@immutable
class Sanction:
    """A ban or a mute: on whom, until when (None: until lifted), why, by whom."""

    mask: Mask
    until: float | None
    reason: str
    by: str
    at: float

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def encode(self) -> str:
        return json.dumps(
            {"until": self.until, "reason": self.reason, "by": self.by, "at": self.at}
        )

    @classmethod
    def decode(cls, mask_text: str, value: str) -> Sanction | None:
        mask = parse_mask(mask_text)
        try:
            data = json.loads(value)
            until = data["until"]
            return (
                None
                if mask is None
                else cls(
                    mask,
                    None if until is None else float(until),
                    str(data["reason"]),
                    str(data["by"]),
                    float(data["at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            return None  # written by something else: ignored, not fatal


@dataclass
class Rules:
    """One scope's state, read from its fields and kept up to date by changes."""

    founder: str | None = None
    ops: set[str] = field(default_factory=set)
    voiced: set[str] = field(default_factory=set)
    modes: str = ""
    invites: set[str] = field(default_factory=set)
    bans: dict[str, Sanction] = field(default_factory=dict)
    mutes: dict[str, Sanction] = field(default_factory=dict)
    #: Those of them naming blocks of addresses (the rest are looked up).
    ban_blocks: dict[str, Sanction] = field(default_factory=dict)
    mute_blocks: dict[str, Sanction] = field(default_factory=dict)
    #: Changes that arrived while the fields were being read (see ``loaded``).
    pending: list[Change] | None = None

    @classmethod
    def of(cls, fields: Mapping[str, str]) -> Rules:
        rules = cls()
        rules.apply(fields.items())
        return rules

    @classmethod
    def loading(cls) -> Rules:
        """Rules whose fields are being read; changes wait for them."""
        return cls(pending=[])

    def apply(self, changes: Iterable[Change]) -> None:
        if self.pending is not None:
            self.pending.extend(changes)
            return
        for name, value in changes:
            self._apply(name, value)

    def loaded(self, fields: Mapping[str, str]) -> None:
        """The stored fields arrived: they, then what changed meanwhile."""
        pending, self.pending = self.pending or [], None
        fresh = Rules.of(fields)
        fresh.apply(pending)
        self.founder, self.modes = fresh.founder, fresh.modes
        self.ops, self.voiced, self.invites = fresh.ops, fresh.voiced, fresh.invites
        self.bans, self.mutes = fresh.bans, fresh.mutes
        self.ban_blocks, self.mute_blocks = fresh.ban_blocks, fresh.mute_blocks

    def _apply(self, name: str, value: str | None) -> None:
        kind, _, key = name.partition(":")
        if name == FOUNDER:
            self.founder = value
        elif name == MODES:
            self.modes = "".join(m for m in ROOM_MODES if m in (value or ""))
        elif kind == "op":
            _toggle(self.ops, key, value)
        elif kind == "voice":
            _toggle(self.voiced, key, value)
        elif kind == "invite":
            _toggle(self.invites, key, value)
        elif kind in ("ban", "gban", "mute"):
            found = self.mutes if kind == "mute" else self.bans
            blocks = self.mute_blocks if kind == "mute" else self.ban_blocks
            sanction = None if value is None else Sanction.decode(key, value)
            found.pop(key, None)
            blocks.pop(key, None)
            if sanction is not None:
                found[sanction.mask.text] = sanction
                network = sanction.mask.network
                if network is not None and network.num_addresses > 1:
                    blocks[sanction.mask.text] = sanction

    def operator(self, account: str | None) -> bool:
        """Whether the account ``account`` is the founder or an operator."""
        return account is not None and (account == self.founder or account in self.ops)

    def banned(self, who: Identity, now: float) -> Sanction | None:
        return _matching(self.bans, self.ban_blocks, who, now) if self.bans else None

    def muted(self, who: Identity, now: float) -> Sanction | None:
        return _matching(self.mutes, self.mute_blocks, who, now) if self.mutes else None


def _toggle(found: set[str], key: str, value: str | None) -> None:
    if value is None:
        found.discard(key)
    else:
        found.add(key)


def _matching(
    sanctions: Mapping[str, Sanction],
    blocks: Mapping[str, Sanction],
    who: Identity,
    now: float,
) -> Sanction | None:
    """
    The sanction on ``who``, if any: accounts and single addresses are
    looked up by their text, only blocks are scanned (a thousand bans of
    addresses cost a join two lookups, not a thousand comparisons).
    """
    candidates: list[Sanction | None] = []
    if who.account is not None:
        candidates.append(sanctions.get(ACCOUNT_PREFIX + who.account))
    try:
        address = ipaddress.ip_address(who.host)
    except ValueError:
        address = None
    if address is not None:
        candidates.append(sanctions.get(str(address)))
        candidates.extend(
            block
            for block in blocks.values()
            if block.mask.network is not None
            and block.mask.network.version == address.version
            and address in block.mask.network
        )
    for sanction in candidates:
        if sanction is not None and sanction.active(now):
            return sanction
    return None
