"""
Accounts, as users see them: the same lines on every backend (one
process, one Redis node, users spread over two Redis nodes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher

from twchat.accounts import Account
from twchat.accounts.logins import Logins
from twchat.accounts.sqlite import SQLiteAccounts
from twchat.commands import handle_line
from twchat.hub import ACCOUNTS_UNAVAILABLE, BUSY, REGISTRATION_CLOSED, Hub
from twchat.statefile import prepare_state

from .support.fakes import RecordingMember, SyncHasher, SyncPool
from .support.hubs import Chat, Hubs

SECRET = "correct-horse"


def registered(chat: Chat, nick: str, password: str = SECRET) -> RecordingMember:
    """``nick`` online with ``password`` as their account's."""
    (member,) = chat.join(nick)
    chat.type(nick, f"/register {password}")
    assert chat.read(nick) == [
        f"*** {nick} is now registered; next time you will be asked for its password"
    ]
    return member


def newcomer(chat: Chat) -> tuple[Hub, RecordingMember]:
    """A new connection, its greeting read: the next line is a nickname."""
    hub, member = chat.connect()
    member.take()
    return hub, member


def logins(hub: Hub) -> Logins:
    return hub.logins


def test_registering_then_logging_in(hubs: Hubs) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.quit("alice")
    hub, member = newcomer(chat)
    hubs.type(hub, member, "Alice")
    assert member.take() == ["? Password for alice:"]
    hubs.type(hub, member, "not the password")
    assert member.take() == ["! wrong password for alice", "? Choose a nickname:"]
    assert member.nick == ""
    hubs.type(hub, member, "alice", SECRET)
    hubs.settle()
    assert member.nick == "alice"  # as registered, whatever was typed
    assert member.take()[:2] == [
        "? Password for alice:",
        "*** Welcome, alice! #lobby has 1 user: alice",
    ]
    assert hub.account_of(member) is not None


def test_password_rules(hubs: Hubs) -> None:
    chat = Chat(hubs)
    chat.join("bob")
    chat.type("bob", "/register short", "/register", "/password a b")
    assert chat.read("bob") == [
        "! a password needs at least 8 characters",
        "! usage: /register PASSWORD",
        "! you are not logged in to an account; /register makes one",
    ]
    chat.type("bob", f"/register {SECRET}", f"/register {SECRET}")
    assert chat.read("bob")[1] == "! you are logged in to bob already"


def test_changing_the_password(hubs: Hubs) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.type("alice", "/password wrong-one new-password", "/password x y")
    assert chat.read("alice") == [
        "! wrong password for alice",
        "! a password needs at least 8 characters",
    ]
    chat.type("alice", f"/password {SECRET} new-password")
    assert chat.read("alice") == ["*** your password has been changed"]
    chat.quit("alice")
    hub, member = newcomer(chat)
    hubs.type(hub, member, "alice", SECRET)
    assert member.take() == [
        "? Password for alice:",
        "! wrong password for alice",
        "? Choose a nickname:",
    ]
    hubs.type(hub, member, "alice", "new-password")
    assert member.nick == "alice"


def test_an_empty_answer_takes_the_name_back(hubs: Hubs) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.quit("alice")
    hub, member = newcomer(chat)
    hubs.type(hub, member, "alice", "")
    assert member.take() == ["? Password for alice:", "? Choose a nickname:"]
    hubs.type(hub, member, "carol")
    assert member.nick == "carol"


def test_a_guest_name_is_refused_while_held_but_an_account_is_taken_over(
    hubs: Hubs,
) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.join("bob", "guest")
    chat.clear()
    hub, other = newcomer(chat)
    hubs.type(hub, other, "guest")
    assert other.take() == ["! nickname guest is already taken", "? Choose a nickname:"]
    # alice's old connection (another device, or a dead one) is taken over.
    old_hub, old = chat.users.pop("alice")
    hubs.type(hub, other, "alice", SECRET)
    hubs.settle()
    assert old.take() == [
        "*** alice logged in from another connection; closing this one"
    ]
    assert old.quit_reason == "logged in elsewhere"
    assert chat.read("bob") == [
        "*** alice left (2 here): logged in elsewhere",
        "*** alice joined (3 here)",
    ]
    assert other.nick == "alice"
    assert other.take()[1].startswith("*** Welcome, alice! #lobby has 3 users")
    assert old_hub.find("alice") is (other if old_hub is hub else None)


def test_two_logins_at_once_one_wins(hubs: Hubs) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.quit("alice")
    (bob,) = chat.join("bob")
    first_hub, first = chat.connect()
    second_hub, second = chat.connect()
    for hub, member in ((first_hub, first), (second_hub, second)):
        hubs.type(hub, member, "alice")
    # Both answers are in before either login is through.
    waiting = [
        handle_line(first_hub, first, SECRET),
        handle_line(second_hub, second, SECRET),
    ]
    for d in waiting:
        hubs.done(d)
    hubs.settle()
    holders = [
        m for h, m in ((first_hub, first), (second_hub, second)) if h.find("alice") is m
    ]
    assert len(holders) == 1
    loser = second if holders[0] is first else first
    assert loser.nick == "" or loser.quit_reason == "logged in elsewhere"
    hubs.type(hubs.hubs[0], bob, "/who")
    hubs.settle()
    assert bob.lines[-1] == "*** #lobby has 2 users: alice, bob"


