"""Tab completion in the terminal client: the names it saw, the commands."""

from __future__ import annotations

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from twisted.trial.unittest import SynchronousTestCase

from twchat.client.names import Names
from twchat.client.tty import TerminalUI, _Completer
from twchat.commands import _COMMANDS
from twchat.events import (
    Action,
    Chat,
    Event,
    HistoryLine,
    Joined,
    Left,
    NickChanged,
    Presence,
    Private,
    PrivateSent,
    RoomInfo,
    Topic,
    Welcome,
)
from twchat.help import COMMAND_NAMES
from twchat.text import clean_text
from twchat.wire import render_line

from .test_client_session import Connection, make


def heard(names: Names, *events: Event) -> None:
    """Each event as the server writes it, line by line."""
    for event in events:
        for line in render_line(event).decode().split("\r\n")[:-1]:
            names.heard(clean_text(line))


class NamesTests(SynchronousTestCase):
    def test_who_spoke_last_comes_first(self) -> None:
        names = Names()
        heard(
            names,
            Welcome("me", "lobby", 4, ("me", "bella", "bobby", "carl")),
            Chat("bobby", "hi"),
            Action("bella", "waves"),
        )
        self.assertEqual(names.complete("b", me="me"), ["bella", "bobby"])
        heard(names, Chat("bobby", "again"))
        self.assertEqual(names.complete("B", me="me"), ["bobby", "bella"])
        self.assertEqual(names.complete("", me="me"), ["bobby", "bella", "carl"])
        self.assertEqual(names.complete("me", me="ME"), [])  # never oneself
        self.assertEqual(names.complete("x"), [])

    def test_every_line_that_names_someone(self) -> None:
        cases: list[tuple[Event, str]] = [
            (Joined("ann", 2), "ann"),
            (Joined("ben", 3, came_from="games"), "ben"),
            (Private("cat", "psst"), "cat"),
            (PrivateSent("dan", "psst"), "dan"),
            (HistoryLine("lobby", 1.0, "chat", "eve", "old"), "eve"),
            (HistoryLine("lobby", 1.0, "action", "fay", "old"), "fay"),
            (HistoryLine("lobby", 1.0, "topic", "gus", "cats"), "gus"),
            (Topic("lobby", "cats", setter="hal"), "hal"),
            (RoomInfo("games", 2, ("ivy", "jon")), "jon"),
        ]
        for event, name in cases:
            names = Names()
            heard(names, event)
            self.assertIn(name, names.complete(name[0]), event)

    def test_lines_that_only_look_like_names(self) -> None:
        names = Names()
        heard(
            names,
            Chat("ann", "*** bob joined (2 here)"),  # words, not a join
            Chat("ann", "<carl> is not speaking"),
            Left("dan", 1),
            Presence(2, ("eve", "fay"), 1, ("gus",), 3),
        )
        self.assertEqual(names.complete(""), ["ann", "eve", "fay"])

    def test_a_rename_follows_the_person(self) -> None:
        names = Names()
        heard(names, Chat("bob", "hi"), Chat("ann", "hello"))
        heard(names, NickChanged("bob", "Robert"))
        self.assertEqual(names.complete(""), ["Robert", "ann"])

    def test_a_long_roll_call_over_several_lines(self) -> None:
        everyone = tuple(f"user{n:03}" for n in range(120))
        names = Names()
        heard(names, RoomInfo("lobby", 130, everyone))
        self.assertEqual(sorted(names.complete("user")), list(everyone))
        # "and 10 more (/who lists everyone)" names nobody.
        names = Names()
        heard(names, Welcome("me", "lobby", 130, everyone[:30]))
        self.assertEqual(names.complete("user02")[-1], "user029")
        self.assertEqual(len(names.complete("")), 30)

    def test_at_most_keep_names(self) -> None:
        names = Names(keep=3)
        heard(names, *(Chat(f"u{n}", "hi") for n in range(5)))
        self.assertEqual(names.complete("u"), ["u4", "u3", "u2"])


class CompleterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.session, _, _ = make(nick="me")
        self.conn = Connection(self.session)
        self.conn.server(
            "? Choose a nickname:",
            "@#lobby *** Welcome, me! #lobby has 3 users: me, bella, bobby",
            "<bobby> hi",
        )
        self.ui = TerminalUI(color=False)
        self.ui.session = self.session

    def complete(self, before: str) -> list[str]:
        found = _Completer(self.ui).get_completions(
            Document(before), CompleteEvent(completion_requested=True)
        )
        return [before[: len(before) + c.start_position] + c.text for c in found]

    def test_a_name_at_the_start_is_addressed(self) -> None:
        self.assertEqual(self.complete("b"), ["bobby: ", "bella: "])
        self.assertEqual(self.complete("hi B"), ["hi bobby ", "hi bella "])
        self.assertEqual(self.complete("/msg bel"), ["/msg bella "])
        self.assertEqual(self.complete("hi "), [])  # no word: nothing

    def test_commands_first_word_only(self) -> None:
        self.assertEqual(self.complete("/mu"), ["/mute ", "/mutes "])
        self.assertEqual(self.complete("/WHO"), ["/who ", "/whois "])
        self.assertEqual(self.complete("//mu"), [])  # a line starting with /
        self.assertEqual(self.complete("/join b"), [])  # a room, not a person
        self.assertEqual(self.complete("/who b"), [])

    def test_nothing_while_a_password_is_typed(self) -> None:
        self.ui.asking_password = True
        self.assertEqual(self.complete("b"), [])

    def test_the_help_names_every_command(self) -> None:
        hidden = {"ids", "resume"}  # for clients, before the nickname
        self.assertEqual(set(COMMAND_NAMES), set(_COMMANDS) - hidden)
