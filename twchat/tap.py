"""
``twistd chat``: command-line options and the service tree.

Shaped like magic-wormhole-mailbox-server's ``server_tap``: an ``Options``
class and ``makeService`` returning the server's state as a ``MultiService``
(``ChatServer``) with a listening child service per port.
"""

from __future__ import annotations

import gc
import math
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from twisted.application import strports
from twisted.application.service import IService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorCore,
    IReactorFromThreads,
    IReactorThreads,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from . import version_line
from ._address import describe_address
from .accounts import IAccountStore
from .accounts.hashing import Hasher
from .accounts.logins import Logins
from .accounts.sqlite import SQLiteAccounts
from .backend.redis.store import NODE_TTL, STREAM_MAX
from .config import HISTORY_KEEP, ChatConfig, option_fields, option_name
from .config_file import ConfigFileError, config_path, read_config
from .history import History
from .hub import NODE_LOST
from .moderation.sqlite import SQLiteModeration
from .moderation.store import IModerationStore
from .motd import MessageOfTheDay, MotdError, read_motd
from .room import PresencePolicy, room_error
from .server import ChatServer
from .sighup import Reloadable, ReloadService
from .startup import StartupError, check_listeners, listen_failure
from .statefile import open_pool, prepare_state
from .transports.tls import (
    ReloadableCertificate,
    is_tls_description,
    parse_tls_description,
    tls_endpoint,
)

__all__ = ["DEFAULT_PORT", "Options", "makeService"]

DEFAULT_PORT = "tcp:1234"
DEFAULT_DB = "twchat.sqlite3"

log = Logger()

_defaults = ChatConfig()


def _number(name: str, kind: type[int] | type[float]) -> Callable[[str], Any]:
    """Read an option's value as KIND, or refuse it in one line naming it."""
    what = "a whole number" if kind is int else "a number"

    def coerce(value: str) -> int | float:
        try:
            number = kind(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):  # nan or inf would pass every check
            raise StartupError(f"--{name} must be {what}, not {value!r}")
        return number

    return coerce


def _numbers_named(parameters: list[list[Any]]) -> list[list[Any]]:
    """Every int or float option read by ``_number``, which names it."""
    return [
        [*p[:4], _number(p[0], p[4])] if p[4:] and p[4] in (int, float) else p
        for p in parameters
    ]


def _config_options() -> list[list[Any]]:
    """The options that set ChatConfig fields, from the fields themselves."""
    return [
        [
            option_name(setting),
            None,
            setting.default,
            setting.metadata["help"],
            None if isinstance(setting.default, str) else type(setting.default),
        ]
        for setting in option_fields()
    ]


def _check(name: str, check: str, value: Any) -> None:
    """Refuse a config option's value, naming the option, unless it passes."""
    if check == "at least 1" and value < 1:
        raise usage.UsageError(f"--{name} must be at least 1, not {value}")
    if check == "positive" and value <= 0:
        raise usage.UsageError(f"--{name} must be positive")
    if check == "not negative" and value < 0:
        raise usage.UsageError(f"--{name} must not be negative")
    if check == "at least 16 bytes" and value < 16:
        raise usage.UsageError(f"--{name} must be at least 16 bytes")
    if check == "history" and not 0 <= value <= HISTORY_KEEP:
        raise usage.UsageError(f"--{name} must be between 0 and {HISTORY_KEEP}")
    if check == "room":
        error = room_error(value)
        if error is not None:
            raise usage.UsageError(f"--{name}: {error}")


def _endpoint(description: str) -> str:
    """A bare port number means tcp:PORT (serverFromString refuses it)."""
    return f"tcp:{description}" if description.isdigit() else description


#: The options given more than once, each time adding to a list.
_REPEATABLE = ("port", "web", "web-origin", "web-host")


