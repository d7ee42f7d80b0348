"""
The interactive front end, on prompt_toolkit.

Incoming lines are printed above the input line, which prompt_toolkit
redraws intact with the cursor where it was; editing is Unicode-aware
(backspace removes one character of "café", not one byte).
"""

from __future__ import annotations

from collections.abc import Iterable

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import patch_stdout

from ..help import COMMAND_NAMES
from .render import Line, style_for
from .session import ClientSession, holds_password

__all__ = ["TerminalUI"]


def _ended(session: ClientSession) -> bool:
    return session.done.called


class _History(InMemoryHistory):
    """Up recalls what was typed, never a password (nor a /register's)."""

    def __init__(self, ui: TerminalUI) -> None:
        super().__init__()
        self._ui = ui

    # append_string, not store_string: the recalled list is filled here.
    def append_string(self, string: str) -> None:
        if not self._ui.asking_password and not holds_password(string):
            super().append_string(string)


#: Commands whose word is a room, not a nickname.
_ROOM_COMMANDS = ("/join ", "/who ")


class _Completer(Completer):
    """
    Tab completes the word before the cursor: a command as the line's first
    word, else a nickname seen (the most recently active first; ``bob: ``
    at the start of a line, as people address each other).
    """

    def __init__(self, ui: TerminalUI) -> None:
        self._ui = ui

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        session = self._ui.session
        if session is None or self._ui.asking_password or not session.registered:
            return
        before = document.text_before_cursor
        word = before.rpartition(" ")[2]
        first = word == before
        if first and word.startswith("/") and not word.startswith("//"):
            for name in COMMAND_NAMES:
                if name.startswith(word[1:].lower()):
                    yield Completion(f"/{name} ", -len(word), display=f"/{name}")
            return
        if not word or before.lower().startswith(_ROOM_COMMANDS):
            return
        for name in session.names.complete(word, session.nick):
            text = f"{name}: " if first else f"{name} "
            yield Completion(text, -len(word), display=name)


class TerminalUI:
    """Line editor with history; Ctrl-C clears the line or quits, Ctrl-D quits."""

    def __init__(self, color: bool = True, timestamps: bool = False) -> None:
        self.color = color
        self.timestamps = timestamps
        self.session: ClientSession | None = None
        self._asking_nick = False
        #: The line being typed is a password: shown as stars, not kept.
        self.asking_password = False
        self._prompt: PromptSession[str] | None = None

    def show(self, line: Line) -> None:
        text = line.plain(self.timestamps)
        if self.color:
            print_formatted_text(FormattedText([(style_for(line), text)]))
        else:
            print_formatted_text(text)

    def ask_nick(self) -> None:
        self._asking_nick = True
        if self._prompt is not None and self._prompt.app.is_running:
            self._prompt.app.invalidate()

    def ask_password(self) -> None:
        self.asking_password = True
        if self._prompt is not None and self._prompt.app.is_running:
            self._prompt.app.invalidate()

    def _message(self) -> str:
        session = self.session
        if self.asking_password:
            return "password> "
        if self._asking_nick or session is None or not session.nick:
            return "nickname> "
        # Our nickname stays while reconnecting: what is typed is queued
        # and sent as this nickname once we are back.
        left = session.countdown()
        if left is not None:
            return f"{session.nick} (reconnecting in {left} s)> "
        if not session.registered:
            return f"{session.nick} (connecting)> "
        return f"{session.nick}> "

    def _bindings(self) -> KeyBindings:
        bindings = KeyBindings()

        @bindings.add("c-c")
        def _clear_or_quit(event: KeyPressEvent) -> None:
            buffer = event.app.current_buffer
            if buffer.text:
                buffer.reset()
            else:
                event.app.exit(exception=KeyboardInterrupt())

        @bindings.add("tab")
        def _complete(event: KeyPressEvent) -> None:
            # The likeliest name at once, as chat clients do; Tab again
            # goes on to the next (not: a menu first, then a second Tab).
            buffer = event.app.current_buffer
            if buffer.complete_state:
                buffer.complete_next()
            else:
                buffer.start_completion(select_first=True)

        return bindings

    async def run(self) -> None:
        """Read lines until the user quits or the session ends."""
        assert self.session is not None
        self._prompt = PromptSession(
            history=_History(self),
            completer=_Completer(self),
            complete_while_typing=False,  # only on Tab
            key_bindings=self._bindings(),
            is_password=Condition(lambda: self.asking_password),
            # The sent line is shown once, as the room sees it ("<nick> ..."),
            # not also as typed after the prompt.
            erase_when_done=True,
            # Redrawn each half second: the reconnect countdown moves.
            refresh_interval=0.5,
        )
        session = self.session
        with patch_stdout():
            while not _ended(session):
                try:
                    text = await self._prompt.prompt_async(self._message)
                except (EOFError, KeyboardInterrupt):
                    session.input_ended()
                    return
                if _ended(session):
                    return
                self._asking_nick = False
                self.asking_password = False
                session.typed(text)

    def stop(self) -> None:
        """End the input line, e.g. when the server went away for good."""
        if self._prompt is not None and self._prompt.app.is_running:
            self._prompt.app.exit(result="")
