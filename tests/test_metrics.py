"""
``--metrics``: the counters, the snapshot, the health check, and the real
server scraped (and parsed with prometheus_client's parser) under load.
"""

from __future__ import annotations

import itertools
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twchat.config import ChatConfig
from twchat.metrics import LAG_INTERVAL, PROBE_TIMEOUT, Monitor, _Lag
from twchat.server import ChatServer

from .support import WAIT
from .support.cluster import Node
from .support.net import free_port
from .support.proc import Twistd, at_prompt
from .support.redisserver import RedisServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


class _Chat:
    """A ChatServer on a fake clock with in-memory connections."""

    def __init__(self, **config: Any) -> None:
        self.clock = Clock()
        self.server = ChatServer(self.clock, ChatConfig(max_per_ip=0, **config))
        self.server.start()
        self.monitor = Monitor(self.server)
        self.monitor.startService()
        self._ports = itertools.count(40000)
        self.factory = self.server.tcp_factory()
        self.open: list[tuple[Any, StringTransport]] = []

    def connect(self, nick: str) -> tuple[Any, StringTransport]:
        address = IPv4Address("TCP", "127.0.0.1", next(self._ports))
        transport = StringTransport(peerAddress=address)
        protocol = self.factory.buildProtocol(address)
        assert protocol is not None
        protocol.makeConnection(transport)
        protocol.dataReceived(f"{nick}\n".encode())
        self.clock.advance(0)
        self.open.append((protocol, transport))
        return protocol, transport

    def settle(self) -> None:
        """Connections the server closed (or cut) are gone."""
        self.clock.advance(0)
        for protocol, transport in list(self.open):
            if transport.disconnecting or getattr(transport, "aborted", False):
                self.open.remove((protocol, transport))
                protocol.connectionLost(Failure(ConnectionDone()))

    def scrape(self) -> Samples:
        from prometheus_client import generate_latest

        self.clock.advance(0)
        return parse(generate_latest(self.monitor.registry()).decode())


