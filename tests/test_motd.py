"""The message of the day: read, shown on arriving and by /motd, SIGHUP."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from twchat.events import Motd
from twchat.jsonwire import render_json
from twchat.motd import MAX_LINES, MotdError, parse_motd
from twchat.wire import render_line

from .support.net import free_port
from .support.proc import Twistd, at_prompt, run, twistd_path


class ParseTests(SynchronousTestCase):
    def test_lines_cleaned_and_blank_ends_dropped(self) -> None:
        data = "\ufeff\n\nWelcome!\r\n\n\x1b[31mNo\tspam.\x07\n  indented\n\n".encode()
        self.assertEqual(parse_motd(data), ("Welcome!", "", "No spam.", "  indented"))
        self.assertEqual(parse_motd(b"\n \n"), ())  # blank: no message

    def test_what_cannot_be_a_message_of_the_day(self) -> None:
        for data, error in [
            (b"caf\xe9\n", "not UTF-8 text (byte 3)"),
            (b"x\n" * (MAX_LINES + 1), f"{MAX_LINES + 1} lines; at most {MAX_LINES}"),
            (b"ok\n" + b"y" * 401, "line 2 is longer than 400 characters"),
        ]:
            with self.assertRaises(MotdError) as caught:
                parse_motd(data)
            self.assertEqual(str(caught.exception), error)

    def test_on_both_wires(self) -> None:
        event = Motd(("Be kind.", "", "https://chat.example/rules"))
        self.assertEqual(
            render_line(event),
            b"*** Message of the day:\r\n***   Be kind.\r\n***\r\n"
            b"***   https://chat.example/rules\r\n",
        )
        self.assertEqual(
            json.loads(render_json(event)),
            {"type": "motd", "lines": ["Be kind.", "", "https://chat.example/rules"]},
        )


def test_shown_on_arriving_and_by_motd_and_read_again_on_sighup(
    tmp_path: Path,
) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_text("Be kind.\nNo spam.\n")
    port = free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1", "--motd", str(motd)]
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        ann = at_prompt(port)
        ann.send("ann")
        assert ann.until("***   No spam.") == [
            "*** Welcome, ann! #lobby has 1 user: ann",
            "*** Message of the day:",
            "***   Be kind.",
            "***   No spam.",
        ]
        motd.write_text("Be kinder.\n")
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_log("reloaded the message of the day")
        ann.send("/motd")
        assert ann.until("***   Be kinder.") == [
            "*** Message of the day:",
            "***   Be kinder.",
        ]
        # A broken file keeps the message in use and says why.
        motd.write_bytes(b"\xff\xfe broken")
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_log("could not reload the message of the day")
        # A client back after a lost connection is not shown it again.
        bob = at_prompt(port)
        bob.send("/resume lobby 0")
        bob.send("bob")
        assert bob.line().startswith("*** Welcome, bob!")
        bob.send("/who")
        assert bob.line() == "*** #lobby has 2 users: ann, bob"  # no message
        assert server.process.poll() is None


def test_without_one(twistd: tuple[int, Twistd]) -> None:
    port, _ = twistd
    cal = at_prompt(port)
    cal.send("cal")
    assert cal.line().startswith("*** Welcome, cal!")
    cal.send("/motd")
    assert cal.line() == "*** This server has no message of the day"


def test_a_missing_file_stops_the_start_in_one_line(tmp_path: Path) -> None:
    done = run(
        twistd_path(),
        "-n",
        "--pidfile=",
        "chat",
        "--port",
        f"tcp:{free_port()}:interface=127.0.0.1",
        "--motd",
        "/nonexistent/motd.txt",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stdout + done.stderr == (
        "twistd chat: --motd /nonexistent/motd.txt: cannot read it: "
        "No such file or directory\n"
    )
