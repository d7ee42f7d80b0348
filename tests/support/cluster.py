"""Nodes of a Redis-mode chat run as real ``twistd`` processes."""

from __future__ import annotations

from .proc import Twistd, User, at_prompt, guest

__all__ = ["Node"]


class Node:
    """One twistd chat process in Redis mode."""

    def __init__(self, process: Twistd, port: int) -> None:
        self.process = process
        self.port = port

    def guest(self) -> User:
        """A connection at the nickname prompt, greeting read."""
        return at_prompt(self.port)

    def user(self, nick: str) -> User:
        """A registered user; everything up to the welcome line is read."""
        return guest(self.port, nick)
