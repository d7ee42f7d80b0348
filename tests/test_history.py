"""History: group commits, replay without a seam, retention, migrations, failures."""

from __future__ import annotations

import gc
import re
import sqlite3
from pathlib import Path
from typing import Any, cast

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twchat.config import ChatConfig
from twchat.history import COMMIT_INTERVAL, COMMIT_ROWS, History
from twchat.server import ChatServer
from twchat.statefile import MIGRATIONS, SCHEMA_VERSION
from twchat.statefile import prepare_state as prepare_history

from .support.fakes import FakeUser, SyncPool, register, room


def stored(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT room, seq, kind, sender, text FROM messages ORDER BY room, seq"
        ).fetchall()


class HistoryStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        prepare_history(str(self.path))  # creates the schema
        self.clock = Clock()
        self.pool = SyncPool(self.path)
        self.history = History(self.clock, self.pool, keep=5)
        for name in ("lobby", "games"):
            self.successResultOf(self.history.load(name))

    def test_lines_are_written_in_one_group_per_interval(self) -> None:
        self.history.record("lobby", "chat", "alice", "one")
        self.history.record("lobby", "action", "alice", "waves")
        self.history.record("games", "chat", "bob", "gg")
        self.assertEqual(stored(self.path), [])
        self.clock.advance(COMMIT_INTERVAL)
        self.assertEqual(
            stored(self.path),
            [
                ("games", 1, "chat", "bob", "gg"),
                ("lobby", 1, "chat", "alice", "one"),
                ("lobby", 2, "action", "alice", "waves"),
            ],
        )

    def test_any_text_round_trips(self) -> None:
        text = 'café ☕ 日本 "quoted" \\ back\\slash [1, 2] {} \u2028'
        self.history.record("lobby", "chat", "a", text)
        self.clock.advance(COMMIT_INTERVAL)
        self.assertEqual(stored(self.path), [("lobby", 1, "chat", "a", text)])

    def test_a_separator_in_a_field_cannot_shift_the_row(self) -> None:
        # The hub's clean text never holds one; History must not trust that.
        self.history.record("lobby", "chat", "a", "one\x1ftwo")
        self.history.record("lobby", "chat", "b", "after")
        self.clock.advance(COMMIT_INTERVAL)
        self.assertEqual(
            stored(self.path),
            [("lobby", 1, "chat", "a", "one two"), ("lobby", 2, "chat", "b", "after")],
        )

    def test_a_line_is_timed_by_the_first_of_its_interval(self) -> None:
        self.clock.advance(1_763_800_000.1234)
        first = self.clock.seconds()
        self.history.record("lobby", "chat", "a", "when")
        self.clock.advance(COMMIT_INTERVAL / 2)
        self.history.record("lobby", "chat", "a", "soon after")
        self.clock.advance(COMMIT_INTERVAL / 2)
        second = self.clock.seconds()
        self.history.record("lobby", "chat", "a", "next interval")
        self.clock.advance(COMMIT_INTERVAL)
        with sqlite3.connect(self.path) as connection:
            times = connection.execute(
                "SELECT ts FROM messages ORDER BY seq"
            ).fetchall()
        self.assertEqual(times, [(first,), (first,), (second,)])
        self.assertEqual(
            [e.ts for e in self.history.recent("lobby", 3)], [first, first, second]
        )

    def test_recording_leaves_the_garbage_collector_nothing_per_line(self) -> None:
        # A container per line, kept until the commit, would bring young
        # collections and, in a busy room, full ones (25 ms each).
        self.history.record("lobby", "chat", "a", "opens the batch")
        lines = 1000
        gc.disable()
        try:
            before = gc.get_count()[0]
            for i in range(lines):
                self.history.record("lobby", "chat", "a", str(i))
            added = gc.get_count()[0] - before
        finally:
            gc.enable()
        self.assertLess(added, lines // 10)

    def test_a_busy_rooms_tail_holds_keep_lines_after_a_commit(self) -> None:
        for i in range(1000):
            self.assertEqual(self.history.record("lobby", "chat", "a", str(i)), i + 1)
        self.assertEqual(
            [(e.seq, e.text) for e in self.history.recent("lobby", 3)],
            [(998, "997"), (999, "998"), (1000, "999")],
        )
        self.clock.advance(COMMIT_INTERVAL)
        self.assertEqual(len(stored(self.path)), 1000)
        self.assertEqual(sum(b.lines for b in self.history._tails["lobby"]), 5)
        self.history.record("lobby", "chat", "a", "after")
        self.assertEqual(
            [(e.seq, e.text) for e in self.history.recent("lobby", 5)],
            [(997, "996"), (998, "997"), (999, "998"), (1000, "999"), (1001, "after")],
        )

    def test_many_lines_commit_before_the_interval(self) -> None:
        for i in range(COMMIT_ROWS):
            self.history.record("lobby", "chat", "a", str(i))
        self.assertEqual(len(stored(self.path)), COMMIT_ROWS)

    def test_recent_is_bounded_and_in_order(self) -> None:
        for i in range(8):
            self.history.record("lobby", "chat", "a", str(i))
        self.assertEqual(
            [e.text for e in self.history.recent("lobby", 3)], ["5", "6", "7"]
        )
        self.assertEqual(len(self.history.recent("lobby", 50)), 5)
        self.assertEqual(self.history.recent("nowhere", 5), [])

    def test_a_tail_is_read_across_commits_with_its_oldest_topic(self) -> None:
        self.history.record_topic("lobby", "op", "long ago")
        for i in range(3):
            for j in range(3):
                self.history.record("lobby", "chat", "a", f"{i}.{j}")
            self.clock.advance(COMMIT_INTERVAL)  # one row per commit
        self.assertEqual(len(stored(self.path)), 10)
        again = History(self.clock, SyncPool(self.path), keep=4)
        self.successResultOf(again.load("lobby"))
        self.assertEqual(
            [(e.seq, e.text) for e in again.recent("lobby", 10)],
            [(7, "1.2"), (8, "2.0"), (9, "2.1"), (10, "2.2")],
        )
        self.assertEqual(again.topic("lobby"), "long ago")
        self.assertEqual(again.record("lobby", "chat", "a", "next"), 11)

    def test_a_restart_picks_up_where_it_left(self) -> None:
        for i in range(7):
            self.history.record("lobby", "chat", "a", str(i))
        self.successResultOf(self.history.close())
        self.assertFalse(self.pool.closed)  # the state file's opener closes it
        again = History(self.clock, SyncPool(self.path), 3)
        self.successResultOf(again.load("lobby"))
        self.assertEqual([e.text for e in again.recent("lobby", 5)], ["4", "5", "6"])
        self.assertEqual(again.record("lobby", "chat", "a", "next"), 8)

    def test_only_live_rooms_and_a_few_more_stay_in_memory(self) -> None:
        history = History(self.clock, self.pool, keep=5, cached=2)
        for i in range(6):
            name = f"room{i}"
            self.successResultOf(history.load(name))
            history.retain(name)
            history.record(name, "chat", "a", f"said in {name}")
            history.release(name)
        self.assertEqual(history.rooms_in_memory, 2)
        self.assertEqual(history.recent("room0", 5), [])
        self.assertEqual(history.recent("room5", 5)[0].text, "said in room5")
        # A room that comes back finds its past, including lines still
        # waiting for their commit.
        self.successResultOf(history.load("room0"))
        self.assertEqual(
            [e.text for e in history.recent("room0", 5)], ["said in room0"]
        )
        self.assertEqual(history.record("room0", "chat", "a", "again"), 2)
        # Live rooms are never dropped, however many others come and go.
        history.retain("room0")
        for i in range(10, 20):
            self.successResultOf(history.load(f"room{i}"))
        self.assertEqual(len(history.recent("room0", 5)), 2)
        self.assertEqual(history.rooms_in_memory, 3)

    def test_keeping_no_lines_in_memory_still_writes_them(self) -> None:
        history = History(self.clock, self.pool, keep=0)
        self.successResultOf(history.load("lobby"))
        self.assertEqual(history.record("lobby", "chat", "a", "one"), 1)
        self.clock.advance(COMMIT_INTERVAL)
        self.assertEqual(history.recent("lobby", 5), [])
        self.assertEqual(history.record("lobby", "chat", "a", "two"), 2)
        self.clock.advance(COMMIT_INTERVAL)
        self.assertEqual(len(stored(self.path)), 2)

    def test_a_room_dropped_from_memory_before_its_commit_is_written(self) -> None:
        history = History(self.clock, self.pool, keep=5, cached=1)
        self.successResultOf(history.load("lobby"))
        history.record("lobby", "chat", "a", "said just before leaving")
        history.release("lobby")
        self.successResultOf(history.load("games"))  # pushes lobby out
        self.assertEqual(history.recent("lobby", 5), [])
        self.clock.advance(COMMIT_INTERVAL)
        self.assertEqual(
            stored(self.path), [("lobby", 1, "chat", "a", "said just before leaving")]
        )
        self.successResultOf(history.load("lobby"))
        self.assertEqual(history.record("lobby", "chat", "a", "back"), 2)

    def test_a_room_whose_past_cannot_be_read_keeps_its_lines_in_memory(
        self,
    ) -> None:
        self.pool.failing = True
        history = History(self.clock, self.pool, keep=5)
        self.successResultOf(history.load("lost"))
        self.assertFalse(history.available)
        self.assertEqual(history.record("lost", "chat", "a", "hi"), 0)
        self.assertEqual([e.text for e in history.recent("lost", 5)], ["hi"])
        self.pool.failing = False
        history.commit()
        self.assertEqual(stored(self.path), [])

    def test_failures_make_history_unavailable_and_are_logged_once(self) -> None:
        errors: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if "history unavailable" in event.get("log_format", ""):
                errors.append(event)

        observer = cast(ILogObserver, observe)  # zope adapts a function
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.pool.failing = True
        for _ in range(5):
            self.history.record("lobby", "chat", "a", "x")
            self.clock.advance(COMMIT_INTERVAL)
        self.assertFalse(self.history.available)
        self.assertEqual(len(errors), 1)
        self.pool.failing = False
        self.history.record("lobby", "chat", "a", "back")
        self.clock.advance(COMMIT_INTERVAL)
        self.assertTrue(self.history.available)

    def test_retention_by_age_and_rows(self) -> None:
        history = History(self.clock, self.pool, keep=5, max_age=60, max_rows=3)
        self.successResultOf(history.load("lobby"))
        for i in range(5):
            history.record("lobby", "chat", "a", f"old {i}")
        self.clock.advance(100)
        for i in range(4):
            history.record("lobby", "chat", "a", f"new {i}")
        history.commit()
        self.successResultOf(history.prune())
        self.assertEqual(
            [row[4] for row in stored(self.path)], ["new 1", "new 2", "new 3"]
        )


class SchemaTests(SynchronousTestCase):
    def test_migrates_an_older_schema_keeping_the_data(self) -> None:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as connection:
            for statement in MIGRATIONS[1]:
                connection.execute(statement)
            connection.execute("PRAGMA user_version = 1")
            connection.executemany(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                [
                    ("lobby", 1, 0.0, "topic", "op", "first topic"),
                    ("lobby", 2, 1.5, "chat", "old", "kept"),
                    ("lobby", 3, 2.25, "topic", "op", "last topic"),
                    ("games", 1, 3.0, "action", "bob", "waves"),
                ],
            )
        prepare_history(str(path))
        history = History(Clock(), SyncPool(path), keep=10)
        self.successResultOf(history.load("lobby"))
        self.assertEqual(
            [(e.seq, e.ts, e.text) for e in history.recent("lobby", 10)],
            [(1, 0.0, "first topic"), (2, 1.5, "kept"), (3, 2.25, "last topic")],
        )
        self.assertEqual(history.topic("lobby"), "last topic")
        self.assertEqual(history.record("lobby", "chat", "new", "next"), 4)
        history.commit()
        self.assertEqual(
            stored(path),
            [
                ("games", 1, "action", "bob", "waves"),
                ("lobby", 1, "topic", "op", "first topic"),
                ("lobby", 2, "chat", "old", "kept"),
                ("lobby", 3, "topic", "op", "last topic"),
                ("lobby", 4, "chat", "new", "next"),
            ],
        )
        with sqlite3.connect(path) as connection:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            indexes = connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
            ).fetchall()
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        self.assertEqual(version, SCHEMA_VERSION)
        self.assertIn(("history_ts",), indexes)
        self.assertEqual(mode, "wal")

    def test_rows_of_five_fields_a_line_become_rows_of_three(self) -> None:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as connection:
            for version in range(1, 7):
                for statement in MIGRATIONS[version]:
                    connection.execute(statement)
            connection.execute("PRAGMA user_version = 6")
            connection.executemany(
                "INSERT INTO history VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        "lobby",
                        1,
                        2,
                        1.25,
                        '[[1,1000,"chat","a","x"],[2,1250,"chat","b","y"]]',
                    ),
                    ("lobby", 3, 3, 2.5, '[[3,2500,"action","a","waves \\"hi\\""]]'),
                ],
            )
        prepare_history(str(path))
        self.assertEqual(
            stored(path),
            [
                ("lobby", 1, "chat", "a", "x"),
                ("lobby", 2, "chat", "b", "y"),
                ("lobby", 3, "action", "a", 'waves "hi"'),
            ],
        )
        history = History(Clock(), SyncPool(path), keep=10)
        self.successResultOf(history.load("lobby"))
        self.assertEqual(
            [(e.seq, e.ts, e.kind, e.text) for e in history.recent("lobby", 10)],
            [
                (1, 1.0, "chat", "x"),
                (2, 1.0, "chat", "y"),
                (3, 2.5, "action", 'waves "hi"'),
            ],
        )
        self.assertEqual(history.record("lobby", "chat", "c", "next"), 4)


