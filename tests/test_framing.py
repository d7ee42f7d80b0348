from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twchat.transports.framing import TOO_LONG, LineSplitter


def feed_all(splitter: LineSplitter, *chunks: bytes) -> list[object]:
    out: list[object] = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    return out


class LineSplitterTests(SynchronousTestCase):
    def test_every_line_end_style(self) -> None:
        splitter = LineSplitter(100)
        self.assertEqual(
            splitter.feed(b"nc\ntelnet\r\nold mac\rlast"),
            [b"nc", b"telnet", b"old mac"],
        )
        self.assertEqual(splitter.feed(b"\n"), [b"last"])

    def test_crlf_split_across_chunks_is_one_line_end(self) -> None:
        splitter = LineSplitter(100)
        self.assertEqual(feed_all(splitter, b"one\r", b"\ntwo\r\n"), [b"one", b"two"])

    def test_empty_lines_are_kept(self) -> None:
        self.assertEqual(LineSplitter(10).feed(b"\n\r\n"), [b"", b""])

    def test_byte_by_byte(self) -> None:
        data = "héllo 🙂\r\nbye\n".encode()
        splitter = LineSplitter(100)
        out = feed_all(splitter, *(data[i : i + 1] for i in range(len(data))))
        self.assertEqual(out, ["héllo 🙂".encode(), b"bye"])

    def test_line_at_the_limit_passes_one_over_does_not(self) -> None:
        splitter = LineSplitter(5)
        self.assertEqual(
            splitter.feed(b"12345\n123456\nok\n"), [b"12345", TOO_LONG, b"ok"]
        )

    def test_runaway_line_reported_once_and_not_buffered(self) -> None:
        splitter = LineSplitter(512)
        out = feed_all(splitter, *[b"x" * 1000] * 16)
        self.assertEqual(out, [TOO_LONG])
        self.assertEqual(splitter.buffered, 0)
        # The rest of the long line is dropped; the next line is intact.
        self.assertEqual(splitter.feed(b"xxx\nnext\n"), [b"next"])

    @given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8))
    def test_any_split_gives_the_same_lines(self, data: bytes, cuts: list[int]) -> None:
        whole = LineSplitter(64).feed(data)
        points = sorted({min(c, len(data)) for c in cuts})
        bounds = zip([0, *points], [*points, len(data)], strict=True)
        chunks = [data[a:b] for a, b in bounds]
        splitter = LineSplitter(64)
        pieces = feed_all(splitter, *[c for c in chunks if c])
        # A lone trailing "\r" is a line end either way.
        self.assertEqual(pieces, whole)
        for line in pieces:
            if line is not TOO_LONG:
                assert isinstance(line, bytes)
                self.assertLessEqual(len(line), 64)
                self.assertNotIn(b"\n", line)
                self.assertNotIn(b"\r", line)
        self.assertLessEqual(splitter.buffered, 64)
