"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from .support.cluster import Node
from .support.hubs import BACKENDS, Hubs
from .support.net import free_port
from .support.proc import Twistd
from .support.redisserver import RedisServer


@pytest.fixture(autouse=True)
def _in_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files a test makes (trial's mktemp, history databases) stay out of the tree."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def twistd(tmp_path: Path) -> Iterator[tuple[int, Twistd]]:
    """The real ``twistd -n chat`` on a free loopback port."""
    port = free_port()
    with Twistd(tmp_path, ["--port", f"tcp:{port}:interface=127.0.0.1"]) as server:
        server.wait_for_port(port)
        yield port, server


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of the test's own, on a random loopback port."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def hubs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hubs]:
    """Hubs over each backend in turn: one process, one or two Redis nodes."""
    url = ""
    if request.param != "memory":
        url = request.getfixturevalue("redis").url
    chat = Hubs(request.param, url, tmp_path)
    try:
        yield chat
    finally:
        chat.close()


@pytest.fixture
def nodes(tmp_path: Path, redis: RedisServer) -> Iterator[Callable[..., list[Node]]]:
    """``nodes(N, *options)``: N ``twistd`` chat processes sharing ``redis``."""
    with ExitStack() as stack:

        def start(count: int, *more: str) -> list[Node]:
            started = []
            for _ in range(count):
                port = free_port()
                args = [
                    "--port",
                    f"tcp:{port}:interface=127.0.0.1",
                    "--redis",
                    redis.url,
                    "--flood-rate",
                    "0",
                    *more,
                ]
                process = stack.enter_context(
                    Twistd(tmp_path, args, twistd_args=("-r", "asyncio"))
                )
                started.append(Node(process, port))
            for node in started:
                node.process.wait_for_port(node.port)
                node.process.wait_for_log("connected to Redis")
            return started

        yield start
