"""
One node's connection to Redis: ordered writes, stream reads, outages.

Runs on Twisted's asyncio reactor, whose event loop is asyncio's, so the
official ``redis.asyncio`` client and Twisted's transports share one
thread and need no locks.

Writes keep their order: they queue up and leave in one pipeline at a
time (each user's lines, joins and leaves reach the streams in the order
the user made them). Reads are one blocking ``XREAD`` over the streams of
the rooms this node follows plus the node's own inbox; each stream's last
ID is remembered, so after an outage reading resumes where it stopped and
nothing written meanwhile is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from twisted.logger import Logger

from ...stats import WriteStats
from .packing import pack_in_c

__all__ = [
    "BACKOFF_MAX",
    "POOL_SIZE",
    "Command",
    "Entry",
    "RedisLink",
    "UnansweredError",
    "connect",
    "redacted",
]

#: A stream entry as redis-py gives it: (ID, fields).
Entry = tuple[str, dict[str, str]]

#: Milliseconds one XREAD waits for news before it is asked again.
READ_BLOCK_MS = 2000
#: Entries taken from all streams in one XREAD.
READ_COUNT = 1000
#: Seconds without an answer from Redis before the link counts as lost.
SOCKET_TIMEOUT = 5.0
#: Reconnection delays grow from BACKOFF_START to BACKOFF_MAX seconds.
BACKOFF_START = 0.2
BACKOFF_MAX = 5.0
#: Writes that wait while one pipeline is out, at most, per pipeline.
BATCH_MAX = 2000
#: Connections a client keeps to Redis, at most: commands beyond that many
#: at once (a crowd arriving at a node) wait for one. redis-py's own pool
#: refused the 101st with "Too many connections", and the node took that
#: for an outage. 50 a node leave Redis's default 10,000 clients to 200.
POOL_SIZE = 50


def redacted(url: str) -> str:
    """``url`` fit for a log: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def connect(
    url: str,
    timeout: float = SOCKET_TIMEOUT,
    name: str = "",
    *,
    timed_replies: bool = True,
) -> Redis:
    """
    A client for ``url`` that fails fast instead of retrying on its own.

    A retried XADD could be written twice; the link handles outages
    itself (and tells the user when a line did not go out). At most
    POOL_SIZE commands are out at once; more wait for a connection.
    Without ``timed_replies`` a reply is waited for as long as it takes:
    the caller sets a deadline of its own.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        # Waiting longer for a connection than for an answer means that
        # Redis is not answering.
        timeout=timeout,
        decode_responses=True,
        socket_timeout=timeout if timed_replies else None,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        # A pooled connection idle this long is checked before use: a
        # Redis restart between two commands is noticed, not failed on.
        health_check_interval=1,
        retry=Retry(NoBackoff(), 0),
        # Shown by CLIENT LIST, so an operator can tell whose connection it is.
        client_name=name or None,
    )
    client: Redis = Redis.from_pool(pool)
    pack_in_c(client)
    return client


class UnansweredError(RedisConnectionError):
    """
    Redis was lost while a pipeline was out: each of its commands may or
    may not have been carried out (a reply can die with the connection).
    """


#: Adds one command to a pipeline.
Command = Callable[[Pipeline], Any]


def _retrieved(future: asyncio.Future[Any]) -> None:
    # An outage is logged once by the link; the error itself is expected.
    if not future.cancelled():
        future.exception()


class RedisLink:
    """
    Ordered writes, followed streams, and knowing whether Redis is there.

    ``deliver(stream, entries)`` is called for every batch read, in stream
    order; ``recovered()`` once Redis answers again after an outage (and on
    first contact).
    """

    log = Logger()

    def __init__(
        self,
        url: str,
        inbox: str,
        deliver: Callable[[str, list[Entry]], None],
        recovered: Callable[[], object],
        name: str = "twchat",
    ) -> None:
        #: For the log: without the password.
        self.url = redacted(url)
        # Typed Any: redis-py types replies as bytes | str whatever
        # decode_responses says; with it, they are str.
        self.client: Any = connect(url, name=name)
        # The writes' pipelines: one deadline for a whole pipeline (in
        # ``_send``). redis-py times each reply with an asyncio timer of its
        # own, which was half of what a pipelined command cost a node.
        self._writer: Any = connect(url, name=f"{name}-writer", timed_replies=False)
        # XREAD blocks: its own connection, with room for the block.
        self._reader: Any = connect(
            url, SOCKET_TIMEOUT + READ_BLOCK_MS / 1000, name=f"{name}-reader"
        )
        self._deliver = deliver
        self._recovered = recovered
        #: Last ID seen per followed stream (the inbox always included).
        self.cursors: dict[str, str] = {inbox: "$"}
        self.inbox = inbox
        #: False from the first failed call until Redis answers again.
        self.up = False
        self._lost_at: float | None = None
        #: The first contact is "connected", even after failed attempts.
        self._connected_once = False
        self._queue: list[tuple[Command, asyncio.Future[Any]]] = []
        #: For --metrics: commands waiting, and each pipeline's round trip.
        self.writes = WriteStats(lambda: len(self._queue))
        self._writing: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._running = False

    # Writing

    def write(self, command: Command) -> asyncio.Future[Any]:
        """
        Queue one command; it is sent after every command queued before it.

        The future gets the command's reply, or its error.
        """
        future: asyncio.Future[Any] = asyncio.get_event_loop().create_future()
        if not self.up:
            # Known to be unreachable: fail now rather than try and wait;
            # what must not be lost is kept by the caller for recovery.
            future.set_exception(RedisConnectionError("Redis is unreachable"))
            return future
        self._queue.append((command, future))
        if self._writing is None:
            self._writing = asyncio.ensure_future(self._write_all())
        return future

    def send(self, command: Command) -> None:
        """Queue a command whose reply nobody needs (failures are logged)."""
        self.write(command).add_done_callback(_retrieved)

    async def drained(self) -> None:
        """Wait until everything queued so far has been sent (or failed)."""
        while self._writing is not None:
            await asyncio.shield(self._writing)

    async def _write_all(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:BATCH_MAX]
                del self._queue[:BATCH_MAX]
                await self._send(batch)
        finally:
            self._writing = None

    async def ping(self) -> float:
        """Round trip of a PING, in seconds; raises if Redis does not answer."""
        loop = asyncio.get_event_loop()
        started = loop.time()
        await self.client.ping()
        return loop.time() - started

    async def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        started = asyncio.get_event_loop().time()
        try:
            # Cancelled at the deadline, redis-py drops the connection: a
            # reply that comes later cannot be read as another's.
            async with asyncio.timeout(SOCKET_TIMEOUT):
                async with self._writer.pipeline(transaction=False) as pipe:
                    for command, _ in batch:
                        queued = command(pipe)
                        if inspect.isawaitable(queued):
                            await queued  # scripts queue themselves this way
                    replies = await pipe.execute(raise_on_error=False)
        except Exception as e:
            failed: Exception = e
            if isinstance(e, RedisError | OSError):
                self.lost(e)
                failed = UnansweredError(f"no answer from Redis: {e}")
                failed.__cause__ = e
            else:
                self.log.failure("writing to Redis")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failed)
            return
        self.writes.wrote(asyncio.get_event_loop().time() - started)
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    # Reading

    def follow(self, stream: str, after: str) -> None:
        """Read ``stream`` from the entry after ``after`` on."""
        self.cursors.setdefault(stream, after)

    def unfollow(self, stream: str) -> None:
        self.cursors.pop(stream, None)

    def start(self) -> None:
        self._running = True
        self._reading = asyncio.ensure_future(self._read_all())

    async def _read_all(self) -> None:
        delay = BACKOFF_START
        while self._running:
            try:
                if not self.up:
                    await self._reader.ping()
                    # Pooled connections from before the outage are dead.
                    await self.client.connection_pool.disconnect()
                    await self._writer.connection_pool.disconnect()
                    self._back()
                if self.cursors[self.inbox] == "$":
                    # "$" would skip what arrives between two reads.
                    newest = await self._reader.xrevrange(self.inbox, count=1)
                    self.cursors[self.inbox] = newest[0][0] if newest else "0-0"
                reply = await self._reader.xread(
                    dict(self.cursors), count=READ_COUNT, block=READ_BLOCK_MS
                )
            except (RedisError, OSError) as e:
                self.lost(e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            delay = BACKOFF_START
            for stream, entries in reply or ():
                if not entries:
                    continue
                if stream in self.cursors:
                    self.cursors[stream] = entries[-1][0]
                    try:
                        self._deliver(stream, entries)
                    except Exception:
                        self.log.failure(
                            "delivering entries of {stream}", stream=stream
                        )

    # Outages

    def lost(self, error: BaseException) -> None:
        """Note that Redis did not answer (logged once per outage)."""
        if self.up or self._lost_at is None:
            loop = asyncio.get_event_loop()
            self._lost_at = loop.time()
            self.log.warn(
                "lost contact with Redis at {url}: {error}; users stay "
                "connected, their lines are refused until it is back"
                if self._connected_once
                # Started before Redis: nothing was lost yet.
                else "cannot reach Redis at {url}: {error}; users may connect, "
                "their lines are refused until it answers",
                url=self.url,
                error=error,
            )
        self.up = False

    def _back(self) -> None:
        loop = asyncio.get_event_loop()
        if not self._connected_once:
            self._connected_once = True
            self.log.info("connected to Redis at {url}", url=self.url)
        else:
            lost_at = self._lost_at if self._lost_at is not None else loop.time()
            self.log.info(
                "Redis at {url} is back after {seconds:.1f} s; resuming streams",
                url=self.url,
                seconds=loop.time() - lost_at,
            )
        self._lost_at = None
        self.up = True
        self._recovered()

    async def close(self) -> None:
        self._running = False
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reading
        await self.client.aclose()
        await self._writer.aclose()
        await self._reader.aclose()
