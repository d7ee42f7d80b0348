"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