_STAMP = r"\[(\d{4}-\d\d-\d\d )?\d\d:\d\d\] "


class ReplayTests(SynchronousTestCase):
    """What users see: replay on entering a room, /history, the seam."""

    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        prepare_history(str(self.path))
        self.clock = Clock()
        self.history = History(self.clock, SyncPool(self.path), keep=100)
        self.server = ChatServer(
            self.clock, ChatConfig(flood_rate=0, history_replay=3), history=self.history
        )
        self.server.start()
        (self.alice,) = room(self.server, "alice")

    def newcomer(self, nick: str) -> list[str]:
        user = FakeUser(self.server)
        user.read()
        user.send(nick)
        return user.read()

    def test_newcomers_get_the_last_lines_then_the_live_stream(self) -> None:
        self.alice.send(*[f"line {i}" for i in range(5)], "/me waves")
        lines = self.newcomer("bob")
        self.assertTrue(lines[0].startswith("*** Welcome, bob!"))
        history = lines[1:]
        self.assertEqual(len(history), 3)
        for line, text in zip(
            history, ["<alice> line 3", "<alice> line 4", "* alice waves"], strict=True
        ):
            self.assertRegex(line, _STAMP + re.escape(text) + "$")

    def test_the_seam_under_traffic(self) -> None:
        server = ChatServer(
            self.clock,
            ChatConfig(flood_rate=0, history_replay=20),
            history=self.history,
        )
        server.start()
        (talker,) = room(server, "talker")
        talker.send(*[f"m{i}" for i in range(30)])
        joiner = FakeUser(server)
        joiner.read()
        # The nickname and more lines from the talker in the same turn.
        joiner.send("joiner")
        talker.send(*[f"m{i}" for i in range(30, 40)])
        seen = [line for line in joiner.read() if "<talker>" in line]
        texts = [line.rsplit(" ", 1)[1] for line in seen]
        self.assertEqual(texts, [f"m{i}" for i in range(10, 40)])  # 20 + 10 live
        self.assertTrue(all(re.match(_STAMP, line) for line in seen[:20]))
        self.assertFalse(any(re.match(_STAMP, line) for line in seen[20:]))

    def test_history_command(self) -> None:
        self.alice.send(*[f"n{i}" for i in range(6)])
        self.alice.send("/history 2")
        lines = self.alice.read()
        self.assertEqual(len(lines), 2)
        self.assertRegex(lines[1], _STAMP + "<alice> n5$")
        self.alice.send("/history")  # the default: --history-replay
        self.assertEqual(len(self.alice.read()), 3)
        self.alice.send("/history 1000")  # capped at what is kept
        self.assertEqual(len(self.alice.read()), 6)
        self.alice.send("/history many")
        self.assertEqual(self.alice.read(), ["! usage: /history [N]"])

    def test_private_messages_are_not_stored(self) -> None:
        register(self.server, "bob")
        self.alice.send("/msg bob secret", "public")
        self.history.commit()
        self.assertEqual(stored(self.path), [("lobby", 1, "chat", "alice", "public")])

    def test_joining_a_room_replays_its_history(self) -> None:
        self.alice.send("/join games", "in games", "/topic chess")
        self.alice.send("/part")
        self.alice.read()
        self.alice.send("/join games")
        lines = self.alice.read()
        # The room went away when it emptied; its history did not, and its
        # topic comes back with it.
        self.assertEqual(len(lines), 4)
        self.assertEqual(lines[0], "*** #games has 1 user: alice")
        self.assertEqual(lines[1], "*** Topic of #games: chess")
        self.assertRegex(lines[2], _STAMP + "<alice> in games$")
        self.assertRegex(
            lines[3], _STAMP + r"\*\*\* alice set the topic of #games: chess$"
        )

    def test_unavailable_history(self) -> None:
        self.history._failing = True
        self.alice.send("/history")
        self.assertEqual(self.alice.read(), ["! history is unavailable right now"])
        self.alice.send("still chatting")  # chat goes on

    def test_no_history_at_all(self) -> None:
        server = ChatServer(self.clock, ChatConfig(flood_rate=0))
        (user,) = room(server, "user")
        user.send("/history")
        self.assertEqual(user.read(), ["! history is turned off on this server"])
