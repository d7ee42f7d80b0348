from pathlib import Path
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from twchat.config import option_fields, option_name
from twchat.connection.factory import ConnectionFactory
from twchat.server import ChatServer
from twchat.tap import Options, makeService


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class OptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        options = parse()
        self.assertEqual(options["port"], ["tcp:1234"])
        self.assertEqual(options["max-clients"], 200)
        self.assertEqual(options["max-line"], 512)

    def test_bare_port_number_means_tcp(self) -> None:
        self.assertEqual(parse("--port", "4321")["port"], ["tcp:4321"])

    def test_endpoint_strings_and_repeats(self) -> None:
        options = parse(
            "--port",
            "tcp:1234:interface=127.0.0.1",
            "-p",
            "tcp6:1235",
            "--port",
            "unix:/tmp/x.sock",
        )
        self.assertEqual(
            options["port"],
            ["tcp:1234:interface=127.0.0.1", "tcp6:1235", "unix:/tmp/x.sock"],
        )

    def test_bad_values_are_usage_errors(self) -> None:
        for args in (
            ["--port", "nonsense:1"],
            ["--max-clients", "0"],
            ["--max-line", "2"],
            ["--max-clients", "lots"],
            ["--max-sendq", "0"],
            ["--presence-interval", "0"],
        ):
            self.assertRaises(usage.UsageError, parse, *args)

    def test_help_documents_every_option_with_default(self) -> None:
        text = str(Options())
        for option in [
            "--port",
            "--max-clients",
            "--max-line",
            "--max-sendq",
            "--presence-batch-above",
            "--presence-interval",
        ]:
            self.assertIn(option, text)
        self.assertIn("[default: 200]", text)
        self.assertIn("[default: 512]", text)
        self.assertIn("[default: 262144]", text)
        self.assertIn("[default: 1234]", text)


class MakeServiceTests(SynchronousTestCase):
    def test_web_over_tls_gets_a_reloadable_certificate(self) -> None:
        from twchat.transports.tls import TLSReloadService

        from .support.certificates import make_certificate

        directory = Path(self.mktemp())
        directory.mkdir(parents=True)
        key, cert = make_certificate(directory)
        top = makeService(
            parse(
                "--no-history",
                "--web",
                f"ssl:8443:privateKey={key}:certKey={cert}",
            ),
            MemoryReactorClock(),
        )
        reload = next(c for c in top if isinstance(c, TLSReloadService))
        self.assertEqual(len(reload.certificates), 1)
        self.assertEqual(reload.certificates[0].paths[1], cert)

    def test_history_is_on_by_default_in_the_given_file(self) -> None:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        top = makeService(
            parse("--port", "tcp:7000", "--db", str(path)),
            MemoryReactorClock(),
        )
        server = top
        assert server.hub.backend.history is not None
        self.assertTrue(server.hub.backend.history.available)
        self.assertTrue(path.exists())
        off = makeService(parse("--no-history"), MemoryReactorClock())
        server = off
        self.assertIsNone(server.hub.backend.history)
        # The option's old name still works.
        self.assertEqual(parse("--history-db", str(path))["db"], str(path))

    def test_the_server_is_a_service_with_one_listener_per_port(self) -> None:
        reactor = MemoryReactorClock()
        top = makeService(
            parse(
                "--port",
                "tcp:7000",
                "--port",
                "7001",
                "--max-line",
                "100",
                "--no-history",
            ),
            reactor,
        )
        children = list(top)
        self.assertIsInstance(top, ChatServer)
        listeners = [c for c in children if isinstance(c, StreamServerEndpointService)]
        self.assertEqual(len(listeners), 2)
        top.startService()
        self.assertEqual(sorted(p[0] for p in reactor.tcpServers), [7000, 7001])
        factory = reactor.tcpServers[0][1]
        assert isinstance(factory, ConnectionFactory)
        self.assertEqual(factory.server.config.max_line, 100)
        self.assertIs(reactor.tcpServers[1][1], factory)
        self.successResultOf(top.stopService())


class RedisOptionsTests(SynchronousTestCase):
    def test_documented(self) -> None:
        text = str(Options())
        self.assertIn("--redis", text)
        self.assertIn("twistd -r asyncio -n chat --redis", text)
        self.assertIn("--node-ttl", text)
        self.assertIn("[default: 10]", text)

    def test_bad_url_and_ttl_are_usage_errors(self) -> None:
        for args in (
            ["--redis", "http://127.0.0.1:6379"],
            ["--redis", "redis://127.0.0.1:6379/0", "--node-ttl", "2"],
        ):
            self.assertRaises(usage.UsageError, parse, *args)

    def test_refused_on_another_reactor_with_one_line(self) -> None:
        # The tests run on the default reactor, not the asyncio one.
        with self.assertRaises(SystemExit) as caught:
            parse("--redis", "redis://127.0.0.1:6379/0")
        self.assertEqual(
            str(caught.exception),
            "twistd chat: --redis needs Twisted's asyncio reactor; "
            "run: twistd -r asyncio -n chat --redis redis://127.0.0.1:6379/0 ...",
        )


class DeclarativeConfigTests(SynchronousTestCase):
    """Every config field with option metadata is an option, and reaches the server."""

    def test_every_option_field_reaches_the_config(self) -> None:
        args: list[str] = ["--port", "tcp:7000"]
        wanted: dict[str, object] = {}
        for setting in option_fields():
            default: Any = setting.default
            value: object
            if isinstance(default, str):
                value = "Hall"
            elif isinstance(default, float):
                value = default + 1.5
            else:
                value = default + 3
            wanted[setting.name] = value
            args += [f"--{option_name(setting)}", str(value)]
        top = makeService(parse(*args), MemoryReactorClock())
        server = top
        for name, value in wanted.items():
            self.assertEqual(getattr(server.config, name), value, name)
        self.assertGreater(len(wanted), 10)

    def test_each_check_names_its_option(self) -> None:
        for args, error in [
            (("--max-rooms", "0"), "--max-rooms must be at least 1, not 0"),
            (("--register-timeout", "0"), "--register-timeout must be positive"),
            (("--max-per-ip", "-1"), "--max-per-ip must not be negative"),
            (("--history-max-rows", "-1"), "--history-max-rows must not be negative"),
            (("--history-replay", "101"), "--history-replay must be between 0 and 100"),
        ]:
            with self.assertRaises(usage.UsageError) as raised:
                parse(*args)
            self.assertEqual(str(raised.exception), error)