class Options(usage.Options):
    synopsis = "Usage: twistd [-n] chat [--port ENDPOINT]... [options]"
    longdesc = (
        "Run the twchat chat server. Users connect with nc, telnet or "
        "python -m twchat.client, choose a nickname and talk."
    )
    optParameters: list[list[Any]] = [
        [
            "config",
            None,
            None,
            "Read options from this TOML file: the long options' names as "
            "keys (max-clients = 500, no-history = true, port = "
            '["tcp:1234", "tcp6:1234"] for repeatable ones); the command '
            "line overrides it. See contrib/twchat.toml.",
        ],
        *_config_options(),
        [
            "db",
            None,
            DEFAULT_DB,
            "The SQLite state file: every room's history and the accounts "
            "(created if missing; a history file from an older twchat is "
            "upgraded in place). Not used with --redis. --history-db is the "
            "same option's old name.",
        ],
        [
            "motd",
            None,
            None,
            "A UTF-8 text file shown to each user on arriving (and by /motd): "
            "the rules, news, links; at most 40 lines. SIGHUP reads it again. "
            "[default: none]",
        ],
        [
            "registration",
            None,
            "open",
            "open: users make accounts with /register; closed: only "
            "python -m twchat.admin does.",
        ],
        [
            "history-max-age",
            None,
            0.0,
            "Seconds after which history lines are deleted; 0 keeps them.",
            float,
        ],
        [
            "history-max-rows",
            None,
            100000,
            "History lines kept per room; older ones are deleted. 0: no limit.",
            int,
        ],
        [
            "presence-batch-above",
            None,
            _defaults.presence.batch_above,
            "In a room of more people than this, joins and leaves are summed "
            "up in one line per --presence-interval instead of one line each.",
            int,
        ],
        [
            "presence-interval",
            None,
            _defaults.presence.interval,
            "Seconds between join/leave summaries in big rooms.",
            float,
        ],
    ]

    optFlags = [
        ["no-history", None, "Keep no history: no replay, no /history."],
        [
            "require-account",
            None,
            "Only registered nicknames may chat (no guests).",
        ],
    ]

    optParameters += [
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics at /metrics and a health check at "
            "/healthz on this endpoint, e.g. tcp:9100:interface=127.0.0.1 "
            "(keep it private: it is not for the public). [default: off]",
        ],
        [
            "redis",
            None,
            None,
            "Share rooms, users and history with other twchat processes "
            "through Redis at this URL (redis://HOST:PORT/DB). Needs Twisted's "
            "asyncio reactor: twistd -r asyncio -n chat --redis URL. "
            "History then lives in the room streams, trimmed by "
            "--history-max-rows and --history-max-age; accounts are kept "
            "in Redis too (run Redis with persistence); --db does not apply. "
            "[default: off]",
        ],
        [
            "node-ttl",
            None,
            NODE_TTL,
            "Redis mode: seconds after its last heartbeat a silent node's "
            "users are announced as gone and their nicknames freed.",
            int,
        ],
    ]
    optParameters = _numbers_named(optParameters)

    def __init__(self) -> None:
        super().__init__()
        for name in _REPEATABLE:
            self[name] = []
        self._file_lists: dict[str, list[str]] = {}

    def parseOptions(self, options: list[str] | None = None) -> None:
        """The config file's options first, so the command line's win."""
        argv = sys.argv[1:] if options is None else list(options)
        try:
            path = config_path(argv)
            if path is not None:
                parameters = [str(p[0]) for p in self.optParameters]
                flags = [str(f[0]) for f in self.optFlags]
                found = read_config(path, parameters, flags, _REPEATABLE)
                argv = found.words + argv
                self._file_lists = found.lists
        except ConfigFileError as e:
            raise StartupError(str(e)) from None
        super().parseOptions(argv)

    def opt_version(self) -> None:
        """Print twchat's version and exit."""
        print(version_line("twistd chat"))
        raise SystemExit(0)

    def opt_port(self, description: str) -> None:
        self["port"].append(_endpoint(description))

    # usage.Options prints a method's docstring verbatim as its help.
    opt_port.__doc__ = (
        "Where to listen: a port number (meaning tcp:PORT) or a Twisted "
        "endpoint string such as tcp:1234:interface=127.0.0.1, tcp6:1234, "
        "unix:/tmp/chat.sock or ssl:6697:privateKey=key.pem:certKey=cert.pem. "
        "Give it more than once to listen on several. [default: 1234]"
    )

    opt_p = opt_port

    def opt_web(self, description: str) -> None:
        self["web"].append(_endpoint(description))

    opt_web.__doc__ = (
        "Also serve the browser chat (a page and its WebSocket) here: a port "
        "number or an endpoint string such as tcp:8080:interface=127.0.0.1 or "
        "ssl:8443:privateKey=key.pem:certKey=cert.pem. Repeatable. [default: off]"
    )

    def opt_web_origin(self, origin: str) -> None:
        self["web-origin"].append(origin)

    opt_web_origin.__doc__ = (
        "Let pages from this origin (e.g. https://chat.example) open the "
        "WebSocket; repeatable; * allows any. [default: the page's own origin]"
    )

    def opt_web_host(self, name: str) -> None:
        self["web-host"].append(name)

    opt_web_host.__doc__ = (
        "A host name the web port answers to (requests naming another host "
        "get 421, so pages on other names that resolve here cannot chat); "
        "repeatable. [default: localhost, this machine's names and the "
        "address connected to]"
    )

    def opt_history_db(self, path: str) -> None:
        self["db"] = path

    opt_history_db.__doc__ = "The old name of --db."

    def postOptions(self) -> None:
        # A wrong value is one line naming the option (not the whole usage
        # text): a mistake in a unit file or config file is then plain.
        try:
            self._check()
        except usage.UsageError as e:
            raise StartupError(str(e)) from None

    def _check(self) -> None:
        for name, values in self._file_lists.items():
            if not self[name]:
                for value in values:
                    getattr(self, f"opt_{name.replace('-', '_')}")(value)
        if self["registration"] not in ("open", "closed"):
            raise usage.UsageError(
                f"--registration must be open or closed, not {self['registration']!r}"
            )
        for setting in option_fields():
            name = option_name(setting)
            _check(name, setting.metadata["check"], self[name])
        self["default-room"] = self["default-room"].removeprefix("#")
        for name in ("history-max-age", "history-max-rows"):
            _check(name, "not negative", self[name])
        if self["presence-batch-above"] < 0:
            raise usage.UsageError("--presence-batch-above must not be negative")
        if self["presence-interval"] <= 0:
            raise usage.UsageError("--presence-interval must be positive")
        if self["max-line"] < 16:
            raise usage.UsageError("--max-line must be at least 16 bytes")
        if not self["port"]:
            self["port"] = [DEFAULT_PORT]
        if self["motd"] is not None:
            try:
                # Read once, before the reactor runs: makeService uses it.
                self["motd-lines"] = read_motd(Path(self["motd"]))
            except MotdError as e:
                raise StartupError(f"--motd {self['motd']}: {e}") from None
        if self["redis"] is not None:
            _check_redis(self["redis"], self["node-ttl"])
        else:
            try:
                prepare_state(self["db"])
            except (sqlite3.Error, OSError) as e:
                raise StartupError(
                    f"--db {self['db']}: cannot open the state file: {e}"
                ) from None
        from twisted.internet import reactor

        if self["metrics"]:
            self["metrics"] = _endpoint(self["metrics"])
        metrics = [self["metrics"]] if self["metrics"] else []
        check_listeners(reactor, self["port"], self["web"], metrics)