class CountingTests(SynchronousTestCase):
    def test_lines_deliveries_bytes_and_people(self) -> None:
        chat = _Chat(flood_rate=0)
        alice, alice_wire = chat.connect("alice")
        chat.connect("bob")
        chat.connect("carol")
        # Joins: bob's reached alice, carol's alice and bob.
        before = chat.scrape()
        self.assertEqual(value(before, "twchat_deliveries_total"), 3)
        self.assertEqual(value(before, "twchat_lines_received_total"), 3)
        alice.dataReceived(b"".join(b"line %d\n" % i for i in range(10)))
        alice.dataReceived(b"/who\n")
        after = chat.scrape()
        self.assertEqual(value(after, "twchat_lines_received_total"), 14)
        self.assertEqual(value(after, "twchat_deliveries_total"), 3 + 2 * 10)
        self.assertEqual(value(after, "twchat_connections", transport="tcp"), 3)
        self.assertEqual(value(after, "twchat_connections", transport="websocket"), 0)
        self.assertEqual(value(after, "twchat_users"), 3)
        self.assertEqual(value(after, "twchat_rooms"), 1)
        self.assertEqual(value(after, "twchat_serving"), 1)
        self.assertNotIn(("twchat_redis_up", ()), after)
        self.assertEqual(value(after, "twchat_info", version="0.1.0"), 1)
        self.assertGreater(value(after, "process_resident_memory_bytes"), 0)
        sent = value(after, "twchat_sent_bytes_total")
        self.assertGreater(sent, len(alice_wire.value()))
        for result in ("ok", "wrong", "locked"):
            self.assertEqual(
                value(after, "twchat_password_checks_total", result=result), 0
            )
        self.assertEqual(value(after, "twchat_accounts_created_total"), 0)
        stats = chat.server.stats
        stats.password_checks.update({"wrong": 3, "locked": 1})
        stats.accounts_created += 2
        stats.moderation.update({"kick": 2, "gban": 1})
        later = chat.scrape()
        self.assertEqual(
            value(later, "twchat_password_checks_total", result="wrong"), 3
        )
        self.assertEqual(
            value(later, "twchat_password_checks_total", result="locked"), 1
        )
        self.assertEqual(value(later, "twchat_accounts_created_total"), 2)
        self.assertEqual(
            value(later, "twchat_moderation_actions_total", action="kick"), 2
        )
        self.assertEqual(
            value(later, "twchat_moderation_actions_total", action="gban"), 1
        )

    def test_disconnects_by_reason_flood_pauses_and_cuts(self) -> None:
        chat = _Chat(flood_rate=1, flood_burst=2, max_recvq=200, max_sendq=2000)
        quitter, _ = chat.connect("quitter")
        flooder, _ = chat.connect("flooder")
        _, slow_wire = chat.connect("slow")
        quitter.dataReceived(b"/quit see you\n")
        flooder.dataReceived(b"x\n" * 5)  # past the burst: paused
        paused = chat.scrape()
        self.assertGreaterEqual(value(paused, "twchat_flood_pauses_total"), 1)
        flooder.dataReceived(b"y" * 100 + b"\n" + b"z" * 150 + b"\n")  # over recvq
        chat.clock.advance(0)
        slow_wire.producer.pauseProducing()  # type: ignore[union-attr]
        talker, _ = chat.connect("talker")
        slow_wire.producer.pauseProducing()  # type: ignore[union-attr]
        for _ in range(40):
            talker.dataReceived(b"%s\n" % (b"w" * 100))
            chat.clock.advance(1.1)
        chat.clock.advance(5)
        chat.settle()
        later, _ = chat.connect("later")
        chat.open.remove((later, later.transport))
        later.connectionLost(Failure(ConnectionDone()))  # the peer closed
        samples = chat.scrape()
        reasons = {
            reason: value(samples, "twchat_disconnects_total", reason=reason)
            for reason in ("quit", "excess flood", "send queue exceeded", "closed")
        }
        self.assertEqual(reasons["quit"], 1)
        self.assertEqual(reasons["excess flood"], 1)
        self.assertEqual(reasons["send queue exceeded"], 1)
        self.assertEqual(reasons["closed"], 1)
        self.assertEqual(value(samples, "twchat_send_queue_cuts_total"), 1)
        self.assertEqual(value(samples, "twchat_connections", transport="tcp"), 1)


class LagTests(SynchronousTestCase):
    def test_how_late_the_reactor_runs_a_call(self) -> None:
        clock = Clock()
        lag = _Lag(clock)
        lag.start()
        clock.advance(LAG_INTERVAL)
        self.assertEqual(lag.last, 0)
        clock.advance(LAG_INTERVAL + 0.3)  # a turn that blocked for 0.3 s
        self.assertAlmostEqual(lag.last, 0.3)
        for _ in range(4):
            clock.advance(LAG_INTERVAL)
        self.assertEqual(lag.last, 0)
        self.assertAlmostEqual(lag.worst, 0.3)  # remembered for a minute
        clock.pump([LAG_INTERVAL] * 130)
        self.assertEqual(lag.worst, 0)
        lag.stop()


