"""Flood control: how many lines a client may send, and how fast."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """
    ``burst`` lines at once, then ``rate`` lines per second.

    A person typing never notices it; a script pasting a file is slowed to
    the rate instead of drowning everyone else.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> float:
        """
        Spend one line; return 0, or how many seconds until one is allowed.

        Nothing is spent when the answer is a wait.
        """
        tokens = self._tokens + (now - self._stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self.rate
