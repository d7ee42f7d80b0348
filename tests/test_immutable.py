"""``@immutable``: values equal and hashed by value, and frozen to mypy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

from twisted.trial.unittest import TestCase

from twchat.backend import Profile
from twchat.config import ChatConfig
from twchat.events import Chat, Joined

ROOT = Path(__file__).resolve().parent.parent


class ImmutableTests(TestCase):
    def test_values_are_equal_and_hashed_by_value(self) -> None:
        self.assertEqual(Chat("alice", "hi", 3), Chat("alice", "hi", 3))
        self.assertNotEqual(Chat("alice", "hi", 3), Chat("alice", "hi", 4))
        self.assertEqual(len({Chat("alice", "hi"), Chat("alice", "hi")}), 1)
        self.assertNotEqual(Chat("alice", "hi"), Joined("alice", 1))

    def test_a_changed_copy_leaves_the_original_alone(self) -> None:
        first = Profile("alice", None, "127.0.0.1", False, 1.0)
        second = replace(first, room="games")
        self.assertEqual((first.room, second.room), ("", "games"))

    def test_values_are_slotted(self) -> None:
        # No per-instance dict: an event per line said stays small.
        self.assertFalse(hasattr(Chat("alice", "hi"), "__dict__"))

    def test_the_type_checker_refuses_a_change(self) -> None:
        # Plain at run time (see twchat/_immutable.py): mypy is the guard.
        source = textwrap.dedent(
            """
            from twchat.events import Chat
            line = Chat("alice", "hi")
            line.text = "changed"
            """
        )
        # From the project's root, with its mypy settings, as the gate runs.
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--cache-dir=/dev/null", "-c", source],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertIn(
            '<string>:4: error: Property "text" defined in "Chat" is read-only',
            done.stdout,
        )
        self.assertIn("Found 1 error", done.stdout)

    def test_configuration_is_still_frozen_at_run_time(self) -> None:
        config = ChatConfig()
        with self.assertRaises(FrozenInstanceError):
            config.max_clients = 1  # type: ignore[misc]
