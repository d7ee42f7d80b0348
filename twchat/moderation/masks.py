"""
Who a ban or a mute is about, and for how long.

A mask names either an account (``account:alice``: whatever name or
address its owner comes from) or addresses (``203.0.113.7``,
``2001:db8::/32``, ``10.0.0.0/8``). A nickname typed by an operator
becomes one of these (``resolve`` in the moderator): the account of a
logged-in user, the address of a guest.
"""

from __future__ import annotations

import ipaddress
import re

from .._immutable import immutable
from ..nicknames import nick_key

__all__ = [
    "ACCOUNT_PREFIX",
    "Identity",
    "Mask",
    "account_mask",
    "address_mask",
    "duration_text",
    "parse_duration",
    "parse_mask",
]

ACCOUNT_PREFIX = "account:"

_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: A year: longer than that is "until lifted" anyway.
MAX_DURATION = 366 * 86400


@immutable
class Identity:
    """A connected user as moderation sees them."""

    nick: str
    #: The account's key if logged in (None for a guest).
    account: str | None
    host: str


@immutable
class Mask:
    """An account, or a block of addresses; ``text`` is how it is stored."""

    text: str
    account: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    def matches(self, who: Identity) -> bool:
        if self.account is not None:
            return who.account == self.account
        assert self.network is not None
        try:
            address = ipaddress.ip_address(who.host)
        except ValueError:
            return False  # not an IP address (a test's fake peer, a UNIX socket)
        return address.version == self.network.version and address in self.network


def parse_mask(text: str) -> Mask | None:
    """``account:NAME``, an address or a CIDR block; None if it is neither."""
    if text.lower().startswith(ACCOUNT_PREFIX):
        name = text[len(ACCOUNT_PREFIX) :]
        if not name:
            return None
        key = nick_key(name)
        return Mask(ACCOUNT_PREFIX + key, account=key)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if network.num_addresses == 1:
        return Mask(str(network.network_address), network=network)
    return Mask(str(network), network=network)


def account_mask(key: str) -> Mask:
    return Mask(ACCOUNT_PREFIX + key, account=key)


def address_mask(host: str) -> Mask | None:
    """The mask of one address; None if ``host`` is no IP address."""
    try:
        network = ipaddress.ip_network(host)
    except ValueError:
        return None
    return Mask(str(network.network_address), network=network)


def parse_duration(text: str) -> int | None:
    """Seconds in ``30s``, ``10m``, ``2h``, ``7d``, ``2w``; None if not one."""
    found = _DURATION.match(text)
    if found is None:
        return None
    seconds = int(found.group(1)) * _UNIT[found.group(2)]
    return min(seconds, MAX_DURATION)


def duration_text(seconds: float) -> str:
    """The largest whole unit: ``90`` -> ``1m 30s``, ``7200`` -> ``2h``."""
    seconds = max(0, round(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            count, seconds = divmod(seconds, size)
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)
