"""
Cleaning user text before anyone else's terminal sees it.

A chat server relays strangers' bytes to everyone's terminal, so it must
not relay anything a terminal would act on instead of print: escape
sequences (clearing the screen, retitling the window), C0 and C1 controls
(including the 8-bit CSI), DEL, and the bidirectional controls that make
text display in a different order than it was written.
"""

from __future__ import annotations

import re

__all__ = ["clean_text"]

# Whole escape sequences go, not only the ESC byte, so that nothing like
# "[2J" is left dangling in the middle of someone's message.
_ESCAPES = re.compile(
    r"""
      \x1b\[ [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?       # CSI ... final
    | \x1b[\]PX^_] [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)?  # OSC/DCS/SOS/PM/APC
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                      # other ESC sequences
    | \x9b [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?         # 8-bit CSI
    | [\x9d\x90\x98\x9e\x9f] [^\x07\x1b\x9c]* (?:\x07|\x9c)?  # 8-bit OSC etc.
    """,
    re.VERBOSE,
)

# C0 controls, DEL, C1 controls, bidi controls, line/paragraph separators
# and the byte-order mark.
_CONTROLS = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
    "\u2066-\u2069\u2028\u2029\ufeff]"
)


def clean_text(text: str) -> str:
    """
    Return ``text`` with everything a terminal would act on removed.

    Tabs become single spaces so that a line still reads the same; trailing
    white space is dropped.
    """
    if text.isascii() and text.isprintable():
        # The common case costs one scan and no copies.
        return text.rstrip()
    text = _ESCAPES.sub("", text)
    text = text.replace("\t", " ")
    return _CONTROLS.sub("", text).rstrip()
