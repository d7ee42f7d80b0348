"""Readable addresses for log lines."""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress

__all__ = ["describe_address"]


def describe_address(address: IAddress, kind: bool = False) -> str:
    """``127.0.0.1:5000`` (or ``tcp:127.0.0.1:5000`` with ``kind``)."""
    if isinstance(address, IPv4Address | IPv6Address):
        host = f"[{address.host}]" if ":" in address.host else address.host
        where = f"{host}:{address.port}"
        return f"{address.type.lower()}:{where}" if kind else where
    if isinstance(address, UNIXAddress):
        path = address.name.decode() if isinstance(address.name, bytes) else ""
        return f"unix:{path}" if kind else (path or "unix")
    return str(address)