def _check_redis(url: str, ttl: int) -> None:
    """--redis needs a URL redis-py accepts, and the asyncio reactor."""
    if ttl < 3:
        raise usage.UsageError("--node-ttl must be at least 3 seconds")
    from redis.asyncio.connection import parse_url

    try:
        parse_url(url)
    except ValueError as e:
        raise usage.UsageError(f"bad --redis {url!r}: {e}") from e
    from twisted.internet import reactor
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if not isinstance(reactor, AsyncioSelectorReactor):
        raise StartupError(
            "--redis needs Twisted's asyncio reactor; "
            f"run: twistd -r asyncio -n chat --redis {url} ..."
        )


@implementer(IStreamServerEndpoint)
class _LoggedEndpoint:
    """Says in the log where the server listens once it does."""

    log = Logger()

    def __init__(
        self, endpoint: IStreamServerEndpoint, option: str, description: str
    ) -> None:
        self._endpoint = endpoint
        self._option, self._description = option, description

    def listen(self, protocolFactory: Any) -> Deferred[IListeningPort]:
        d = self._endpoint.listen(protocolFactory)
        d.addCallbacks(self._listening, self._failed)
        return d

    def _failed(self, failure: Failure) -> Failure:
        assert failure.value is not None
        error = listen_failure(self._option, self._description, failure.value)
        return Failure(error)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        where = describe_address(port.getHost(), kind=True)
        self.log.info("twchat listening on {where}", where=where)
        return port


