"""Masks, durations and a room's moderation state as stored: unit rules."""

from __future__ import annotations

import json

import pytest

from twchat.events import Moderated
from twchat.jsonwire import render_json
from twchat.moderation.masks import (
    Identity,
    duration_text,
    parse_duration,
    parse_mask,
)
from twchat.moderation.state import Rules, Sanction, ban_field
from twchat.wire import render_line


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("7d", 604800), ("2w", 1209600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0m", "10", "m", "1.5h", "-1h", "10y", "1 h"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_durations_are_capped_and_shown_in_two_units() -> None:
    assert parse_duration("999999w") == 366 * 86400
    assert duration_text(90) == "1m 30s"
    assert duration_text(7200) == "2h"
    assert duration_text(90061) == "1d 1h"
    assert duration_text(0) == "0s"


def test_masks() -> None:
    alice = Identity("alice", "alice", "198.51.100.7")
    guest = Identity("guest", None, "2001:db8::5")
    account = parse_mask("account:Alice")
    assert account is not None
    assert account.text == "account:alice"
    assert account.matches(alice)
    assert not account.matches(guest)
    block = parse_mask("198.51.100.0/24")
    assert block is not None
    assert block.matches(alice)
    assert not block.matches(guest)
    six = parse_mask("2001:db8::/32")
    assert six is not None
    assert six.matches(guest)
    assert not six.matches(alice)
    one = parse_mask("198.51.100.7")
    assert one is not None
    assert one.text == "198.51.100.7"
    assert not one.matches(Identity("x", None, "not an address"))
    for text in ("alice", "account:", "300.1.1.1", "1.2.3.4/33"):
        assert parse_mask(text) is None


def test_changes_that_arrive_while_the_state_is_read_are_applied_after() -> None:
    mask = parse_mask("account:bob")
    assert mask is not None
    ban = Sanction(mask, None, "spam", "alice", 1.0)
    rules = Rules.loading()
    rules.apply([("modes", "m"), (ban_field(mask), ban.encode())])
    assert rules.modes == ""  # not yet: the stored state comes first
    rules.loaded({"founder": "alice", "modes": "t", "op:carol": "alice"})
    assert rules.founder == "alice"
    assert rules.ops == {"carol"}
    assert rules.modes == "m"
    assert rules.banned(Identity("bob", "bob", ""), 2.0) == ban
    rules.apply([(ban_field(mask), None), ("op:carol", None)])
    assert rules.banned(Identity("bob", "bob", ""), 2.0) is None
    assert rules.ops == set()


def test_a_garbled_stored_ban_is_ignored() -> None:
    rules = Rules.of({"ban:account:bob": "not json", "ban:nonsense": "{}"})
    assert rules.bans == {}


def test_moderation_on_both_wires() -> None:
    event = Moderated(
        "games", "ban", "alice", "account:bob", "spam", 7200, (("ban:x", "{}"),)
    )
    assert render_line(event) == (
        b"*** alice banned account:bob from #games for 2h: spam\r\n"
    )
    assert json.loads(render_json(event)) == {
        "type": "moderation",
        "room": "games",
        "action": "ban",
        "actor": "alice",
        "target": "account:bob",
        "reason": "spam",
        "duration": 7200,
        "text": "alice banned account:bob from #games for 2h: spam",
    }
