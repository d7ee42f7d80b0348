"""The password hasher: off the reactor, bounded, and second to the chat."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from twchat.accounts.hashing import NICENESS, BusyError, Hasher, hash_password

_REACTOR: IReactorFromThreads = reactor  # type: ignore[assignment]


@pytest_twisted.ensureDeferred
async def test_hashes_are_argon2id_and_verify() -> None:
    hasher = Hasher(_REACTOR)
    try:
        hash = await hasher.hash("correct horse")
        assert hash.startswith("$argon2id$")
        assert "correct horse" not in hash
        assert await hasher.verify(hash, "correct horse") is True
        assert await hasher.verify(hash, "wrong horse") is False
        assert await hasher.verify("not a hash", "correct horse") is False
    finally:
        hasher.stop()


@pytest_twisted.ensureDeferred
async def test_checks_beyond_the_queue_are_refused_at_once() -> None:
    hasher = Hasher(_REACTOR, workers=1, queue=2)
    hash = hash_password("correct horse")
    try:
        accepted = [hasher.verify(hash, "guess") for _ in range(3)]
        assert hasher.pending == 3
        refused = hasher.verify(hash, "guess")
        failures: list[BaseException | None] = []

        def failed(failure: Failure) -> None:
            failures.append(failure.value)

        refused.addErrback(failed)
        # Refused before any hashing happened, not after waiting for it.
        assert len(failures) == 1
        assert isinstance(failures[0], BusyError)
        results = await DeferredList(accepted)
        assert [ok and value for ok, value in results] == [False] * 3
        assert hasher.pending == 0
    finally:
        hasher.stop()


@pytest_twisted.ensureDeferred
async def test_the_reactor_keeps_ticking_while_passwords_are_checked() -> None:
    hasher = Hasher(_REACTOR, workers=1, queue=4)
    hash = hash_password("correct horse")
    lags: list[float] = []
    try:
        checks = DeferredList([hasher.verify(hash, "guess") for _ in range(4)])
        done: list[object] = []
        checks.addBoth(done.append)
        while not done:
            asked = time.monotonic()
            await deferLater(reactor, 0.01, lambda: None)
            lags.append(time.monotonic() - asked - 0.01)
    finally:
        hasher.stop()
    # Four checks take ~0.7 s of one core; the reactor never waits on one.
    assert len(lags) > 20
    assert max(lags) < 0.1, max(lags)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
@pytest_twisted.ensureDeferred
async def test_hashing_threads_run_at_a_lower_priority() -> None:
    hasher = Hasher(_REACTOR)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def verify(hash: str, password: str, _hasher: object) -> bool:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return False

    try:
        await hasher._run(verify, "hash", "guess", None)
        await hasher._run(verify, "hash", "guess", None)
    finally:
        hasher.stop()
    # Lowered once per thread, not once per check; the reactor's untouched.
    assert seen[0] == min(mine + NICENESS, 19)
    assert seen[1] == seen[0]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
