"""
README's nc session, replayed against the real server: the documentation
cannot drift from what a user sees.

The README block is carol's terminal: lines with a server marker are what
she receives, the others what she types. The other people in it act at
the moments the hooks below say, as the story needs them to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .support.proc import Twistd, User, guest

README = Path(__file__).parent.parent / "README.md"

#: How every line the server sends begins (README's transcripts mark them so).
_RECEIVED = ("***", "?", "!", "<", "*", "-> ", "[")
#: History lines carry the time they were said.
_STAMP = re.compile(r"^\[\d\d:\d\d\] ")


def _session() -> list[str]:
    text = README.read_text()
    section = text.split("## A session on nc", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    assert lines[0].startswith("$ nc ")
    return lines[1:]


def test_the_readme_nc_session_is_what_the_server_says(
    twistd: tuple[int, Twistd],
) -> None:
    port, _ = twistd
    people: dict[str, User] = {}

    def say(nick: str, *lines: str) -> Callable[[], None]:
        def act() -> None:
            for line in lines:
                people[nick].send(line)

        return act

    def arrive(nick: str, *lines: str) -> Callable[[], None]:
        def act() -> None:
            people[nick] = guest(port, nick)
            say(nick, *lines)()

        return act

    # Before carol connects: bob is in #lobby, erin in #games, each topic set.
    arrive("bob", "/topic be nice", "anyone around?")()
    arrive("erin", "/join #games", "/topic chess at eight")()
    people["erin"].until("*** erin set the topic of #games: chess at eight")
    people["bob"].until("*** erin left for #games (1 here)")
    hooks: dict[str, Callable[[], None]] = {
        "<bob> hi carol!": say("bob", "hi carol!"),
        "*bob* yes, at 8": say("bob", "/msg carol yes, at 8"),
        "*** dave joined (3 here)": arrive("dave"),
        "<erin> your move": say("erin", "your move"),
        "*** bob left (2 here): off to dinner": say("bob", "/quit off to dinner"),
    }
    carol = User(port)
    for line in _session():
        hook = hooks.pop(line, None)
        if hook is not None:
            hook()
        if line.startswith(_RECEIVED):
            got = carol.line()
            assert _STAMP.sub("[HH:MM] ", got) == _STAMP.sub("[HH:MM] ", line)
        else:
            carol.send(line)
    assert not hooks, f"README lost these lines: {list(hooks)}"
    assert carol.at_eof()
