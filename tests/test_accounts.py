"""
Accounts, as users see them: the same lines on every backend (one
process, one Redis node, users spread over two Redis nodes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.python.failure import Failure

from twchat.accounts import Account
from twchat.accounts.logins import Logins
from twchat.accounts.sqlite import NAMES_FRESH, SQLiteAccounts, operations
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
    # The password again, not a nickname: typed once more at a nickname
    # prompt, a password would become a name everyone sees.
    assert member.take() == ["! wrong password for alice", "? Password for alice:"]
    assert member.nick == ""
    hubs.type(hub, member, SECRET)
    hubs.settle()
    assert member.nick == "alice"  # as registered, whatever was typed
    assert member.take()[0] == "*** Welcome, alice! #lobby has 1 user: alice"
    assert hub.account_of(member) is not None


def test_new_accounts_and_password_checks_are_counted(hubs: Hubs) -> None:
    # What --metrics reports (twchat_accounts_created, ..._password_checks).
    chat = Chat(hubs)
    registered(chat, "alice")
    assert sum(node.stats.accounts_created for node in chat.nodes) == 1
    chat.quit("alice")
    hub, member = newcomer(chat)
    hubs.type(hub, member, "alice", "not it", SECRET)
    hubs.settle()
    assert member.nick == "alice"
    assert hub.stats.password_checks == {"wrong": 1, "ok": 1}
    chat.users["alice"] = (hub, member)
    member.take()
    chat.type("alice", f"/password {SECRET} another-secret")
    assert chat.read("alice") == ["*** your password has been changed"]
    assert hub.stats.password_checks == {"wrong": 1, "ok": 2}


def test_after_a_wrong_password_an_empty_line_takes_the_name_back(
    hubs: Hubs,
) -> None:
    chat = Chat(hubs)
    registered(chat, "alice")
    chat.quit("alice")
    hub, member = newcomer(chat)
    hubs.type(hub, member, "alice", "not the password", "")
    assert member.take() == [
        "? Password for alice:",
        "! wrong password for alice",
        "? Password for alice:",
        "? Choose a nickname:",
    ]
    hubs.type(hub, member, "carol")
    assert member.nick == "carol"
    assert hub.account_of(member) is None


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
        "? Password for alice:",
    ]
    hubs.type(hub, member, "new-password")
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
    chat.type("zed", "/nick alice", "")  # an empty line takes it back
    assert chat.read("zed") == [
        "? Password for alice:",
        "*** no password given: you are still zed",
    ]
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
    hubs.type(hub, member, "alice")
    for _ in range(4):  # three free failures, then a one-second lock
        hubs.type(hub, member, "guess guess")
    hasher = logins(hub).hasher
    assert isinstance(hasher, SyncHasher)
    checked = hasher.runs
    hubs.type(hub, member, SECRET)
    assert member.take()[-2:] == [
        "! too many failed logins for alice; try again in 1 second",
        "? Password for alice:",  # asked again: the lock is short at first
    ]
    assert hasher.runs == checked  # refused without checking anything
    assert hub.stats.password_checks["locked"] == 1
    # The same address is slowed down on other accounts too.
    registered(chat, "bob")
    chat.quit("bob")
    checked = hasher.runs
    hubs.type(hub, member, "", "bob", SECRET)
    assert member.take()[-2:] == [
        "! too many failed logins from your address; try again in 1 second",
        "? Password for bob:",
    ]
    assert hasher.runs == checked
    assert hub.stats.password_checks["locked"] == 2


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
        hubs.type(hub, member, "alice", "hunter9-guess", "hunter3-secret")
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
    assert member.take()[:2] == [
        "*** dora is now registered; next time you will be asked for its password",
        "*** Welcome, dora! #lobby has 1 user: dora",
    ]
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
    assert member.take()[-2:] == [f"! {BUSY}", "? Password for alice:"]
    hasher.busy = False
    hubs.type(hub, member, SECRET)
    hubs.settle()
    assert member.nick == "alice"


@pytest.mark.parametrize("hubs", ["memory"], indirect=True)
def test_an_unreadable_store_refuses_names(hubs: Hubs) -> None:
    chat = Chat(hubs)
    hub, member = newcomer(chat)
    store: Any = logins(hub).store
    store._pool.failing = True
    hubs.type(hub, member, "carol")
    assert member.take() == [f"! {ACCOUNTS_UNAVAILABLE}", "? Choose a nickname:"]
    assert member.nick == ""


class _HeldPool:
    """The database thread, answering only when told to."""

    def __init__(self, real: SyncPool) -> None:
        self.real = real
        self.held: list[tuple[Any, tuple[Any, ...], Deferred[Any]]] = []

    def runInteraction(self, work: Any, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.held.append((work, args, d))
        return d

    def answer(self) -> None:
        work, args, d = self.held.pop(0)
        self.real.runInteraction(work, *args).chainDeferred(d)

    def close(self) -> None:
        pass


def _state(tmp_path: Path) -> Path:
    path = tmp_path / "state.sqlite3"
    prepare_state(str(path))
    return path


def _found(d: Deferred[Account | None]) -> str | None:
    got: list[Account | None] = []
    d.addCallback(got.append)
    assert got, "answered"
    return None if got[0] is None else got[0].name


def test_lookups_share_trips_to_the_database_thread(tmp_path: Path) -> None:
    path = _state(tmp_path)
    real = SyncPool(path)
    pool = _HeldPool(real)
    accounts = SQLiteAccounts(pool, Clock())
    writer = SQLiteAccounts(real, Clock())
    writer.add(Account("alice", "$argon2id$x", created=1.0))
    first = accounts.get("alice")
    # The set of names is asked for, and the first lookup goes at once.
    assert len(pool.held) == 2
    waiting = [accounts.get(name) for name in ("bob", "ALICE", "carol")]
    assert len(pool.held) == 2  # the rest wait for it
    pool.answer()  # the set of names
    pool.answer()
    assert _found(first) == "alice"
    assert len(pool.held) == 1  # then go together, in one read
    pool.answer()
    assert [_found(d) for d in waiting] == [None, "alice", None]
    assert pool.held == []


def test_guest_names_are_answered_without_a_trip_once_names_are_known(
    tmp_path: Path,
) -> None:
    path = _state(tmp_path)
    pool = _HeldPool(SyncPool(path))
    SQLiteAccounts(pool.real, Clock()).add(Account("alice", "$argon2id$x", created=1.0))
    clock = Clock()
    accounts = SQLiteAccounts(pool, clock)
    accounts.get("nobody")
    pool.answer()  # the set of names
    pool.answer()
    guests = [accounts.get(f"guest{i}") for i in range(100)]
    assert pool.held == [], "no guest's name went to the database thread"
    assert all(_found(d) is None for d in guests)
    # An account's name is still read, for its password.
    alice = accounts.get("Alice")
    assert len(pool.held) == 1
    pool.answer()
    assert _found(alice) == "alice"
    # Half the freshness on, the set is read again, while it still answers.
    clock.advance(NAMES_FRESH / 2)
    assert _found(accounts.get("guest")) is None
    assert len(pool.held) == 1
    pool.answer()
    clock.advance(NAMES_FRESH / 2)
    assert _found(accounts.get("guest")) is None, "read again: fresh"


def test_an_account_the_admin_tool_adds_is_known_within_a_second(
    tmp_path: Path,
) -> None:
    path = _state(tmp_path)
    clock = Clock()
    accounts = SQLiteAccounts(SyncPool(path), clock)
    assert _found(accounts.get("bob")) is None
    # The admin tool: its own connection to the file.
    assert _found(SQLiteAccounts(SyncPool(path), Clock()).get("bob")) is None
    admin = SyncPool(path)
    admin.runInteraction(operations["add"], Account("bob", "$argon2id$x", created=1.0))
    clock.advance(NAMES_FRESH / 2)
    assert _found(accounts.get("bob")) == "bob"
    # Removed by the admin tool: read from the file, so gone at once.
    admin.runInteraction(operations["remove"], "bob")
    assert _found(accounts.get("bob")) is None


def test_accounts_this_server_adds_or_removes_are_known_at_once(
    tmp_path: Path,
) -> None:
    path = _state(tmp_path)
    accounts = SQLiteAccounts(SyncPool(path), Clock())
    assert _found(accounts.get("carol")) is None  # the set is read
    accounts.add(Account("carol", "$argon2id$x", created=1.0))
    assert _found(accounts.get("CAROL")) == "carol"
    accounts.remove("carol")
    assert _found(accounts.get("carol")) is None


def test_names_are_read_from_the_file_when_the_set_cannot_be(tmp_path: Path) -> None:
    clock = Clock()
    pool = _HeldPool(SyncPool(_state(tmp_path)))
    accounts = SQLiteAccounts(pool, clock)
    accounts.get("dave")
    pool.answer()  # the set of names
    pool.answer()
    pool.real.failing = True
    clock.advance(NAMES_FRESH)
    failed: list[Failure] = []
    accounts.get("dave").addErrback(failed.append)
    pool.answer()  # the set of names, again: it fails
    pool.answer()
    assert failed, "not answered from a set it could not read again"
    pool.real.failing = False
    accounts.get("dave")
    pool.answer()  # read whole again, though nobody else changed the file
    pool.answer()
    guests = [accounts.get(f"guest{i}") for i in range(10)]
    assert pool.held == [], "answered from the set again"
    assert all(_found(d) is None for d in guests)
