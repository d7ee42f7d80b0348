"""Accounts made with the real admin tool, as an operator would."""

from __future__ import annotations

import io

from twchat.admin import main as admin

__all__ = ["add_account"]


def add_account(
    where: list[str], name: str, password: str, operator: bool = False
) -> None:
    """``twchat-admin WHERE accounts add NAME`` (and ``oper NAME``)."""
    out = io.StringIO()
    command = [*where, "accounts", "add", name]
    assert admin(command, stdin=io.StringIO(f"{password}\n"), out=out) == 0
    if operator:
        assert admin([*where, "oper", name], stdin=io.StringIO(), out=out) == 0
