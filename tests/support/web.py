"""A WebSocket chat user for tests, on Twisted's own WebSocket client."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.python.failure import Failure
from twisted.web.websocket import WebSocketClientEndpoint, WebSocketTransport

from . import WAIT


class WSUser:
    """Collects the JSON events the server sends, one at a time."""

    def __init__(self) -> None:
        self.events: DeferredQueue[dict[str, Any]] = DeferredQueue()
        self.transport: WebSocketTransport | None = None
        self.closed: Deferred[None] = Deferred()

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        for line in message.split("\n"):
            if line:
                self.events.put(json.loads(line))

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        raise AssertionError("the server sends text messages")

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self.closed.callback(None)

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.sendTextMessage(text)

    async def event(self) -> dict[str, Any]:
        d = self.events.get()
        d.addTimeout(WAIT, reactor)
        return await d

    async def until(self, kind: str) -> list[dict[str, Any]]:
        seen = []
        while True:
            event = await self.event()
            seen.append(event)
            if event["type"] == kind:
                return seen


class _Factory:
    def __init__(self, user: WSUser) -> None:
        self.user = user

    def buildProtocol(self, url: str) -> WSUser:
        return self.user


async def ws_connect(port: int) -> WSUser:
    user = WSUser()
    endpoint = WebSocketClientEndpoint.new(reactor, f"http://127.0.0.1:{port}/ws")
    d = Deferred.fromCoroutine(endpoint.connect(_Factory(user)))
    d.addTimeout(WAIT, reactor)
    await d
    await user.until("prompt")
    return user


async def ws_join(port: int, nick: str) -> WSUser:
    user = await ws_connect(port)
    user.send(nick)
    event = await user.event()
    assert event["type"] == "registered", event
    return user
