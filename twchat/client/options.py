"""Command-line options of ``python -m twchat.client``."""

from __future__ import annotations

import os

from twisted.python import usage

from .. import version_line

__all__ = ["ClientOptions"]


class ClientOptions(usage.Options):
    synopsis = (
        "Usage: python -m twchat.client [--host H] "
        "[--port P | --endpoint ENDPOINT] [--nick NAME] "
        "[--tls] [--ca FILE] [--insecure] [options]"
    )
    longdesc = (
        "Chat on a twchat server. On a terminal it is a line editor that "
        "incoming messages never garble (Ctrl-C clears the line, or quits "
        "when it is empty; Ctrl-D on an empty line or /quit quits). With "
        "standard input from a pipe (or --plain) it reads lines and prints "
        "lines: printf 'bot\\nhello\\n/quit\\n' | python -m twchat.client. "
        "Exit status: 0 after a clean quit, 1 when the server cannot be "
        "used (refused, full, TLS failure, lost in pipe mode), 2 when a "
        "piped nickname is refused."
    )
    optParameters = [
        ["host", "h", "localhost", "Server host name (and TLS name to verify)."],
        ["port", "p", 1234, "Server TCP port.", int],
        [
            "endpoint",
            "e",
            None,
            "A Twisted client endpoint string instead of --host/--port, e.g. "
            "tcp:host=chat.example:port=1234 or unix:path=/tmp/chat.sock.",
        ],
        ["nick", "n", None, "Register with this nickname instead of asking."],
        ["ca", None, None, "With --tls: trust this CA certificate (PEM file)."],
        [
            "password-file",
            None,
            None,
            "Log in with the password in this file's first line when the "
            "server asks (also: the TWCHAT_PASSWORD environment variable). "
            "Without either, a terminal asks without echo.",
        ],
    ]
    optFlags = [
        ["tls", "t", "Connect with TLS, verifying the server's certificate."],
        ["insecure", None, "With --tls: do not verify the certificate (unsafe)."],
        ["plain", None, "Plain lines in and out even on a terminal."],
        ["no-color", None, "No colours (also when NO_COLOR is set)."],
        ["timestamps", None, "Prefix every line with [HH:MM]."],
    ]

    def opt_version(self) -> None:
        """Print twchat's version and exit."""
        print(version_line("python -m twchat.client"))
        raise SystemExit(0)

    def postOptions(self) -> None:
        if self["insecure"] and not self["tls"]:
            raise usage.UsageError("--insecure only makes sense with --tls")
        if self["ca"] and not self["tls"]:
            raise usage.UsageError("--ca only makes sense with --tls")
        if self["ca"] and self["insecure"]:
            raise usage.UsageError("--ca and --insecure contradict each other")
        self["password"] = os.environ.get("TWCHAT_PASSWORD", "")
        if self["password-file"]:
            try:
                with open(self["password-file"], encoding="utf-8") as file:
                    self["password"] = file.readline().rstrip("\r\n")
            except OSError as e:
                raise usage.UsageError(
                    f"--password-file {self['password-file']}: {e.strerror}"
                ) from e
        if os.environ.get("NO_COLOR"):
            self["no-color"] = True
