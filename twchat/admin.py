"""
``python -m twchat.admin`` (or ``twchat-admin``): manage accounts while the
server runs or not.

    twchat-admin --db twchat.sqlite3 accounts list
    twchat-admin --db twchat.sqlite3 accounts add alice      # asks the password
    echo "$PW" | twchat-admin --redis redis://127.0.0.1:6379/0 accounts passwd alice
    twchat-admin --db twchat.sqlite3 oper alice

A password is read without echo from a terminal, or as the first line of
standard input otherwise; it is never taken from the command line (other
users of the machine could read it there).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .accounts import Account, password_error
from .accounts.hashing import hash_password
from .nicknames import nick_error

__all__ = ["main"]


class _FailedError(Exception):
    """A clear message for the user; exit status 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twchat-admin", description="Manage twchat's accounts."
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db", default="twchat.sqlite3", help="the server's state file (--db)"
    )
    where.add_argument("--redis", help="the Redis of a server run with --redis")
    commands = parser.add_subparsers(dest="command", required=True)
    accounts = commands.add_parser("accounts", help="list, add, remove, passwd")
    actions = accounts.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every account")
    for name, text in [
        ("add", "register NAME (asks its password)"),
        ("remove", "delete the account NAME"),
        ("passwd", "set NAME's password (asks it)"),
    ]:
        actions.add_parser(name, help=text).add_argument("name")
    commands.add_parser("oper", help="make NAME a server operator").add_argument("name")
    commands.add_parser("deoper", help="NAME is no operator any more").add_argument(
        "name"
    )
    return parser


def _read_password(name: str, stdin: TextIO) -> str:
    if stdin.isatty():
        password = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Again: ") != password:
            raise _FailedError("the passwords differ")
    else:
        password = stdin.readline().rstrip("\r\n")
    error = password_error(password)
    if error is not None:
        raise _FailedError(error)
    return password


class _SQLiteStore:
    """The store's SQL, on this tool's own connection."""

    def __init__(self, path: str, out: TextIO, create: bool) -> None:
        from .accounts.sqlite import operations
        from .statefile import prepare_state

        # A mistyped path must not read as "0 accounts", nor get accounts
        # the server never sees: only adding one may start a state file.
        if not os.path.exists(path):
            if not create:
                raise _FailedError(
                    f"no state file at {path}: give the server's --db "
                    "(the server creates it when it first starts)"
                )
            print(f"created the state file {path}", file=out)
        try:
            prepare_state(path)
            self._connection = sqlite3.connect(path)
        except (sqlite3.Error, OSError) as e:
            raise _FailedError(f"cannot open {path}: {e}") from e
        self._operations: dict[str, Callable[..., Any]] = operations  # type: ignore[assignment]

    def run(self, operation: str, *args: Any) -> Any:
        with self._connection:
            return self._operations[operation](self._connection.cursor(), *args)


class _RedisStore:
    def __init__(self, url: str) -> None:
        self._url = url

    def run(self, operation: str, *args: Any) -> Any:
        from redis.exceptions import RedisError

        from .accounts.redis import AccountsInRedis
        from .backend.redis.link import connect, redacted

        async def call() -> Any:
            client = connect(self._url, name="twchat-admin")
            try:
                method: Callable[..., Any] = getattr(AccountsInRedis(client), operation)
                return await method(*args)
            finally:
                await client.aclose()

        try:
            return asyncio.run(call())
        except (RedisError, OSError) as e:
            raise _FailedError(
                f"cannot reach Redis at {redacted(self._url)}: {e}"
            ) from e


def _run(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    name = getattr(args, "name", "")
    adding = args.command == "accounts" and args.action == "add"
    store = (
        _RedisStore(args.redis)
        if args.redis
        else _SQLiteStore(args.db, out, create=adding)
    )
    if args.command == "accounts" and args.action == "list":
        accounts = store.run("all")
        for account in accounts:
            flags = " (operator)" if account.operator else ""
            created = time.strftime("%Y-%m-%d", time.localtime(account.created))
            print(f"{account.name}{flags}  registered {created}", file=out)
        print(f"{len(accounts)} account{'' if len(accounts) == 1 else 's'}", file=out)
        return
    if adding:
        error = nick_error(name)
        if error is not None:
            raise _FailedError(error)
        hashed = hash_password(_read_password(name, stdin))
        if not store.run("add", Account(name, hashed, created=time.time())):
            raise _FailedError(f"{name} is registered already")
        print(f"{name} is registered", file=out)
        return
    # The account as stored: its name is said as it was registered.
    stored: Account | None = store.run("get", name)
    if stored is None:
        raise _FailedError(f"no account {name}")
    name = stored.name
    if args.command == "accounts" and args.action == "remove":
        if not store.run("remove", name):
            raise _FailedError(f"no account {name}")
        print(f"{name} is no account any more", file=out)
    elif args.command == "accounts" and args.action == "passwd":
        store.run("set_hash", name, hash_password(_read_password(name, stdin)))
        print(f"{name}'s password is changed", file=out)
    else:
        operator = args.command == "oper"
        if not store.run("set_operator", name, operator):
            raise _FailedError(f"no account {name}")
        what = "a server operator" if operator else "no operator any more"
        print(f"{name} is {what}", file=out)


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    args = _parser().parse_args(argv)
    try:
        _run(args, stdin or sys.stdin, out or sys.stdout)
    except _FailedError as e:
        print(f"twchat-admin: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
