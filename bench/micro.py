#!/usr/bin/env python3
"""
The receive -> broadcast -> outbox path in one process, without sockets.

    python bench/micro.py                 # best of 5, in milliseconds
    python bench/micro.py --reps 1        # for callgrind (see bench/README.md)

100 users on in-memory transports, 10 of them send 200 lines each, every
line reaches the 99 others. Wall-clock time on a busy 2-core machine is
noisy; run it under ``valgrind --tool=callgrind`` with 1 and 3 repetitions
and halve the difference to get the instructions per repetition, which
repeat exactly: a way to tell a real hot-path cost from run-to-run noise.
``PYTHONPATH=OTHER_CHECKOUT`` measures another version of twchat.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from twchat.config import ChatConfig
from twchat.server import ChatServer

USERS, SENDERS, LINES = 100, 10, 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    clock = Clock()
    config = ChatConfig(
        flood_rate=0, max_recvq=10**7, max_clients=USERS + 1, max_per_ip=0
    )
    server = ChatServer(clock, config)
    server.start()
    factory = server.tcp_factory()
    ports = itertools.count(40000)
    users = []
    for i in range(USERS):
        address = IPv4Address("TCP", "127.0.0.1", next(ports))
        transport = StringTransport(peerAddress=address)
        protocol = factory.buildProtocol(address)
        assert protocol is not None
        protocol.makeConnection(transport)
        protocol.dataReceived(f"u{i}\n".encode())
        users.append((protocol, transport))
    clock.advance(0)
    payload = b"".join(f"line {i} {'x' * 40}\n".encode() for i in range(LINES))
    best = float("inf")
    for _ in range(args.reps):
        for _, transport in users:
            transport.clear()
        started = time.perf_counter()
        for protocol, _ in users[:: USERS // SENDERS]:
            protocol.dataReceived(payload)
            clock.advance(0)
        for _ in range(20):
            clock.advance(0)
        best = min(best, time.perf_counter() - started)
    expected = SENDERS * LINES * (USERS - 1)
    received = sum(t.value().count(b"\r\n") for _, t in users)
    if received < expected:
        sys.exit(f"only {received} of {expected} deliveries in the last repetition")
    print(
        f"{best * 1000:.1f} ms for {SENDERS * LINES} lines x {USERS - 1} receivers "
        f"(best of {args.reps})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
