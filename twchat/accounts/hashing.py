"""
Password hashes (argon2id), made and checked off the reactor thread.

One verification costs about 0.2 s of CPU here (64 MiB, 3 passes): on the
reactor thread it would stall every user that long. It runs on a small
thread pool of its own (argon2's C code releases the GIL), at most
``workers`` at once, so password checks can never take more than that
many cores from the chat; at most ``queue`` more wait, and beyond that a
check is refused at once with ``BusyError`` rather than queued for ever.
On Linux those threads also run at a lower priority (nice 10), so when
the cores are short, chat lines go first and password checks wait.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

__all__ = ["BusyError", "Hasher", "hash_password", "verify_password"]

_T = TypeVar("_T")

#: argon2id, 64 MiB, 3 passes, one lane: one core per check, ~0.18 s.
_HASHER = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1)


def hash_password(password: str, hasher: PasswordHasher = _HASHER) -> str:
    """``$argon2id$...`` for ``password`` (blocking: not on the reactor)."""
    return hasher.hash(password)


def verify_password(hash: str, password: str, hasher: PasswordHasher = _HASHER) -> bool:
    """Whether ``password`` matches ``hash`` (blocking: not on the reactor)."""
    try:
        return hasher.verify(hash, password)
    except (VerificationError, InvalidHashError):
        return False


#: How much lower than the reactor's the hashing threads' priority is.
NICENESS = 10
_thread_state = threading.local()


def _lowered(work: Callable[..., _T], *args: object) -> _T:
    """Run ``work`` having lowered this (worker) thread's priority once."""
    if not getattr(_thread_state, "lowered", False):
        _thread_state.lowered = True
        # Linux alone gives each thread its own nice value (elsewhere a
        # thread id is no process id).
        if sys.platform == "linux":
            current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            os.setpriority(
                os.PRIO_PROCESS, threading.get_native_id(), current + NICENESS
            )
    return work(*args)


class BusyError(Exception):
    """Too many password checks are waiting already."""


class Hasher:
    """Hashing and checking passwords on a bounded pool of threads."""

    def __init__(
        self,
        reactor: IReactorFromThreads,
        workers: int = 1,
        queue: int = 16,
        hasher: PasswordHasher = _HASHER,
    ) -> None:
        self._reactor = reactor
        self._hasher = hasher
        self._pool = ThreadPool(minthreads=0, maxthreads=workers, name="argon2")
        self._limit = workers + queue
        #: Checks running or waiting.
        self.pending = 0

    def stop(self) -> None:
        self._pool.stop()

    def hash(self, password: str) -> Deferred[str]:
        return self._run(hash_password, password, self._hasher)

    def verify(self, hash: str, password: str) -> Deferred[bool]:
        return self._run(verify_password, hash, password, self._hasher)

    def _run(self, work: Callable[..., _T], *args: object) -> Deferred[_T]:
        if self.pending >= self._limit:
            return fail(BusyError())
        if not self._pool.started:
            self._pool.start()  # threads come and go with the work
        self.pending += 1
        d: Deferred[_T] = deferToThreadPool(
            self._reactor,
            self._pool,
            _lowered,
            work,
            *args,
        )

        def done(result: _T) -> _T:
            self.pending -= 1
            return result

        return d.addBoth(done)
