"""
Cutting a byte stream into lines, safely.

Accepts ``\\n`` (nc), ``\\r\\n`` (telnet) and a lone ``\\r`` as line ends.
A line longer than the limit is reported once, as soon as it is known to
be too long, and the rest of it is thrown away without being buffered, so
a client that never sends a newline cannot grow server memory.
"""

from __future__ import annotations

__all__ = ["TOO_LONG", "LineSplitter", "TooLong"]


class TooLong:
    """Stands in the output where a line was over the limit."""

    def __repr__(self) -> str:
        return "TOO_LONG"


TOO_LONG = TooLong()


class LineSplitter:
    """Turn received chunks into complete lines (without line ends)."""

    __slots__ = ("_after_cr", "_buffer", "_discarding", "max_length")

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self._buffer = b""
        self._discarding = False
        self._after_cr = False

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the end of their line."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | TooLong]:
        """Take one received chunk; return the lines it completes."""
        if self._after_cr:
            # "\r" ended the last chunk; a "\n" now belongs to that line end.
            self._after_cr = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            self._after_cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[bytes | TooLong] = []
        if self._discarding:
            end = data.find(b"\n")
            if end < 0:
                return out
            data = data[end + 1 :]
            self._discarding = False
        limit = self.max_length
        if b"\n" in data:
            lines: list[bytes] = (self._buffer + data).split(b"\n")
            rest = lines.pop()
            for line in lines:
                out.append(line if len(line) <= limit else TOO_LONG)
        else:
            rest = self._buffer + data
        if len(rest) > limit:
            out.append(TOO_LONG)
            rest = b""
            self._discarding = True
        self._buffer = rest
        return out
