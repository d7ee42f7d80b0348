"""
Failed logins at a steady rate, run beside a chat load (the ``logins``
scenarios): what a password-guessing attacker costs the people chatting.

The attempts are spread over many accounts and many source addresses
(``127.0.0.2`` ... : all of 127/8 is loopback, and the traffic still goes
to 127.0.0.1) so that the per-account and per-address throttles do not
refuse them before hashing: every attempt reaches the password hasher
until its queue is full. That is the worst an attacker can do; from one
address against one account the throttle refuses after three failures,
without hashing, which is cheaper still.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import IO

from twchat.accounts import TOO_MANY_FAILURES, WRONG_PASSWORD
from twchat.hub import BUSY
from twchat.wire import PASSWORD_PROMPT

__all__ = ["FailedLogins"]

#: One attempt per address in a six-second run at 20 per second.
ADDRESSES = 200
#: Never any account's password (see statefile.prepare_accounts).
WRONG = "not-the-password"


class FailedLogins:
    """``rate`` wrong passwords a second against ``names``, on a thread."""

    def __init__(self, port: int, names: list[str], rate: float) -> None:
        self._port = port
        self._names = names
        self._rate = rate
        self._stop = threading.Event()
        self._outcomes: Counter[str] = Counter()
        self._answer_ms: list[float] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, object]:
        """Stop, wait for the attempts under way; what the server answered."""
        self._stop.set()
        self._thread.join()
        answers = sorted(self._answer_ms)
        return {
            "rate": self._rate,
            "attempts": sum(self._outcomes.values()),
            "outcomes": dict(self._outcomes),
            "answer_ms_p50": _percentile(answers, 0.5),
            "answer_ms_max": answers[-1] if answers else None,
        }

    def _run(self) -> None:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=64) as pool:
            attempt = 0
            while not self._stop.is_set():
                due = started + attempt / self._rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                pool.submit(self._attempt, attempt)
                attempt += 1

    def _attempt(self, n: int) -> None:
        name = self._names[n % len(self._names)]
        source = f"127.0.0.{2 + n % ADDRESSES}"
        try:
            outcome, answer_ms = _try(self._port, source, name)
        except OSError as e:
            outcome, answer_ms = f"error: {type(e).__name__}", None
        with self._lock:
            self._outcomes[outcome] += 1
            if answer_ms is not None:
                self._answer_ms.append(answer_ms)


def _try(port: int, source: str, name: str) -> tuple[str, float | None]:
    """One login with a wrong password; how it was refused, and how fast."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=30, source_address=(source, 0)
    ) as s:
        lines = s.makefile("r", encoding="utf-8", newline="\r\n")
        _read_until(lines, "? Choose a nickname:")
        s.sendall(f"{name}\r\n".encode())
        _read_until(lines, PASSWORD_PROMPT)
        sent = time.monotonic()
        s.sendall(f"{WRONG}\r\n".encode())
        answer = lines.readline().rstrip("\r\n")
        answer_ms = round((time.monotonic() - sent) * 1000, 1)
    if answer.startswith(f"! {WRONG_PASSWORD}"):
        return "wrong password", answer_ms
    if answer.startswith(f"! {TOO_MANY_FAILURES}"):
        return "locked", answer_ms
    if answer == f"! {BUSY}":
        return "busy", answer_ms
    return f"other: {answer[:60]}", answer_ms


def _read_until(lines: IO[str], prefix: str) -> None:
    for line in lines:
        if line.startswith(prefix):
            return
    raise ConnectionError(f"closed before {prefix!r}")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]
