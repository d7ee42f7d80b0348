"""
TLS ports whose certificate can be replaced without a restart.

``--port ssl:6697:privateKey=key.pem:certKey=cert.pem`` takes the same
arguments as Twisted's ``ssl:`` endpoint, but the certificate is held by a
``ReloadableCertificate``: on SIGHUP the files are read again (in a thread:
the reactor never waits on disk) and new connections get the new
certificate, while open connections carry on. A broken file keeps the old
certificate and says why in the log. Only TLS 1.2 and newer are spoken.

Twisted's ``ssl:`` ports hold every small write back a reactor turn to
join it with the next; twchat's outboxes already hand each connection one
batch per turn, so its TLS ports write at once (``TLSMemoryBIOProtocol``
without the aggregation): a turn and a timer less per line for every TLS
reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from OpenSSL import SSL
from OpenSSL.crypto import FILETYPE_PEM
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
    IReactorTCP,
    IReactorThreads,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.ssl import Certificate, CertificateOptions, KeyPair, TLSVersion
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = [
    "ReloadableCertificate",
    "is_tls_description",
    "parse_tls_description",
    "tls_endpoint",
]

_PREFIX = "ssl:"


def is_tls_description(description: str) -> bool:
    return description.startswith(_PREFIX)


def _split(description: str) -> list[str]:
    """Split on ':' as Twisted's endpoint strings do (``\\:`` escapes it)."""
    parts, current, escaped = [], [], False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class TLSPort:
    port: int
    private_key: str
    cert_key: str
    extra_cert_chain: str | None = None
    interface: str = ""
    backlog: int = 50


def parse_tls_description(description: str) -> TLSPort:
    """
    Read ``ssl:PORT:privateKey=K[:certKey=C][:interface=I][:backlog=N]...``.

    Raises ``ValueError`` saying what is wrong.
    """
    if not is_tls_description(description):
        raise ValueError(f"not an ssl: endpoint: {description}")
    parts = _split(description[len(_PREFIX) :])
    positional = [p for p in parts if "=" not in p]
    options = dict(p.split("=", 1) for p in parts if "=" in p)
    port_text = options.pop("port", positional[0] if positional else "")
    if not port_text.isdigit():
        raise ValueError(f"ssl: needs a port number, not {port_text!r}")
    key = options.pop("privateKey", "")
    if not key:
        raise ValueError("ssl: needs privateKey=FILE")
    spec = TLSPort(
        port=int(port_text),
        private_key=key,
        cert_key=options.pop("certKey", key),
        extra_cert_chain=options.pop("extraCertChain", None),
        interface=options.pop("interface", ""),
        backlog=int(options.pop("backlog", "50")),
    )
    if options:
        raise ValueError(f"ssl: does not take {', '.join(sorted(options))}")
    return spec


def _load_options(
    key_pem: bytes, cert_pem: bytes, chain_pem: bytes | None
) -> CertificateOptions:
    key = KeyPair.load(key_pem, FILETYPE_PEM)
    cert = Certificate.loadPEM(cert_pem)
    chain = []
    if chain_pem:
        marker = b"-----BEGIN CERTIFICATE-----"
        for block in chain_pem.split(marker)[1:]:
            chain.append(Certificate.loadPEM(marker + block).original)
    options = CertificateOptions(
        privateKey=key.original,
        certificate=cert.original,
        extraCertChain=chain or None,
        raiseMinimumTo=TLSVersion.TLSv1_2,
    )
    # Fail here, not on some user's connection: checks that the key and
    # the certificate belong together.
    context = options.getContext()
    # An idle connection gives its 2 x 16 KiB record buffers back (most
    # chat connections are idle most of the time).
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    return options


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableCertificate:
    """The certificate a TLS port presents; ``reload`` swaps it safely."""

    log = Logger()

    def __init__(
        self,
        reactor: IReactorThreads,
        private_key: str,
        cert_key: str,
        extra_cert_chain: str | None = None,
    ) -> None:
        self._reactor = reactor
        self.paths = (Path(private_key), Path(cert_key))
        self._chain = Path(extra_cert_chain) if extra_cert_chain else None
        # At start-up, before the reactor runs: a plain read is fine, and a
        # bad file stops the server with a clear error.
        self._options = _load_options(*self._read())

    def _read(self) -> tuple[bytes, bytes, bytes | None]:
        key, cert = (path.read_bytes() for path in self.paths)
        return key, cert, self._chain.read_bytes() if self._chain else None

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        return self._options.serverConnectionForTLS(tlsProtocol)

    def reload(self) -> Deferred[bool]:
        """Read the files again; fires True if the new certificate is in use."""
        d = deferToThreadPool(
            self._reactor,
            self._reactor.getThreadPool(),
            self._read,
        )
        return d.addCallback(lambda pems: _load_options(*pems)).addCallbacks(
            self._loaded, self._failed
        )

    def _loaded(self, options: CertificateOptions) -> bool:
        self._options = options
        self.log.info("reloaded TLS certificate {cert}", cert=str(self.paths[1]))
        return True

    def _failed(self, failure: Failure) -> bool:
        self.log.error(
            "could not reload TLS certificate {cert}: {error}; keeping the old one",
            cert=str(self.paths[1]),
            error=failure.getErrorMessage(),
        )
        return False


class _UnbufferedTLSFactory(TLSMemoryBIOFactory):
    """TLS over a TCP port, each write encrypted and sent when made."""

    protocol = TLSMemoryBIOProtocol


@implementer(IStreamServerEndpoint)
class _TLSEndpoint:
    """An ``ssl:`` port: TCP, and TLS with ``certificate`` on every connection."""

    def __init__(
        self, reactor: Any, spec: TLSPort, certificate: ReloadableCertificate
    ) -> None:
        self._reactor = reactor
        self._certificate = certificate
        self._tcp = TCP4ServerEndpoint(
            reactor, spec.port, backlog=spec.backlog, interface=spec.interface
        )

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        tls = _UnbufferedTLSFactory(
            self._certificate, False, protocolFactory, self._reactor
        )
        listening: Deferred[IListeningPort] = self._tcp.listen(tls)
        return listening


def tls_endpoint(
    reactor: IReactorTCP | IReactorTime,
    spec: TLSPort,
    certificate: ReloadableCertificate,
) -> IStreamServerEndpoint:
    return _TLSEndpoint(reactor, spec, certificate)