class _Pool:
    """A state file whose writes fail, or never finish."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def runInteraction(self, *args: object) -> Deferred[None]:
        if self.error is not None:
            return fail(self.error)
        return Deferred()


class HealthTests(SynchronousTestCase):
    def health(self, chat: _Chat) -> str | None:
        d = Deferred.fromCoroutine(chat.monitor.health())
        chat.clock.advance(PROBE_TIMEOUT + 0.1)
        result: str | None = self.successResultOf(d)
        return result

    def test_healthy_without_a_state_file(self) -> None:
        self.assertIsNone(self.health(_Chat()))

    def test_a_state_file_that_takes_no_writes(self) -> None:
        chat = _Chat()
        chat.server.state = _Pool(OSError("disk I/O error"))  # type: ignore[assignment]
        self.assertEqual(self.health(chat), "state file not writable: disk I/O error")
        chat.server.state = _Pool(None)  # type: ignore[assignment]
        self.assertEqual(
            self.health(chat),
            f"state file not writable: no answer in {PROBE_TIMEOUT:g} s",
        )

    def test_shutting_down(self) -> None:
        chat = _Chat()
        chat.server.lifecycle.closing = True
        self.assertEqual(self.health(chat), "shutting down")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_scraped_while_a_load_runs(tmp_path: Path) -> None:
    port, metrics = free_port(), free_port()
    args = [
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
        "--metrics",
        f"tcp:{metrics}:interface=127.0.0.1",
        "--flood-rate",
        "0",
        "--db",
        str(tmp_path / "state.sqlite3"),
    ]
    url = f"http://127.0.0.1:{metrics}"
    with Twistd(tmp_path, args) as server:
        server.wait_for_port(port)
        receivers = [at_prompt(port) for _ in range(3)]
        for i, user in enumerate(receivers):
            user.send(f"r{i}")
        sender = at_prompt(port)
        sender.send("sender")
        sender.line()
        lines = 2000
        scrapes: list[Samples] = []

        def scrape_meanwhile() -> None:
            while len(scrapes) < 5:
                status, text = _get(f"{url}/metrics")
                assert status == 200
                scrapes.append(parse(text))

        scraper = threading.Thread(target=scrape_meanwhile)
        scraper.start()
        for i in range(lines):
            sender.send(f"line {i}")
        for user in receivers:
            user.until(f"<sender> line {lines - 1}")
        scraper.join(WAIT)
        assert len(scrapes) == 5
        seen = [value(s, "twchat_lines_received_total") for s in scrapes]
        assert seen == sorted(seen)  # counters only grow
        samples = parse(_get(f"{url}/metrics")[1])
        # Four nicknames and the sender's lines; each line to 3 receivers,
        # plus the joins (r1 to r0; r2 to r0, r1; sender to all three).
        assert value(samples, "twchat_lines_received_total") == 4 + lines
        assert value(samples, "twchat_deliveries_total") == 6 + 3 * lines
        assert value(samples, "twchat_connections", transport="tcp") == 4
        assert value(samples, "twchat_users") == 4
        assert value(samples, "twchat_sent_bytes_total") > lines * 3 * 10
        assert value(samples, "twchat_reactor_lag_max_seconds") < 1

        def history_written() -> bool:
            # Commits come every 100 ms: the lines may all be out before.
            found = parse(_get(f"{url}/metrics")[1])
            return value(found, "twchat_history_writes_total") >= 1

        _until(history_written)
        receivers[0].send("/quit bye")
        receivers[0].until("*** Goodbye!")

        def quit_counted() -> bool:
            found = parse(_get(f"{url}/metrics")[1])
            return value(found, "twchat_disconnects_total", reason="quit") == 1

        _until(quit_counted)
        assert _get(f"{url}/healthz") == (200, "ok\n")
        assert _get(f"{url}/")[0] == 200
    log = "".join(server.log)
    assert "GET /metrics" not in log  # scrapes are not logged
    assert "Traceback" not in log


def test_healthz_follows_redis(
    nodes: Callable[..., list[Node]], redis: RedisServer
) -> None:
    metrics = free_port()
    (node,) = nodes(1, "--metrics", f"tcp:{metrics}:interface=127.0.0.1")
    url = f"http://127.0.0.1:{metrics}"
    assert _get(f"{url}/healthz") == (200, "ok\n")
    samples = parse(_get(f"{url}/metrics")[1])
    assert value(samples, "twchat_redis_up") == 1
    assert 0 < value(samples, "twchat_redis_round_trip_seconds") < 1
    redis.stop()
    status, text = _get(f"{url}/healthz")
    assert status == 503
    assert text.startswith("unavailable: Redis does not answer: "), text

    def down() -> bool:
        return value(parse(_get(f"{url}/metrics")[1]), "twchat_redis_up") == 0

    _until(down)
    redis.start()
    _until(lambda: _get(f"{url}/healthz") == (200, "ok\n"))

    def up() -> bool:
        return value(parse(_get(f"{url}/metrics")[1]), "twchat_redis_up") == 1

    _until(up)
    assert node.user("back")  # and chat works again
