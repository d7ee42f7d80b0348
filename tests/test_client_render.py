from twisted.trial.unittest import SynchronousTestCase

from twchat.client.render import Kind, Line, classify, style_for


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
