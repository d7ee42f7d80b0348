"""
Getting lines out to one connection: batched, bounded, and fast.

Every line for a connection goes through its ``Outbox``. Lines queued in
one reactor turn leave together, in one ``send`` per connection, when the
``Flusher`` runs at the start of the next turn; what the rooms hand out
then, at the turn's end, goes to an idle connection at once. While the
transport still holds unsent bytes the lines wait here, where they are
counted, so a client that does not read is noticed and cut instead of
growing memory.

On plain TCP and UNIX connections an idle transport is written to straight
through its socket (``ISystemHandle.getHandle``): a chat line to thousands
of people would otherwise cost each of them a trip through the reactor's
writer registration. Whatever the socket does not take goes to
``transport.write`` as usual, and the outbox learns that the transport has
drained again because it is registered as its pull producer. Any other
transport (TLS above all, whose buffers are its own) gets ``transport.write``
and a push producer: paused, the lines wait here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IPullProducer,
    IPushProducer,
    IReactorTime,
    ISystemHandle,
    ITransport,
)
from zope.interface import implementer

from ..stats import Stats

if TYPE_CHECKING:
    from ..member import Outlet

__all__ = ["Flusher", "Outbox", "Overflowing"]


class Flusher:
    """
    Runs every outbox that has lines waiting, once per reactor turn; before
    that, the work that fills them at the end of a turn (``later``: rooms
    handing out their lines).
    """

    __slots__ = ("_call", "_dirty", "_reactor", "_work", "handing_out", "stats")

    def __init__(self, reactor: IReactorTime, stats: Stats | None = None) -> None:
        self._reactor = reactor
        #: Where the bytes handed out are counted.
        self.stats = stats if stats is not None else Stats()
        self._dirty: list[Outbox] = []
        self._work: list[Callable[[], None]] = []
        self._call: IDelayedCall | None = None
        #: True while the end-of-turn work runs: what it writes to an
        #: outbox with nothing waiting goes out at once (see Outbox.write).
        self.handing_out = False

    def add(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if self._call is None:
            self._call = self._reactor.callLater(0, self.run)

    def later(self, work: Callable[[], None]) -> None:
        """Run ``work`` when this turn ends, before the outboxes send."""
        self._work.append(work)
        if self._call is None:
            self._call = self._reactor.callLater(0, self.run)

    def hand_out(self, outlets: Sequence[Outlet], data: bytes) -> None:
        """
        A room's bytes for many members at once: what ``write`` does for
        each of them, in one loop (a Python call per receiver per line was
        a fifth of a line's cost to a crowd).
        """
        # A room's members' outlets are its connections' outboxes.
        outboxes = cast("Sequence[Outbox]", outlets)
        if self.handing_out:
            _send_each(outboxes, data, self.stats)
        else:
            for outbox in outboxes:
                outbox.write(data)

    def run(self) -> None:
        # Still "scheduled" while the work runs: the outboxes it fills are
        # sent in this run. What sending brings (a producer's next chunk)
        # waits for the next turn, as before: one turn cannot be hogged.
        try:
            work, self._work = self._work, []
            self.handing_out = True
            for job in work:
                job()
        finally:
            self.handing_out = False
            self._call = None
            dirty, self._dirty = self._dirty, []
            for outbox in dirty:
                outbox.flush()
            if self._work and self._call is None:
                # Work that the work itself brought: the next turn's.
                self._call = self._reactor.callLater(0, self.run)


def _send_each(outboxes: Iterable[Outbox], data: bytes, stats: Stats) -> None:
    """
    ``data`` to each outbox: straight to its socket (or transport) if
    nothing waits there before it and the transport takes bytes, else
    queued by ``write``.
    """
    size = len(data)
    handed = 0
    for outbox in outboxes:
        if outbox._pending is not None or not outbox._idle or outbox._closed:
            outbox.write(data)
            continue
        handed += 1
        sock = outbox._socket
        if sock is None:
            outbox._transport.write(data)
            continue
        try:
            sent = sock.send(data)
        except OSError:
            # Would block, or broken: then the transport finds out and
            # closes as usual.
            sent = 0
        if sent != size:
            # Unsent bytes go to the transport; it calls resumeProducing
            # once they are out.
            outbox._idle = False
            outbox.waiting_since = outbox._now()
            outbox._transport.write(data[sent:])
    # One addition per call: the total is past 2**30 soon, and a Python
    # integer that size made anew per send was a tenth of a send's cost.
    stats.bytes_out += handed * size


def _socket_of(transport: object) -> socket.socket | None:
    """The socket of a plain TCP/UNIX transport, or None for anything else."""
    if isinstance(transport, FileDescriptor) and ISystemHandle.providedBy(transport):
        handle = transport.getHandle()
        if isinstance(handle, socket.socket):
            return handle
    return None


class Overflowing(Protocol):
    """Who hears of an outbox's overflow: its connection."""

    def send_queue_exceeded(self) -> None: ...


@implementer(IPullProducer, IPushProducer)
class Outbox:
    """
    One connection's queue of outgoing bytes, with a byte count.

    ``owner.send_queue_exceeded`` is called once when more than
    ``max_bytes`` wait here behind a transport that has not drained;
    ``waiting_since`` says since when it has not.
    """

    __slots__ = (
        "_closed",
        "_flusher",
        "_idle",
        "_now",
        "_owner",
        "_pending",
        "_socket",
        "_transport",
        "max_bytes",
        "on_drain",
        "queued",
        "waiting_since",
    )

    def __init__(
        self,
        transport: ITransport,
        flusher: Flusher,
        max_bytes: int,
        owner: Overflowing,
        now: Callable[[], float],
    ) -> None:
        self._transport = transport
        self._flusher = flusher
        self.max_bytes = max_bytes
        # The owner, not a bound method of it: one of those per idle
        # connection was 64 bytes.
        self._owner = owner
        self._pending: bytes | list[bytes] | None = None
        #: Bytes waiting here (not yet handed to the transport).
        self.queued = 0
        self._closed = False
        #: When the transport stopped taking bytes; None while it takes them.
        self.waiting_since: float | None = None
        self._now = now
        self._socket = _socket_of(transport)
        #: Called when the transport has taken everything again, if set.
        self.on_drain: Callable[[], None] | None = None
        # With a pull producer the transport says when it has drained; the
        # registration itself calls resumeProducing, marking it idle.
        self._idle = False
        cast(IConsumer, transport).registerProducer(
            self, streaming=self._socket is None
        )
        if self._socket is None:
            self._idle = True

    def write(self, data: bytes, at_once: bool = False) -> None:
        """
        Queue ``data``, or send it now if nothing waits before it and the
        transport takes bytes, when ``at_once`` or while the rooms hand out
        their lines (the end of a turn).
        """
        if self._closed:
            return
        # One waiting chunk is kept as is: most turns bring a connection one
        # line, and a list per line per receiver would feed the garbage
        # collector thousands of containers per broadcast.
        pending = self._pending
        if pending is None:
            flusher = self._flusher
            if self._idle and (at_once or flusher.handing_out):
                # At the turn's end the lines would be sent later in this
                # same run: a crowd's line to thousands skips the trip
                # through the flush list.
                _send_each((self,), data, flusher.stats)
                return
            self._pending = data
            flusher.add(self)
        elif isinstance(pending, bytes):
            self._pending = [pending, data]
        else:
            pending.append(data)
        self.queued += len(data)
        # Only bytes the transport has not been able to take count: a big
        # burst to an idle, reading client leaves with the next flush.
        if self.queued > self.max_bytes and not self._idle:
            self._overflow()

    def flush(self) -> None:
        """Hand everything waiting to the connection, if it takes it now."""
        pending = self._pending
        if pending is None or not self._idle or self._closed:
            return
        self._pending = None
        self.queued = 0
        self.write(
            pending if isinstance(pending, bytes) else b"".join(pending), at_once=True
        )

    @property
    def writable(self) -> bool:
        """Whether the transport takes bytes now (nothing of ours is stuck)."""
        return self._idle

    def close(self) -> None:
        """Send what is waiting, then let the connection close after it."""
        if self._closed:
            return
        self._idle = True
        self.flush()
        self._closed = True
        cast(IConsumer, self._transport).unregisterProducer()

    def discard(self) -> None:
        """Drop what is waiting: the connection is being cut."""
        self._pending = None
        self.queued = 0
        if not self._closed:
            self._closed = True
            cast(IConsumer, self._transport).unregisterProducer()

    def _overflow(self) -> None:
        self._pending = None
        self.queued = 0
        self._closed = True
        self._owner.send_queue_exceeded()

    # IPullProducer / IPushProducer: the transport's side of the bargain.

    def resumeProducing(self) -> None:
        self._idle = True
        self.waiting_since = None
        if self._pending is not None:
            self.flush()
        if self.on_drain is not None and self._idle:
            self.on_drain()

    def pauseProducing(self) -> None:
        self._idle = False
        self.waiting_since = self._now()

    def stopProducing(self) -> None:
        self._closed = True
        self._pending = None
        self.queued = 0
