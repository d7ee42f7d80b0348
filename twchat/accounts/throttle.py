"""
Slowing down password guessing: failed logins are counted per address and
per account; past a few, each further failure locks that address (or
account) for twice as long as the last, up to ``MAX_LOCK`` seconds. While
locked, a login is refused at once, without checking the password (so
guessing costs no CPU either). A success clears the account's count.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime

__all__ = ["FREE_FAILURES", "MAX_LOCK", "LoginThrottle"]

#: Failures allowed before the first lock.
FREE_FAILURES = 3
#: The longest lock, in seconds.
MAX_LOCK = 300.0
#: A count is forgotten after this many seconds without a failure.
FORGET_AFTER = 3600.0
#: Addresses and accounts remembered at most (the oldest go first), so a
#: flood of fresh addresses cannot grow memory without bound.
MAX_KEYS = 10_000


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._seen: OrderedDict[str, _Failures] = OrderedDict()

    def locked(self, key: str) -> int:
        """Whole seconds ``key`` must still wait (0: it may try now)."""
        failures = self._seen.get(key)
        if failures is None:
            return 0
        now = self._clock.seconds()
        if now - failures.last > FORGET_AFTER:
            del self._seen[key]
            return 0
        return max(0, math.ceil(failures.locked_until - now))

    def failed(self, key: str) -> None:
        now = self._clock.seconds()
        failures = self._seen.pop(key, None)
        if failures is None or now - failures.last > FORGET_AFTER:
            failures = _Failures(0, now)
        failures.count += 1
        failures.last = now
        beyond = failures.count - FREE_FAILURES
        if beyond > 0:
            failures.locked_until = now + min(2.0 ** (beyond - 1), MAX_LOCK)
        self._seen[key] = failures  # the most recent last
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._seen.pop(key, None)
