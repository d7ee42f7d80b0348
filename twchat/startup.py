"""
Start-up checks: every mistake in how the server is started is one line
naming the option, exit status 1, before anything listens.

They run in ``Options.postOptions``, before ``twistd`` starts logging or
forks into a daemon, so the line reaches the terminal in both modes (a
daemon's own errors only reach its log file, cut to 100 bytes).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError

from .transports.tls import is_tls_description, parse_tls_description

__all__ = ["ListenError", "StartupError", "check_listeners", "listen_failure"]

_PROGRAM = "twistd chat"
_NOT_AN_INT = "invalid literal for int() with base 10: "


class StartupError(SystemExit):
    """A start-up mistake: Python prints it as one line and exits 1."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{_PROGRAM}: {message}")


class ListenError(Exception):
    """A port that passed the checks still could not listen (a race)."""


@dataclass(frozen=True)
class _Listener:
    option: str
    description: str

    def __str__(self) -> str:
        return f"--{self.option} {self.description}"


def _why(e: BaseException) -> str:
    """An exception as words: its message, not its repr."""
    if isinstance(e, CannotListenError) and isinstance(e.socketError, BaseException):
        return _why(e.socketError)
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror.lower()}{where}"
    text = str(e).strip() or type(e).__name__
    if text.startswith("Unknown endpoint type"):
        return (
            f"{text.replace('Unknown endpoint type:', 'unknown endpoint type')}; "
            "give a port number or tcp:PORT, tcp6:PORT, "
            "ssl:PORT:privateKey=FILE, unix:PATH or systemd:domain=INET:index=N"
        )
    if text.startswith("[(") and "routines" in text:  # an OpenSSL error list
        return "not a PEM key or certificate"
    if text.startswith(_NOT_AN_INT):  # int("abc") on a port or a backlog
        return f"{text[len(_NOT_AN_INT) :]} is not a number"
    return text


def _address(listener: _Listener, endpoint: Any) -> tuple[str, int] | None:
    """The interface and port a TCP or TLS listener will bind, if it is one."""
    if is_tls_description(listener.description):
        spec = parse_tls_description(listener.description)
        return spec.interface, spec.port
    port = getattr(endpoint, "_port", None)
    interface = getattr(endpoint, "_interface", None)
    if isinstance(port, int) and isinstance(interface, str):
        return interface, port
    return None


def _no_systemd_socket(listener: _Listener) -> StartupError:
    # Twisted reads (and clears) LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES
    # when it is imported, and ignores them unless all three agree.
    return StartupError(
        f"{listener}: systemd passed no such socket; start it from a .socket "
        "unit (or systemd-socket-activate --fdname=NAME), which sets "
        "LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES"
    )


def _parse(listener: _Listener, reactor: Any) -> Any:
    try:
        endpoint = serverFromString(reactor, listener.description)
        if is_tls_description(listener.description):
            parse_tls_description(listener.description)
    except (IndexError, KeyError) as e:
        if listener.description.startswith("systemd:"):
            raise _no_systemd_socket(listener) from None
        raise StartupError(f"{listener}: {_why(e)}") from None
    except Exception as e:
        raise StartupError(f"{listener}: {_why(e)}") from None
    return endpoint


def _bind(interface: str, port: int) -> socket.socket:
    """Bind as Twisted will (SO_REUSEADDR): what fails here fails there."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((interface, port))
        probe.listen(1)
    except OSError:
        probe.close()
        raise
    return probe


def _check_unix(listener: _Listener, endpoint: Any) -> None:
    """A UNIX socket's directory must exist and be ours to write in."""
    path = getattr(endpoint, "_address", None)
    if not listener.description.startswith("unix:") or not isinstance(path, str):
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StartupError(f"{listener}: no directory {directory}")
    if not os.access(directory, os.W_OK):
        raise StartupError(f"{listener}: no permission to write in {directory}")


def check_listeners(
    reactor: Any, ports: list[str], web: list[str], metrics: Sequence[str] = ()
) -> None:
    """
    Every --port, --web and --metrics description parses, names a port that
    exists and is free, and no two of them want the same one.
    """
    listeners = [
        *(_Listener("port", d) for d in ports),
        *(_Listener("web", d) for d in web),
        *(_Listener("metrics", d) for d in metrics),
    ]
    held: list[tuple[_Listener, tuple[str, int], socket.socket]] = []
    try:
        for listener in listeners:
            endpoint = _parse(listener, reactor)
            address = _address(listener, endpoint)
            if address is None:
                _check_unix(listener, endpoint)
                continue
            interface, port = address
            if not 0 <= port <= 65535:
                raise StartupError(f"{listener}: port {port} is not 0-65535")
            if port == 0:
                continue  # any free port: cannot clash
            try:
                probe = _bind(interface, port)
            except OSError as e:
                raise StartupError(
                    _bind_failure(listener, interface, port, e, held)
                ) from None
            held.append((listener, address, probe))
    finally:
        for _, _, probe in held:
            probe.close()


def _bind_failure(
    listener: _Listener,
    interface: str,
    port: int,
    e: OSError,
    held: list[tuple[_Listener, tuple[str, int], socket.socket]],
) -> str:
    where = f"port {port}" + (f" on {interface}" if interface else "")
    if e.errno == errno.EADDRINUSE:
        for other, (_, other_port), _ in held:
            if other_port == port:
                return f"{listener}: {other} already listens on port {port}"
        return f"{listener}: {where} is in use by another program"
    if e.errno == errno.EACCES:
        return f"{listener}: no permission to listen on {where}"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"{listener}: {interface} is not an address of this machine"
    return f"{listener}: cannot listen on {where}: {_why(e)}"


def listen_failure(option: str, description: str, e: BaseException) -> ListenError:
    """A listening failure at start, as the line the checks would have said."""
    listener = _Listener(option, description)
    return ListenError(f"{listener}: cannot listen: {_why(e)}")
