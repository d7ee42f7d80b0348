"""
What the runner writes into a server's state file before starting it:
accounts (the logins scenarios, and the clients' own in the accounts
scenario) and bans (the moderated scenarios).
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["ACCOUNTS", "prepare_accounts", "prepare_bans", "prepare_logins"]

#: Three free failures each before a lock: 40 accounts take 120 attempts.
ACCOUNTS = 40
_RIGHT = "the-right-password"


def prepare_accounts(path: str, count: int = ACCOUNTS) -> list[str]:
    """Create ``count`` accounts in the state file at ``path``; their names."""
    from twchat.accounts.hashing import hash_password

    names = [f"member{i}" for i in range(count)]
    # One hash for all of them: each check costs the same whatever it is.
    _add_accounts(path, names, hash_password(_RIGHT))
    return names


def prepare_logins(path: str, names: list[str], password: str) -> None:
    """
    An account for each of ``names`` with ``password``, hashed cheaply: what
    is priced is chatting while logged in, not the hasher (the logins
    scenarios price that).
    """
    from argon2 import PasswordHasher

    from twchat.accounts.hashing import hash_password

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _add_accounts(path, names, hash_password(password, cheap))


def _add_accounts(path: str, names: list[str], hash: str) -> None:
    from twchat.accounts import Account
    from twchat.accounts.sqlite import operations
    from twchat.statefile import prepare_state

    prepare_state(path)
    connection = sqlite3.connect(path)
    try:
        with connection:
            cursor = connection.cursor()
            for name in names:
                operations["add"](cursor, Account(name, hash, False, time.time()))
    finally:
        connection.close()


def prepare_bans(path: str, count: int, room: str = "lobby") -> None:
    """``count`` bans of addresses nobody connects from, in ``room``."""
    from twchat.moderation.masks import parse_mask
    from twchat.moderation.sqlite import operations
    from twchat.moderation.state import Sanction, ban_field, room_scope
    from twchat.statefile import prepare_state

    prepare_state(path)
    changes: list[tuple[str, str | None]] = []
    for i in range(count):
        mask = parse_mask(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}")
        assert mask is not None
        ban = Sanction(mask, None, "benchmark", "bench", time.time())
        changes.append((ban_field(mask), ban.encode()))
    connection = sqlite3.connect(path)
    try:
        with connection:
            operations["change"](connection.cursor(), room_scope(room), changes)
    finally:
        connection.close()
