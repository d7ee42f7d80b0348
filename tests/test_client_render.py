from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from twchat.accounts import NOW_REGISTERED, PASSWORD_CHANGED, TAKEN_OVER
from twchat.client.render import Kind, Line, classify, style_for
from twchat.events import Moderated
from twchat.nicknames import TAKEN
from twchat.refused import TRY_AGAIN
from twchat.wire import (
    BANNED_FROM,
    BANNED_FROM_SERVER,
    DISCONNECTED_BY,
    IDLE_FOR,
    KICKED_FROM,
    render_line,
)

_ACTIONS = ["kick", "ban", "unban", "mute", "unmute", "kill"]


class ClassifyTests(SynchronousTestCase):
    def test_every_kind_of_server_line(self) -> None:
        cases = {
            "<alice> hi": Kind.CHAT,
            "* alice waves": Kind.ACTION,
            "*alice* psst": Kind.PRIVATE,
            "-> *bob* psst": Kind.PRIVATE_SENT,
            "*** bob joined (2 here)": Kind.NOTICE,
            "! no such user: carol": Kind.ERROR,
            "? Choose a nickname:": Kind.PROMPT,
            "[14:03] <alice> earlier": Kind.HISTORY,
        }
        for text, kind in cases.items():
            self.assertEqual(classify(text).kind, kind, text)

    def test_kicks_bans_and_mutes_are_their_own_kind(self) -> None:
        for action in _ACTIONS:
            event = Moderated("games", action, "olga", "bob", "why", 600)
            line = render_line(event).decode().rstrip("\r\n")
            self.assertEqual(classify(line).kind, Kind.MODERATION, line)
        for told in (
            "! you were kicked from #games by olga: why",
            "! you are banned from #games for 10m",
            "! you are muted in #games for 9m 59s",
            "! you were disconnected by olga",
            "! you are banned from this server",
        ):
            self.assertEqual(classify(told).kind, Kind.MODERATION, told)
        self.assertEqual(classify("<bob> I was kicked by a horse").kind, Kind.CHAT)
        self.assertNotEqual(style_for(classify(told)), "")

    def test_the_page_knows_the_servers_wording(self) -> None:
        app = Path(__file__).parent.parent / "twchat" / "static" / "app.js"
        text = app.read_text()
        for phrase in (
            KICKED_FROM,
            BANNED_FROM,
            BANNED_FROM_SERVER,
            DISCONNECTED_BY,
            IDLE_FOR,
            NOW_REGISTERED,
            TAKEN_OVER,
            PASSWORD_CHANGED,
            TAKEN,
            TRY_AGAIN,
        ):
            self.assertIn(f'"{phrase}"', text)

    def test_received_text_is_cleaned_for_the_terminal(self) -> None:
        line = classify("<mallory> \x1b]0;pwned\x07hi\x1b[2J \u202eevil\x9b31m")
        self.assertEqual(line.text, "<mallory> hi evil")

    def test_mentions_of_my_nick(self) -> None:
        self.assertTrue(classify("<bob> hey Alice, look", "alice").mentions_me)
        self.assertTrue(classify("* bob pokes alice", "alice").mentions_me)
        self.assertFalse(classify("<bob> malice aforethought", "alice").mentions_me)
        self.assertFalse(classify("<alice> my own name", "bob").mentions_me)
        self.assertFalse(classify("*** alice joined (2 here)", "alice").mentions_me)

    def test_styles(self) -> None:
        self.assertEqual(style_for(Line(Kind.ERROR, "! x")), "ansired bold")
        self.assertEqual(style_for(Line(Kind.CHAT, "<b> alice", True)), "reverse bold")

    def test_timestamps(self) -> None:
        line = Line(Kind.CHAT, "<a> hi")
        self.assertEqual(line.plain(), "<a> hi")
        self.assertRegex(line.plain(timestamps=True), r"^\[\d\d:\d\d\] <a> hi$")
