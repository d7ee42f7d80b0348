"""
Where the server is in its life, read by the parts that behave differently
while it stops: the hub (no more notices) and the pool (nobody new gets in).

``ChatServer`` owns the one instance and is the only writer.
"""

from __future__ import annotations

__all__ = ["Lifecycle"]


class Lifecycle:
    """The server's lifecycle flags."""

    def __init__(self) -> None:
        #: Set once shutdown began: nobody new, no notices, only goodbyes.
        self.closing = False
