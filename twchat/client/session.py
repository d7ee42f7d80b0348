"""
The client's brain: registration, what to send when, when to stop.

Knows nothing about terminals or sockets: a front end hands it what the
user typed and shows what it is given; a ``LineReceiver`` hands it what
the server sent. So it is tested on ``StringTransport`` with a fake clock.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from ..accounts import NOW_REGISTERED, PASSWORD_CHANGED, TAKEN_OVER, WRONG_PASSWORD
from ..nicknames import TAKEN
from ..refused import TRY_AGAIN
from ..wire import (
    BANNED_FROM_SERVER,
    DISCONNECTED_BY,
    IDLE_FOR,
    NEW_PASSWORD_PROMPT,
    PASSWORD_PROMPT,
    TAG,
)
from .names import Names
from .render import Kind, Line, classify

__all__ = ["ClientProtocol", "ClientSession", "FrontEnd", "holds_password"]

#: After /quit, how long to wait for the server to close before giving up.
QUIT_TIMEOUT = 5.0

_WELCOME = "*** Welcome, "
_FATAL = ("! server is full", "! too many connections")
#: A server operator sent us away (/kill, a server ban), the user was idle
#: too long, or (TAKEN_OVER) our account logged in elsewhere: coming back is
#: the user's own choice, not a reconnect's.
_SENT_AWAY = (f"! {DISCONNECTED_BY}", f"! {BANNED_FROM_SERVER}", f"! {IDLE_FOR}")
_WRONG_PASSWORD = f"! {WRONG_PASSWORD}"
_PASSWORD_CHANGED = f"*** {PASSWORD_CHANGED}"
#: After a reconnect, refusals of our own nickname that pass: the old
#: connection still holds it (in Redis mode until its server is declared
#: dead), or the server cannot reach Redis for a moment.
_PASSING = (TAKEN, TRY_AGAIN)
#: Seconds between attempts to get our nickname back, and for how long.
RETRY_NICK_EVERY = 2.0
RETRY_NICK_FOR = 30.0


class FrontEnd(Protocol):
    """What the session needs from the terminal side."""

    def show(self, line: Line) -> None:
        """Display one line."""

    def ask_nick(self) -> None:
        """The next thing the user types is a nickname."""

    def ask_password(self) -> None:
        """The next thing the user types is a password: do not echo it."""


class ClientProtocol(LineReceiver):
    """One connection to the server; everything goes to the session."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    def connectionMade(self) -> None:
        self.session.connected(self)

    def lineReceived(self, line: bytes) -> None:
        self.session.received(line.rstrip(b"\r").decode("utf-8", "replace"))

    def say(self, text: str) -> None:
        self.sendLine(text.encode("utf-8"))

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        self.session.disconnected(self, reason)


