"""
WebSocket frames, as the connection layer needs to see them.

Twisted's WebSocket (over wsproto) hands over a message only once it is
complete and answers pings on its own, so the bounds are kept here, on the
raw bytes, before wsproto sees them: ``FrameInspector`` reads every frame
header and closes the connection as soon as one message's fragments add up
to more than the cap (a header announcing a huge frame is enough), when a
message comes in too many pieces (reassembly joins them one by one), or
when the peer sends control frames faster than any browser would. Control
frames never reset a message's count. Payload bytes are skipped, not
copied, so the cost is linear in the bytes received.

``text_frame`` builds the frames the server sends: one unmasked text frame
per event, rendered once per broadcast like a text line.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..connection.flood import TokenBucket
from ..events import Event
from ..jsonwire import render_json

__all__ = [
    "CONTROL_BURST",
    "CONTROL_RATE",
    "MAX_PIECES",
    "FrameInspector",
    "render_frame",
    "text_frame",
]

#: Fragments one message may come in (browsers send one).
MAX_PIECES = 16
#: Control frames (ping, pong, close) a peer may send at once, then per second.
CONTROL_BURST = 20
CONTROL_RATE = 5.0

_TOO_BIG = ("message too big", "message too big; closing")
_TOO_MANY_PIECES = (
    "message too fragmented",
    f"message in more than {MAX_PIECES} pieces; closing",
)
_CONTROL_FLOOD = ("excess flood", "excess flood: too many WebSocket control frames")


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (server to client) around ``payload``."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 0x10000:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def render_frame(event: Event) -> bytes:
    """An event as the browser receives it: its JSON line in a text frame."""
    return text_frame(render_json(event))


def _header_size(head: bytes) -> int | None:
    """Bytes in the frame header starting ``head``; None until known."""
    if len(head) < 2:
        return None
    size = 2 + (4 if head[1] & 0x80 else 0)
    length = head[1] & 0x7F
    if length == 126:
        size += 2
    elif length == 127:
        size += 8
    return size


class FrameInspector:
    """Counts each incoming message's payload across its fragments."""

    def __init__(self, cap: int, now: Callable[[], float]) -> None:
        self.cap = cap
        self._now = now
        self._head = b""
        #: Payload bytes of the current frame still to come (skipped).
        self._skip = 0
        #: Payload bytes and pieces of the data message being received.
        self._message = 0
        self._pieces = 0
        self._control = TokenBucket(CONTROL_RATE, CONTROL_BURST, now())

    def feed(self, data: bytes) -> tuple[str, str] | None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                taken = min(self._skip, end - pos)
                self._skip -= taken
                pos += taken
                continue
            known = len(self._head)
            head = self._head + data[pos : pos + 14]
            size = _header_size(head)
            if size is None or len(head) < size:
                self._head = head
                return None
            pos += size - known
            self._head = b""
            verdict = self._frame(head[:size])
            if verdict is not None:
                return verdict
        return None

    def _frame(self, head: bytes) -> tuple[str, str] | None:
        final = head[0] & 0x80
        opcode = head[0] & 0x0F
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack_from("!H", head, 2)[0]
        elif length == 127:
            length = struct.unpack_from("!Q", head, 2)[0]
        self._skip = length
        if opcode >= 8:
            if self._control.take(self._now()):
                return _CONTROL_FLOOD
            return None
        if opcode != 0:  # a new text or binary message
            self._message = self._pieces = 0
        self._message += length
        self._pieces += 1
        if self._message > self.cap:
            return _TOO_BIG
        if self._pieces > MAX_PIECES:
            return _TOO_MANY_PIECES
        if final:
            self._message = self._pieces = 0
        return None
