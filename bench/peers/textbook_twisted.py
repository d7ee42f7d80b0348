"""
Peer: the textbook minimal Twisted chat server.

The LineReceiver broadcast from Twisted's documentation, plus join and
leave announcements: asks for a name, then sends each line to every other
user with sendLine. No limits, no checks, no sanitising.

    python bench/peers/textbook_twisted.py PORT
"""

from __future__ import annotations

import sys

from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver


class Chat(LineReceiver):
    def __init__(self, users: dict[bytes, Chat]) -> None:
        self.users = users
        self.name = b""

    def connectionMade(self) -> None:
        self.sendLine(b"What's your name?")

    def connectionLost(self, reason: object = None) -> None:
        if self.users.get(self.name) is self:
            del self.users[self.name]
            self.broadcast(b"*** " + self.name + b" left")

    def lineReceived(self, line: bytes) -> None:
        if not self.name:
            name = line.strip()
            if not name or name in self.users:
                self.sendLine(b"Name taken, please choose another.")
                return
            self.name = name
            self.users[name] = self
            self.sendLine(b"Welcome, %s!" % name)
            self.broadcast(b"*** %s joined (%d online)" % (name, len(self.users)))
            return
        self.broadcast(b"<" + self.name + b"> " + line)

    def broadcast(self, message: bytes) -> None:
        for protocol in self.users.values():
            if protocol is not self:
                protocol.sendLine(message)


class ChatFactory(Factory):
    def __init__(self) -> None:
        self.users: dict[bytes, Chat] = {}

    def buildProtocol(self, addr: object) -> Chat:
        return Chat(self.users)


if __name__ == "__main__":
    reactor.listenTCP(  # type: ignore[attr-defined]
        int(sys.argv[1]), ChatFactory(), backlog=4096, interface="127.0.0.1"
    )
    reactor.run()  # type: ignore[attr-defined]
