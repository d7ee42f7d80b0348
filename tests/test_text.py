from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twchat.text import clean_text

_FORBIDDEN = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | set(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class CleanTextTests(SynchronousTestCase):
    def test_plain_text_is_kept(self) -> None:
        for text in ["hello", "café 日本 🙂", "a <b> & 'c'", "  indented"]:
            self.assertEqual(clean_text(text), text)

    def test_terminal_escape_sequences_are_removed_whole(self) -> None:
        self.assertEqual(clean_text("\x1b[2Jhi"), "hi")
        self.assertEqual(clean_text("a\x1b]0;pwned\x07b"), "ab")
        self.assertEqual(clean_text("a\x1b]0;pwned\x1b\\b"), "ab")
        self.assertEqual(clean_text("\x1b[31mred\x1b[0m"), "red")
        self.assertEqual(clean_text("x\x1bcy"), "xy")

    def test_eight_bit_csi_is_removed(self) -> None:
        self.assertEqual(clean_text("a\x9b2Jb"), "ab")

    def test_controls_and_nul_are_removed(self) -> None:
        self.assertEqual(clean_text("a\x00b\x01c\x7fd\x85e"), "abcde")

    def test_bidi_controls_are_removed(self) -> None:
        self.assertEqual(clean_text("abc\u202edef\u2066g\u200fh"), "abcdefgh")

    def test_tabs_become_spaces_and_trailing_space_goes(self) -> None:
        self.assertEqual(clean_text("a\tb   "), "a b")

    @given(st.text())
    def test_nothing_forbidden_survives(self, text: str) -> None:
        cleaned = clean_text(text)
        self.assertFalse(_FORBIDDEN & set(cleaned), repr(cleaned))
        self.assertEqual(clean_text(cleaned), cleaned)
