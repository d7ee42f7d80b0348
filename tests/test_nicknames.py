from twisted.trial.unittest import SynchronousTestCase

from twchat.nicknames import MAX_NICK_LENGTH, nick_error, nick_key


class NickRulesTests(SynchronousTestCase):
    def test_ordinary_names_are_accepted(self) -> None:
        for nick in ["alice", "Bob", "x", "a1", "_under", "[b]", "{c}|^`", "z-9"]:
            self.assertIsNone(nick_error(nick), nick)

    def test_empty_is_refused_with_reason(self) -> None:
        self.assertEqual(nick_error(""), "nickname cannot be empty")

    def test_length_limit(self) -> None:
        self.assertIsNone(nick_error("a" * MAX_NICK_LENGTH))
        error = nick_error("a" * (MAX_NICK_LENGTH + 1))
        assert error is not None
        self.assertIn("too long", error)
        self.assertIn("24", error)

    def test_leading_digit_or_dash_refused(self) -> None:
        for nick in ["1abc", "-abc"]:
            error = nick_error(nick)
            assert error is not None
            self.assertIn("must not start with a digit or '-'", error)

    def test_characters_outside_the_set_are_named(self) -> None:
        self.assertIn("U+0020", nick_error("al ice") or "")
        self.assertIn("'!'", nick_error("alice!") or "")
        self.assertIn("'/'", nick_error("/nick") or "")

    def test_non_ascii_lookalikes_are_refused(self) -> None:
        # Cyrillic a, zero-width space, an accented letter, a control code.
        for nick in ["\u0430lice", "al\u200bice", "caf\u00e9", "bell\x07"]:
            error = nick_error(nick)
            assert error is not None, nick
            self.assertIn("U+", error)
            self.assertTrue(error.isascii() and error.isprintable(), error)

    def test_reserved_names_in_any_case(self) -> None:
        for nick in ["server", "SYSTEM", "Admin"]:
            self.assertIn("reserved", nick_error(nick) or "", nick)

    def test_key_ignores_case(self) -> None:
        self.assertEqual(nick_key("Alice"), nick_key("aLICE"))
        self.assertNotEqual(nick_key("alice"), nick_key("alice_"))
