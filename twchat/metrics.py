"""
``--metrics ENDPOINT``: Prometheus metrics at ``/metrics`` and a health
check at ``/healthz``, on a port of their own.

The hot paths only bump plain counters (``twchat.stats``); everything here
happens when Prometheus scrapes: a snapshot of the server taken on the
reactor thread (prometheus_client's Twisted resource collects in a worker
thread), turned into metric families.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from . import __version__
from .statefile import probe_state
from .stats import DISCONNECT_REASONS, PASSWORD_CHECKS

if TYPE_CHECKING:
    from .server import ChatServer

__all__ = ["LAG_INTERVAL", "PROBE_TIMEOUT", "Monitor", "Snapshot", "metrics_site"]

#: Seconds between the reactor's lag measurements.
LAG_INTERVAL = 0.5
#: The worst lag is kept over this many seconds.
LAG_WINDOW = 60.0
#: Seconds between probes of Redis (its round trip, for the metrics).
PROBE_INTERVAL = 5.0
#: A store that has not answered in this long is unhealthy.
PROBE_TIMEOUT = 2.0

_TRANSPORTS = ("tcp", "tls", "unix", "websocket", "websocket-tls")


@dataclass(frozen=True)
class Snapshot:
    """The server's figures at one moment, read on the reactor thread."""

    connections: dict[str, int]
    users: int
    rooms: int
    lines_in: int
    deliveries: int
    bytes_out: int
    flood_pauses: int
    sendq_cuts: int
    disconnects: dict[str, int]
    password_checks: dict[str, int]
    accounts_created: int
    moderation: dict[str, int]
    writes_waiting: int
    writes: int
    write_seconds: float
    redis: bool
    redis_up: bool
    redis_round_trip: float | None
    lag: float
    lag_max: float
    serving: bool = field(default=True)


class _Lag:
    """How late the reactor runs a call due every ``LAG_INTERVAL``."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._due = 0.0
        self.last = 0.0
        self._window: deque[tuple[float, float]] = deque()
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    def start(self) -> None:
        self._due = self._clock.seconds() + LAG_INTERVAL
        self._loop.start(LAG_INTERVAL, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        now = self._clock.seconds()
        self.last = max(0.0, now - self._due)
        self._due = now + LAG_INTERVAL
        window = self._window
        window.append((now, self.last))
        while window and window[0][0] < now - LAG_WINDOW:
            window.popleft()

    @property
    def worst(self) -> float:
        return max((lag for _, lag in self._window), default=self.last)


class Monitor(Service):
    """Measures the reactor's lag and Redis's round trip; answers health."""

    log = Logger()

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self._clock = server.reactor
        self._lag = _Lag(server.reactor)
        self._probe = LoopingCall(self._probe_redis)
        self._probe.clock = server.reactor
        self.round_trip: float | None = None

    def startService(self) -> None:
        super().startService()
        self._lag.start()
        if self._redis:
            self._probe.start(PROBE_INTERVAL, now=True)

    def stopService(self) -> None:
        super().stopService()
        self._lag.stop()
        if self._probe.running:
            self._probe.stop()

    @property
    def _redis(self) -> bool:
        return bool(self.server.hub.backend.shared)

    def _probe_redis(self) -> Deferred[None]:
        d = self._timed(self.server.hub.backend.probe())

        def measured(result: float | Failure) -> None:
            self.round_trip = None if isinstance(result, Failure) else result

        return d.addBoth(measured)

    def _timed(self, d: Deferred[float]) -> Deferred[float]:
        return d.addTimeout(PROBE_TIMEOUT, self._clock)

    # Health

    async def health(self) -> str | None:
        """Why the server is not healthy, or None if it is."""
        server = self.server
        if server.lifecycle.closing:
            return "shutting down"
        if not self.running:
            return "not started"
        try:
            if self._redis:
                self.round_trip = await self._timed(server.hub.backend.probe())
            elif server.state is not None:
                await self._timed(probe_state(server.state, self._clock))
        except Exception as e:
            what = "Redis does not answer" if self._redis else "state file not writable"
            return f"{what}: {_reason(e)}"
        return None

    # Metrics

    def snapshot(self) -> Snapshot:
        server = self.server
        hub, stats = server.hub, server.stats
        connections = Counter(c.transport_name for c in server.pool.connections)
        writes = hub.backend.writes
        return Snapshot(
            connections=dict(connections),
            users=len(hub.users),
            rooms=len(hub.rooms),
            lines_in=stats.lines_in,
            deliveries=stats.deliveries,
            bytes_out=stats.bytes_out,
            flood_pauses=stats.flood_pauses,
            sendq_cuts=stats.sendq_cuts,
            disconnects=dict(stats.disconnects),
            password_checks=dict(stats.password_checks),
            accounts_created=stats.accounts_created,
            moderation=dict(stats.moderation),
            writes_waiting=writes.waiting,
            writes=writes.writes,
            write_seconds=writes.seconds,
            redis=self._redis,
            redis_up=bool(hub.backend.up),
            redis_round_trip=self.round_trip,
            lag=self._lag.last,
            lag_max=self._lag.worst,
            serving=not server.lifecycle.closing,
        )

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_ChatCollector(self._reactor_snapshot))
        ProcessCollector(registry=registry)
        return registry

    def _reactor_snapshot(self) -> Snapshot:
        # On a worker thread (a scrape), ask the reactor's; with no reactor
        # running (tests), there is no other thread to race with.
        running: object = getattr(threadable, "ioThread", None)
        if running is None or threadable.isInIOThread():
            return self.snapshot()
        reactor = cast(IReactorFromThreads, self._clock)
        snapshot: Snapshot = blockingCallFromThread(reactor, self.snapshot)
        return snapshot


def _reason(e: BaseException) -> str:
    # addTimeout fails with Twisted's own TimeoutError, not the builtin.
    if isinstance(e, defer.TimeoutError | TimeoutError):
        return f"no answer in {PROBE_TIMEOUT:g} s"
    return str(e) or type(e).__name__


class _ChatCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # collected only when scraped: the server's state is live

    def collect(self) -> Iterator[Metric]:
        yield from families(self._snapshot())


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _counted(
    name: str, doc: str, label: str, counts: dict[str, int], keys: Iterable[str]
) -> CounterMetricFamily:
    """A counter per ``label`` value: each of ``keys``, zero if never counted."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for key in keys:
        family.add_metric([key], counts.get(key, 0))
    return family