def test_nick_to_an_account_asks_its_password(hubs: Hubs) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.quit("alice")
    chat.join("zed", "bob")
    chat.type("zed", "/nick alice")
    assert chat.read("zed") == ["? Password for alice:"]
    chat.type("zed", "wrong password")
    assert chat.read("zed") == ["! wrong password for alice"]
    chat.type("zed", "/nick ALICE", SECRET)
    assert chat.read("zed") == [
        "? Password for alice:",
        "*** zed is now known as alice",
    ]
    assert chat.read("bob") == ["*** zed is now known as alice"]
    # A guest name afterwards logs out of the account.
    hub, zed = chat.users["zed"]
    assert hub.account_of(zed) is not None
    chat.type("zed", "/nick zed")
    assert hub.account_of(zed) is None


def test_failed_logins_lock_the_account_and_the_address(hubs: Hubs) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.quit("alice")
    hub, member = newcomer(chat)
    for _ in range(4):  # three free failures, then a one-second lock
        hubs.type(hub, member, "alice", "guess guess")
    hasher = logins(hub).hasher
    assert isinstance(hasher, SyncHasher)
    checked = hasher.runs
    hubs.type(hub, member, "alice", SECRET)
    assert member.take()[-2:] == [
        "! too many failed logins for alice; try again in 1 second",
        "? Choose a nickname:",
    ]
    assert hasher.runs == checked  # refused without checking anything
    # The same address is slowed down on other accounts too.
    registered(chat, "bob")
    chat.quit("bob")
    checked = hasher.runs
    hubs.type(hub, member, "bob", SECRET)
    assert member.take()[-2].startswith(
        "! too many failed logins from your address; try again in "
    )
    assert hasher.runs == checked


def test_the_password_is_never_logged(hubs: Hubs) -> None:
    seen: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        seen.append(str(formatEvent(event)) + repr(event))

    observer = cast(ILogObserver, observe)  # zope adapts a function
    globalLogPublisher.addObserver(observer)
    try:
        chat = Chat(hubs)
        registered(chat, "alice", "hunter2-secret")
        chat.type("alice", "/password hunter2-secret hunter3-secret")
        chat.quit("alice")
        hub, member = chat.connect()
        hubs.type(hub, member, "alice", "hunter9-guess", "alice", "hunter3-secret")
    finally:
        globalLogPublisher.removeObserver(observer)
    assert any("failed login for alice" in line for line in seen)
    for line in seen:
        assert "hunter" not in line


def test_registration_closed(hubs: Hubs) -> None:
    chat = Chat(hubs, registration=False)
    chat.join("bob")
    chat.type("bob", f"/register {SECRET}")
    assert chat.read("bob") == [f"! {REGISTRATION_CLOSED}"]


def test_accounts_only_with_open_registration(hubs: Hubs) -> None:
    chat = Chat(hubs, require_account=True)
    hub, member = newcomer(chat)
    hubs.type(hub, member, "dora")
    assert member.take() == ["? Choose a password for dora (at least 8 characters):"]
    hubs.type(hub, member, "short")
    assert member.take() == [
        "! a password needs at least 8 characters",
        "? Choose a password for dora (at least 8 characters):",
    ]
    hubs.type(hub, member, SECRET)
    assert member.nick == "dora"
    assert hub.account_of(member) is not None
    hubs.type(hub, member, "/nick guestname")
    assert member.take()[-1] == (
        "! guestname is not registered, and only registered users may chat here"
    )


def test_accounts_only_with_closed_registration(hubs: Hubs) -> None:
    chat = Chat(hubs, require_account=True, registration=False)
    hub, member = newcomer(chat)
    hubs.type(hub, member, "dora")
    assert member.take() == [
        "! dora is not registered, and only registered users may chat here",
        "? Choose a nickname:",
    ]


def test_a_busy_hasher_is_said_so(hubs: Hubs) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.quit("alice")
    hub, member = newcomer(chat)
    hasher = logins(hub).hasher
    assert isinstance(hasher, SyncHasher)
    hasher.busy = True
    hubs.type(hub, member, "alice", SECRET)
    assert member.take()[-2:] == [f"! {BUSY}", "? Choose a nickname:"]


@pytest.mark.parametrize("hubs", ["memory"], indirect=True)
def test_an_unreadable_store_refuses_names(hubs: Hubs) -> None:
    chat = Chat(hubs)
    hub, member = newcomer(chat)
    store: Any = logins(hub).store
    store._pool.failing = True
    hubs.type(hub, member, "carol")
    assert member.take() == [f"! {ACCOUNTS_UNAVAILABLE}", "? Choose a nickname:"]
    assert member.nick == ""


def test_lookups_share_trips_to_the_database_thread(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    prepare_state(str(path))
    real = SyncPool(path)
    held: list[tuple[Any, tuple[Any, ...], Deferred[Any]]] = []

    class HeldPool:
        """The database thread, answering only when told to."""

        def runInteraction(self, work: Any, *args: Any) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            held.append((work, args, d))
            return d

        def close(self) -> None:
            pass

    def answer() -> None:
        work, args, d = held.pop(0)
        real.runInteraction(work, *args).chainDeferred(d)

    accounts = SQLiteAccounts(HeldPool())
    writer = SQLiteAccounts(real)
    writer.add(Account("alice", "$argon2id$x", created=1.0))
    first = accounts.get("alice")
    assert len(held) == 1  # the first lookup goes at once
    waiting = [accounts.get(name) for name in ("bob", "ALICE", "carol")]
    assert len(held) == 1  # the rest wait for it
    answer()
    found: list[Any] = []
    first.addCallback(found.append)
    assert found[0].name == "alice"
    assert len(held) == 1  # then go together, in one read
    answer()
    results: list[Any] = []
    for d in waiting:
        d.addCallback(results.append)
    assert [r and r.name for r in results] == [None, "alice", None]
    assert held == []
