"""TLS through the real ``twistd -n chat``: versions, reload on SIGHUP."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from twchat.connection.connection import CLOSE_GRACE

from .support import WAIT
from .support.certificates import make_certificate
from .support.net import free_port
from .support.proc import Twistd, User


def _context(
    cafile: Path,
    version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    if version is not None:
        if version < ssl.TLSVersion.TLSv1_2:
            # Let the client offer what the server must refuse.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
    return context


class TLSUser(User):
    sock: ssl.SSLSocket

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.buffer = b""


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Twistd, Path, Path]]:
    key, cert = make_certificate(tmp_path)
    port = free_port()
    description = f"ssl:{port}:privateKey={key}:certKey={cert}:interface=127.0.0.1"
    with Twistd(tmp_path, ["--port", description, "--register-timeout", "1"]) as server:
        server.wait_for_port(port)
        yield port, server, key, cert


def test_tls_12_and_13_accepted(tls_server: tuple[int, Twistd, Path, Path]) -> None:
    port, _, _, cert = tls_server
    for version, nick in (
        (ssl.TLSVersion.TLSv1_2, "twelve"),
        (ssl.TLSVersion.TLSv1_3, "thirteen"),
    ):
        user = TLSUser(port, _context(cert, version))
        assert user.sock.version() == {"twelve": "TLSv1.2", "thirteen": "TLSv1.3"}[nick]
        user.until("? Choose a nickname:")
        user.send(nick)
        assert user.line().startswith(f"*** Welcome, {nick}!")


def test_tls_11_refused(tls_server: tuple[int, Twistd, Path, Path]) -> None:
    port, _, _, cert = tls_server
    with pytest.raises(ssl.SSLError):
        TLSUser(port, _context(cert, ssl.TLSVersion.TLSv1_1))


def test_connection_that_never_says_hello_is_closed(
    tls_server: tuple[int, Twistd, Path, Path],
) -> None:
    port, _, _, _ = tls_server
    silent = socket.create_connection(("127.0.0.1", port), timeout=20)
    started = time.monotonic()
    try:
        data = silent.recv(100)
    except ConnectionResetError:
        data = b""  # cut: the goodbye line could not go out without TLS
    assert data == b""
    # The registration deadline (1 s here), then CLOSE_GRACE for the line.
    assert time.monotonic() - started < 1 + 1 + CLOSE_GRACE + 2


def test_sighup_reloads_the_certificate(
    tls_server: tuple[int, Twistd, Path, Path], tmp_path: Path
) -> None:
    port, server, key, cert = tls_server
    old_pem = cert.read_bytes()
    before = TLSUser(port, _context(cert))
    before.until("? Choose a nickname:")
    before.send("early")
    before.line()

    new_key, new_cert = make_certificate(tmp_path, "renewed")
    shutil.copy(new_key, key)
    shutil.copy(new_cert, cert)
    server.process.send_signal(signal.SIGHUP)
    server.wait_for_log("reloaded TLS certificate")

    after = TLSUser(port, _context(new_cert))
    assert after.sock.getpeercert(binary_form=True) != ssl.PEM_cert_to_DER_cert(
        old_pem.decode()
    )
    after.until("? Choose a nickname:")
    after.send("late")
    after.line()
    # The connection made before the reload carries on.
    assert before.line() == "*** late joined (2 here)"
    before.send("still here")
    assert after.line() == "<early> still here"

    # A broken file keeps the certificate in use and says why.
    cert.write_text("not a certificate")
    server.process.send_signal(signal.SIGHUP)
    server.wait_for_log("could not reload TLS certificate")
    again = TLSUser(port, _context(new_cert))
    again.until("? Choose a nickname:")
    assert server.process.poll() is None