def families(s: Snapshot) -> Iterator[Metric]:
    """The metric families of one snapshot."""
    info = GaugeMetricFamily("twchat_info", "twchat's version", labels=["version"])
    info.add_metric([__version__], 1)
    yield info
    connections = GaugeMetricFamily(
        "twchat_connections", "Open connections, by transport", labels=["transport"]
    )
    for transport in _TRANSPORTS:
        connections.add_metric([transport], s.connections.get(transport, 0))
    yield connections
    yield _gauge("twchat_users", "Users registered (chatting) here", s.users)
    yield _gauge("twchat_rooms", "Rooms with someone in them here", s.rooms)
    yield _counter("twchat_lines_received", "Lines users sent, handled", s.lines_in)
    yield _counter(
        "twchat_deliveries", "Lines handed to receivers by broadcasts", s.deliveries
    )
    yield _counter("twchat_sent_bytes", "Bytes handed to connections", s.bytes_out)
    yield _counted(
        "twchat_disconnects",
        "Connections ended, by reason",
        "reason",
        s.disconnects,
        DISCONNECT_REASONS,
    )
    yield _counted(
        "twchat_password_checks",
        "Passwords checked (logins, /password), by result",
        "result",
        s.password_checks,
        PASSWORD_CHECKS,
    )
    yield _counter("twchat_accounts_created", "Accounts made here", s.accounts_created)
    yield _counted(
        "twchat_moderation_actions",
        "Moderation actions taken here, by action",
        "action",
        s.moderation,
        sorted(s.moderation),
    )
    yield _counter(
        "twchat_flood_pauses", "Times flood control paused a reader", s.flood_pauses
    )
    yield _counter(
        "twchat_send_queue_cuts",
        "Connections cut for not reading what was sent to them",
        s.sendq_cuts,
    )
    yield _gauge(
        "twchat_history_write_queue",
        "History lines (Redis: commands) waiting to be written",
        s.writes_waiting,
    )
    yield _counter(
        "twchat_history_writes",
        "Writes to the store (SQLite commits, Redis pipelines)",
        s.writes,
    )
    yield _counter(
        "twchat_history_write_seconds",
        "Time those writes took, from the reactor's view",
        s.write_seconds,
    )
    if s.redis:
        yield _gauge("twchat_redis_up", "1 while Redis answers", int(s.redis_up))
        if s.redis_round_trip is not None:
            yield _gauge(
                "twchat_redis_round_trip_seconds",
                "Round trip of the last PING",
                s.redis_round_trip,
            )
    yield _gauge(
        "twchat_reactor_lag_seconds",
        f"How late a call due every {LAG_INTERVAL:g} s last ran",
        s.lag,
    )
    yield _gauge(
        "twchat_reactor_lag_max_seconds",
        f"The worst of those over the last {LAG_WINDOW:g} s",
        s.lag_max,
    )
    yield _gauge("twchat_serving", "1 unless shutting down", int(s.serving))


class _Health(Resource):
    isLeaf = True

    def __init__(self, monitor: Monitor) -> None:
        super().__init__()
        self._monitor = monitor

    def render_GET(self, request: Request) -> Any:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        d = Deferred.fromCoroutine(self._monitor.health())

        def answer(why: str | None) -> None:
            if why is not None:
                request.setResponseCode(503)
            text = "ok\n" if why is None else f"unavailable: {why}\n"
            if not request.finished and not request._disconnected:
                request.write(text.encode())
                request.finish()

        d.addCallback(answer)
        return NOT_DONE_YET


class _Root(Resource):
    def getChild(self, path: bytes, request: Request) -> Resource:
        return self if path == b"" else super().getChild(path, request)

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"twchat: /metrics (Prometheus), /healthz\n"


def metrics_site(monitor: Monitor) -> Site:
    """The metrics port's site: /metrics and /healthz."""
    from prometheus_client.twisted import MetricsResource

    root = _Root()
    root.putChild(b"metrics", MetricsResource(monitor.registry()))
    root.putChild(b"healthz", _Health(monitor))
    site = _QuietSite(root)
    site.noisy = False
    site.displayTracebacks = False
    return site


class _QuietSite(Site):
    def log(self, request: Any) -> None:
        pass  # a scrape every few seconds is not news