def _listen(
    option: str,
    description: str,
    factory: Any,
    reactor: Any,
    certificates: list[ReloadableCertificate],
) -> IService:
    """A listening service; ssl: ports get a certificate SIGHUP can reload."""
    listener = strports.service(description, factory, reactor=reactor)
    endpoint = listener.endpoint
    if is_tls_description(description):
        # Same arguments as Twisted's ssl:, but a certificate that SIGHUP
        # can replace.
        spec = parse_tls_description(description)
        certificate = ReloadableCertificate(
            reactor, spec.private_key, spec.cert_key, spec.extra_cert_chain
        )
        certificates.append(certificate)
        endpoint = tls_endpoint(reactor, spec, certificate)
    listener.endpoint = _LoggedEndpoint(endpoint, option, description)
    return IService(listener)


def _freeze_start_up() -> None:
    """
    Leave what exists now (modules, classes, the server's own state: all
    kept for the life of the process) out of the garbage collector's full
    collections, which walked all of it each time.
    """
    # Under a flat-out load on Redis a node made 5 full collections in
    # 1.3 s, 60-100 ms each; frozen, a third of that.
    gc.collect()  # start-up's own garbage is not kept for ever
    gc.freeze()


def makeService(
    options: usage.Options, reactor: IReactorCore | None = None
) -> ChatServer:
    """
    Build the chat: its state as a service, with one child per port.

    Tests pass their reactor. ``twistd`` passes none: the process is the
    server's own, and once its reactor runs, what start-up made is left
    out of every later full collection (``_freeze_start_up``).
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
        reactor.callWhenRunning(_freeze_start_up)
    # One reactor plays every part; each is named for the interface it needs.
    clock = cast(IReactorTime, reactor)
    threads = cast(IReactorFromThreads, reactor)
    config = ChatConfig(
        **{setting.name: options[option_name(setting)] for setting in option_fields()},
        presence=PresencePolicy(
            batch_above=options["presence-batch-above"],
            interval=options["presence-interval"],
        ),
    )
    history = None
    backend = None
    pool = None
    store: IAccountStore
    if options["redis"] is not None:
        from .accounts.redis import RedisAccounts
        from .backend.redis.backend import RedisBackend
        from .moderation.redis import RedisModeration

        backend = RedisBackend(
            clock,
            options["redis"],
            default_room=config.default_room,
            lost_reason=NODE_LOST,
            keep=0 if options["no-history"] else HISTORY_KEEP,
            ttl=options["node-ttl"],
            stream_max=options["history-max-rows"] or STREAM_MAX,
            max_age=options["history-max-age"],
        )
        store = RedisAccounts(backend.link.client, queue=backend.link.write)
        moderation: IModerationStore = RedisModeration(backend.link.client)
    else:
        pool = open_pool(clock, options["db"])
        store = SQLiteAccounts(pool, clock)
        moderation = SQLiteModeration(pool)
        log.info("state (history, accounts) in {path}", path=options["db"])
        if not options["no-history"]:
            history = History(
                clock,
                pool,
                keep=HISTORY_KEEP,
                max_age=options["history-max-age"],
                max_rows=options["history-max-rows"],
            )
    motd = None
    if options["motd"] is not None:
        motd = MessageOfTheDay(
            cast(IReactorThreads, reactor),
            Path(options["motd"]),
            options["motd-lines"],
        )
    logins = Logins(
        store,
        Hasher(threads),
        clock,
        registration=options["registration"] == "open",
        required=bool(options["require-account"]),
    )
    server = ChatServer(
        clock,
        config,
        backend=backend,
        history=history,
        logins=logins,
        state=pool,
        moderation=moderation,
        motd=motd,
    )
    certificates: list[ReloadableCertificate] = []
    tcp = server.tcp_factory()
    for description in options["port"]:
        _listen("port", description, tcp, reactor, certificates).setServiceParent(
            server
        )
    if options["web"]:
        web = server.web_factory(
            tuple(options["web-origin"]), tuple(options["web-host"])
        )
        for description in options["web"]:
            _listen("web", description, web, reactor, certificates).setServiceParent(
                server
            )
    if options["metrics"]:
        from .metrics import Monitor, metrics_site

        monitor = Monitor(server)
        monitor.setServiceParent(server)
        site = metrics_site(monitor)
        port = _listen("metrics", options["metrics"], site, reactor, certificates)
        port.setServiceParent(server)
    reloadables: list[Reloadable] = [*certificates]
    if motd is not None:
        reloadables.append(motd)
    ReloadService(reactor, reloadables).setServiceParent(server)
    return server