class ClientSession:
    """
    Registers (again, after a reconnect), forwards lines, ends cleanly.

    ``done`` fires with the exit status: 0 after a clean quit, 1 when the
    server could not be used (full, refused, TLS failure, lost in pipe
    mode), 2 when a piped nickname was refused.
    """

    def __init__(
        self,
        front: FrontEnd,
        clock: IReactorTime,
        nick: str = "",
        pipe: bool = False,
        password: str = "",
        tls: bool = False,
    ) -> None:
        self.front = front
        self.clock = clock
        #: The nickname we register with (and again after reconnecting).
        self.nick = nick
        self.pipe = pipe
        self.protocol: ClientProtocol | None = None
        self.registered = False
        self.awaiting_nick = False
        #: The account's password: given (file, environment) or typed once,
        #: kept for logging in again after a reconnect.
        self.password = password
        #: What each /register or /password sent would make it, once
        #: confirmed (answers come in order; a refusal forgets them all).
        self._new_passwords: deque[str] = deque()
        self.awaiting_password = False
        self._password_sent = False
        self._nick_refused = False
        #: Since when we try to get our nickname back after a reconnect.
        self._reclaiming_since: float | None = None
        self._retry: IDelayedCall | None = None
        self._queue: deque[str] = deque()
        self._quitting = False
        #: The last line sent us away (see _SENT_AWAY).
        self._sent_away = False
        self._quit_sent = False
        self._quit_timer: IDelayedCall | None = None
        #: When the next attempt to connect is due, while disconnected.
        self.retry_at: float | None = None
        #: The room we are in and the last history id seen in it (from the
        #: server's tags): where a reconnect resumes.
        self.room = ""
        self.last_id = 0
        #: Who we have seen, for completing nicknames.
        self.names = Names()
        self._resuming: tuple[str, int] | None = None
        self._lost = False
        self._failed_attempts = 0
        #: Whether the server has said anything yet, on any connection.
        self._heard = False
        self._tls = tls
        self.done: Deferred[int] = Deferred()

    # From the connection

    def connected(self, protocol: ClientProtocol) -> None:
        self.protocol = protocol
        self.registered = False
        self.awaiting_nick = False
        # Lines tagged with their room and history id; after a reconnect,
        # back to our room with only the lines we missed.
        protocol.say("/ids")
        if self.room:
            self._resuming = (self.room, self.last_id)
            protocol.say(f"/resume {self.room} {self.last_id}")
        self.retry_at = None
        self._failed_attempts = 0
        if self._lost:
            self._lost = False
            self.say_client("connected again")

    def waiting(self, seconds: float) -> None:
        """The next attempt to connect is ``seconds`` away (while lost)."""
        if self.done.called or self.pipe:
            return
        self.retry_at = self.clock.seconds() + seconds
        if self._lost:
            self._failed_attempts += 1
            if self._failed_attempts > 1:  # the first wait: "connection lost"
                self.say_client(
                    f"no connection; trying again in {math.ceil(seconds)} s"
                )

    def countdown(self) -> int | None:
        """Whole seconds until the next attempt to connect, while waiting."""
        if self.retry_at is None or self.protocol is not None:
            return None
        return max(0, math.ceil(self.retry_at - self.clock.seconds()))

    def received(self, raw: str) -> None:
        self._heard = True
        raw = self._untag(raw)
        line = classify(raw, self.nick if self.registered else "")
        self.names.heard(line.text)
        if line.kind is Kind.PROMPT and line.text.startswith(
            (PASSWORD_PROMPT, NEW_PASSWORD_PROMPT)
        ):
            self._password_wanted(line)
            return
        # A ban at login is followed by the prompt: another name may do.
        self._sent_away = line.text.startswith(_SENT_AWAY) or (
            line.kind is Kind.NOTICE and line.text.endswith(TAKEN_OVER)
        )
        if line.kind is Kind.PROMPT:
            self.front.show(line)
            self._nickname_wanted()
            return
        if not self.registered:
            if line.text.startswith(_WELCOME):
                self.nick = line.text[len(_WELCOME) :].split("!", 1)[0]
                self.registered = True
                self._password_sent = False
                self._nick_refused = False
                self._reclaiming_since = None
            elif line.kind is Kind.ERROR or self._sent_away:
                if self._password_sent and line.text.startswith(_WRONG_PASSWORD):
                    self.password = ""  # it is not (or no longer) right
                if line.text.startswith(_FATAL) or (self._sent_away and self.pipe):
                    self.front.show(line)
                    self.finish(1)
                    return
                if self._retry_later(line.text):
                    self.front.show(line)
                    return
                self._nick_refused = True
                if self.pipe:
                    self.front.show(line)
                    self.finish(2)
                    return
        elif line.kind is Kind.NOTICE:
            old, sep, new = line.text[4:].partition(" is now known as ")
            if sep and old == self.nick:
                self.nick = new
            elif self._new_passwords and (
                line.text == _PASSWORD_CHANGED
                or line.text == f"*** {self.nick}{NOW_REGISTERED}"
            ):
                # Logging in again after a reconnect needs the new one.
                self.password = self._new_passwords.popleft()
        elif line.kind is Kind.ERROR:
            self._new_passwords.clear()  # at worst we ask after a reconnect
        self.front.show(line)
        if self.registered:
            self._flush()

    def _untag(self, raw: str) -> str:
        """Note the room or history id a line is tagged with; drop the tag."""
        if not raw.startswith(TAG):
            return raw
        tag, _, rest = raw[len(TAG) :].partition(" ")
        if tag.startswith("#"):
            resuming = self._resuming
            if resuming is not None and tag[1:] == resuming[0]:
                # Back in the room we asked for: the lines after our last.
                self.room, self.last_id = resuming
                self._resuming = None
            else:
                self.room, self.last_id = tag[1:], 0
        elif tag.isdigit():
            self.last_id = max(self.last_id, int(tag))
        return rest

    def disconnected(self, protocol: ClientProtocol, reason: Failure) -> None:
        if protocol is not self.protocol:
            return
        self.protocol = None
        was_registered, self.registered = self.registered, False
        if self.done.called:
            return
        if reason.check(SSL.Error, VerificationError):
            self.say_client(f"TLS failed: {_tls_reason(reason)}")
            self.finish(1)
            return
        if self._quit_sent or (self._quitting and not self.pipe):
            self.finish(0)
            return
        if self._sent_away:
            self.finish(1)
            return
        if not self._heard:
            # A twchat server greets first: this port is something else (or
            # the other wire), and trying again would not change that.
            hint = "" if self._tls else " (one that speaks TLS needs --tls)"
            self.say_client(
                "the server closed the connection without a word: "
                f"is it a twchat server?{hint}"
            )
            self.finish(1)
            return
        if self.pipe:
            self.say_client(f"connection lost: {reason.getErrorMessage()}")
            self.finish(1)
            return
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if was_registered:
            self._reclaiming_since = self.clock.seconds()
        self._lost = True
        self.say_client("connection lost; reconnecting...")

    # From the user

    def typed(self, text: str) -> None:
        """One line the user entered (or piped)."""
        if self._quitting:
            return
        if self.awaiting_password and self.protocol is not None:
            self.awaiting_password = False
            self.password = text
            if not text:
                # No password: the name is given back, and the nickname
                # prompt that follows is the user's, not ours to answer.
                self._nick_refused = True
            self._send_password()
            return
        if _is_quit(text):
            self.quit(text)
            return
        if self.awaiting_nick and self.protocol is not None:
            self.awaiting_nick = False
            self._attempt(text.strip())
            return
        self._queue.append(text)
        if self.registered:
            self._flush()
        elif self.awaiting_nick:
            self._nickname_wanted()

    def input_ended(self) -> None:
        """No more input (Ctrl-D, end of the pipe): quit once all is sent."""
        self.quit("/quit")

    def quit(self, command: str = "/quit") -> None:
        """Leave for good, after every queued line has gone out."""
        if self._quitting:
            return
        self._quitting = True
        if self.protocol is None and not self.pipe:
            self.finish(0)  # not connected (reconnecting): just stop
            return
        reason = command.strip().partition(" ")[2]
        command = f"/quit {reason}" if reason else "/quit"
        if self.registered or self.pipe:
            # Piped lines go out first; the server answers the /quit only
            # once it has handled them all (flood control may pace them).
            self._queue.append(command)
            self._flush()
        else:
            self._send(command)
        if not self.pipe:
            self._quit_timer = self.clock.callLater(QUIT_TIMEOUT, self.finish, 0)

    def say_client(self, text: str) -> None:
        self.front.show(Line(Kind.CLIENT, f"-- {text}"))

    def finish(self, status: int) -> None:
        for call in (self._quit_timer, self._retry):
            if call is not None and call.active():
                call.cancel()
        self._quit_timer = self._retry = None
        if not self.done.called:
            self.done.callback(status)
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.loseConnection()

    # Internals

    def _retry_later(self, error: str) -> bool:
        """
        After a reconnect, wait for our own nickname instead of giving it up.

        Behind a load balancer a reconnect may land on another server while
        the lost connection still holds the name for a few seconds.
        """
        since = self._reclaiming_since
        if since is None or not error.endswith(_PASSING):
            return False
        if self.clock.seconds() - since >= RETRY_NICK_FOR:
            self._reclaiming_since = None
            return False
        self.say_client(
            f"{self.nick} is still held by the lost connection; "
            f"trying again in {RETRY_NICK_EVERY:g} s"
        )
        self._retry = self.clock.callLater(RETRY_NICK_EVERY, self._retry_nick)
        return True

    def _retry_nick(self) -> None:
        self._retry = None
        if self.protocol is not None and not self.registered:
            self._attempt(self.nick)

    def _password_wanted(self, prompt: Line) -> None:
        if self.password and not self._password_sent:
            self._send_password()  # given, or typed before a reconnect
            return
        self._password_sent = False
        if self.pipe:
            self.front.show(prompt)
            self.say_client("no password: give --password-file or TWCHAT_PASSWORD")
            self.finish(2)
            return
        self.front.show(prompt)
        self.awaiting_password = True
        self.front.ask_password()

    def _send_password(self) -> None:
        self._password_sent = True
        self._send(self.password)

    def _nickname_wanted(self) -> None:
        if self._retry is not None:
            return  # a retry of our own nickname is on its way
        if self.nick and not self._nick_refused:
            self._attempt(self.nick)
        elif self._queue:
            self._attempt(self._queue.popleft().strip())
        else:
            self.awaiting_nick = True
            self.front.ask_nick()

    def _attempt(self, nick: str) -> None:
        self.nick = nick
        self._nick_refused = False
        self._send(nick)

    def _flush(self) -> None:
        while self._queue and self.protocol is not None and self.registered:
            text = self._queue.popleft()
            if new := _password_set_by(text):
                self._new_passwords.append(new)
            self._send(text)
            if not self.pipe:
                self._show_own(text)

    def _show_own(self, text: str) -> None:
        """The server does not echo our lines: show them as we sent them."""
        if text.startswith("//"):
            shown = f"<{self.nick}> {text[1:]}"
        elif text.lower().startswith("/me ") and text[4:].strip():
            shown = f"* {self.nick} {text[4:]}"
        elif text.startswith("/") or not text.strip():
            return
        else:
            shown = f"<{self.nick}> {text}"
        self.front.show(Line(Kind.OWN, shown))

    def _send(self, text: str) -> None:
        assert self.protocol is not None
        if self._quitting and _is_quit(text):
            self._quit_sent = True
        self.protocol.say(text)


#: Commands whose words are passwords.
_PASSWORD_COMMANDS = ("/register", "/password")


def holds_password(text: str) -> bool:
    """Whether ``text`` is a command typed with passwords (never recalled)."""
    return text.partition(" ")[0].lower() in _PASSWORD_COMMANDS


def _password_set_by(text: str) -> str:
    """The password a ``/register`` or ``/password`` line sets; else empty."""
    name, _, args = text.partition(" ")
    name = name.lower()
    if name == "/register":
        return args
    if name == "/password":
        return args.partition(" ")[2]
    return ""


def _is_quit(text: str) -> bool:
    word = text.strip().split(" ", 1)[0].lower()
    return word in ("/quit", "/exit")


def _tls_reason(reason: Failure) -> str:
    if reason.check(VerificationError):
        return "the server's certificate is not for this host name"
    message = reason.getErrorMessage()
    if "wrong version number" in message:
        return "the server does not speak TLS on this port (wrong version number)"
    if "certificate verify failed" in message or "verify" in message.lower():
        return f"the server's certificate could not be verified ({message})"
    return message
