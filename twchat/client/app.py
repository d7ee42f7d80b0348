"""Wiring the client together: endpoint, reconnecting service, front end."""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    clientFromString,
    wrapClientTLS,
)
from twisted.internet.interfaces import IAddress, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    optionsForClientTLS,
    platformTrust,
)
from twisted.internet.task import deferLater

from .options import ClientOptions
from .plain import PlainIO
from .render import Kind, Line
from .session import ClientProtocol, ClientSession
from .tty import TerminalUI

__all__ = ["run", "session_service"]


class _SessionFactory(Factory):
    def __init__(self, session: ClientSession) -> None:
        self.session = session

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        return ClientProtocol(self.session)


def session_service(
    endpoint: IStreamClientEndpoint, session: ClientSession, clock: Any
) -> ClientService:
    """
    Keeps ``session`` connected: reconnects with backoff (1 s up to 30 s),
    telling the session each wait so the user sees the countdown.
    """
    backoff = backoffPolicy(initialDelay=1.0, maxDelay=30.0)

    def policy(failed_attempts: int) -> float:
        delay = backoff(failed_attempts)
        session.waiting(delay)
        return delay

    return ClientService(
        endpoint, _SessionFactory(session), retryPolicy=policy, clock=clock
    )


def _endpoint(reactor: Any, options: ClientOptions) -> IStreamClientEndpoint:
    host = options["host"]
    endpoint: IStreamClientEndpoint
    if options["endpoint"]:
        endpoint = clientFromString(reactor, options["endpoint"])
    else:
        endpoint = HostnameEndpoint(reactor, host, options["port"])
    if options["tls"]:
        if options["insecure"]:
            creator: Any = CertificateOptions()  # no verification, on request
        else:
            if options["ca"]:
                with open(options["ca"], "rb") as f:
                    trust: Any = Certificate.loadPEM(f.read())
            else:
                trust = platformTrust()
            creator = optionsForClientTLS(host, trustRoot=trust)
        endpoint = wrapClientTLS(creator, endpoint)
    return endpoint


def _where(options: ClientOptions) -> str:
    return options["endpoint"] or f"{options['host']}:{options['port']}"


async def run(reactor: Any, options: ClientOptions, tty: bool) -> None:
    """Chat until the user quits; raise SystemExit with a non-zero status."""
    timestamps = options["timestamps"]
    front: TerminalUI | PlainIO
    if tty:
        front = TerminalUI(color=not options["no-color"], timestamps=timestamps)
    else:
        front = PlainIO(timestamps=timestamps)
        from twisted.internet import stdio

        stdio.StandardIO(front, reactor=reactor)
    session = ClientSession(
        front,
        reactor,
        nick=options["nick"] or "",
        pipe=not tty,
        password=options["password"],
        tls=bool(options["tls"]),
    )
    front.session = session

    service = session_service(_endpoint(reactor, options), session, reactor)
    service.startService()
    status = 1
    try:
        try:
            await service.whenConnected(failAfterFailures=1)
        except Exception as e:
            front.show(
                Line(Kind.CLIENT, f"-- could not connect to {_where(options)}: {e}")
            )
        else:
            if isinstance(front, TerminalUI):
                typing = Deferred.fromFuture(asyncio.ensure_future(front.run()))
                status = await session.done
                front.stop()
                await typing
            else:
                status = await session.done
    finally:
        # Off the current call stack first: the service's state machine may
        # be the one that just told us the connection is gone.
        await deferLater(reactor, 0, lambda: None)
        await service.stopService()
        if isinstance(front, PlainIO):
            await front.close()
    if status:
        raise SystemExit(status)
