import contextlib
import gc
import io
import socket
from pathlib import Path
from typing import Any

import twisted.internet
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

import twchat
from twchat import tap
from twchat.config import option_fields, option_name
from twchat.connection.factory import ConnectionFactory
from twchat.server import ChatServer
from twchat.startup import StartupError
from twchat.tap import Options, makeService
from twchat.transports.tls import ReloadableCertificate

from .support.net import free_port


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

    def test_bad_values_are_one_line_errors(self) -> None:
        for args in (
            ["--port", "nonsense:1"],
            ["--max-clients", "0"],
            ["--max-line", "2"],
            ["--max-sendq", "0"],
            ["--presence-interval", "0"],
        ):
            with self.assertRaises(StartupError) as raised:
                parse(*args)
            self.assertTrue(str(raised.exception).startswith("twistd chat: --"))
            self.assertNotIn("\n", str(raised.exception))

    def test_a_value_of_the_wrong_type_is_one_line_naming_the_option(self) -> None:
        for args, said in (
            (["--max-clients", "lots"], "--max-clients must be a whole number"),
            (["--flood-rate", "x"], "--flood-rate must be a number, not 'x'"),
            (["--sendq-timeout", "inf"], "--sendq-timeout must be a number"),
            (["--flood-rate", "nan"], "--flood-rate must be a number"),
            (["--node-ttl", "2.5"], "--node-ttl must be a whole number"),
            (["--history-max-age", "soon"], "--history-max-age must be a number"),
            (["--port", "tcp:abc"], "--port tcp:abc: 'abc' is not a number"),
            (["--web", "tcp:80:backlog=x"], "--web tcp:80:backlog=x: 'x' is not"),
        ):
            with self.assertRaises(StartupError) as raised:
                parse(*args)
            self.assertIn(f"twistd chat: {said}", str(raised.exception))
            self.assertNotIn("\n", str(raised.exception))
        # The numbers themselves still go through.
        options = parse("--flood-rate", "0.5", "--max-clients", "30")
        self.assertEqual((options["flood-rate"], options["max-clients"]), (0.5, 30))

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
        from twchat.sighup import ReloadService

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
        reload = next(c for c in top if isinstance(c, ReloadService))
        self.assertEqual(len(reload.reloadables), 1)
        certificate = reload.reloadables[0]
        assert isinstance(certificate, ReloadableCertificate)
        self.assertEqual(certificate.paths[1], cert)

    def test_under_twistd_what_start_up_made_is_frozen_once_running(self) -> None:
        # twistd passes no reactor: the process is the server's own.
        running = MemoryReactorClock()
        self.patch(twisted.internet, "reactor", running)
        makeService(parse("--no-history"))
        self.assertIn((tap._freeze_start_up, (), {}), running.whenRunningHooks)
        # A reactor passed in is a test's: its process is left alone.
        injected = MemoryReactorClock()
        makeService(parse("--no-history"), injected)
        hooks = [hook for hook, _, _ in injected.whenRunningHooks]
        self.assertNotIn(tap._freeze_start_up, hooks)

    def test_freezing_start_up_leaves_its_objects_out_of_full_collections(
        self,
    ) -> None:
        self.addCleanup(gc.unfreeze)
        self.assertEqual(gc.get_freeze_count(), 0)
        tap._freeze_start_up()
        # Every object the collector tracked, this test's process included.
        self.assertGreater(gc.get_freeze_count(), 10000)
        self.assertEqual(gc.get_count()[2], 0)

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

    def test_bad_url_and_ttl_are_one_line_errors(self) -> None:
        for args in (
            ["--redis", "http://127.0.0.1:6379"],
            ["--redis", "redis://127.0.0.1:6379/0", "--node-ttl", "2"],
        ):
            self.assertRaises(StartupError, parse, *args)

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
            with self.assertRaises(StartupError) as raised:
                parse(*args)
            self.assertEqual(str(raised.exception), f"twistd chat: {error}")


class StartupCheckTests(SynchronousTestCase):
    """Each start-up mistake is one line naming its option (``twistd chat: --X``)."""

    def refused(self, *args: str) -> str:
        with self.assertRaises(StartupError) as raised:
            parse(*args)
        text = str(raised.exception)
        self.assertNotIn("\n", text)
        return text.removeprefix("twistd chat: ")

    def test_a_port_out_of_range(self) -> None:
        self.assertEqual(
            self.refused("--port", "99999"),
            "--port tcp:99999: port 99999 is not 0-65535",
        )

    def test_a_bad_web_endpoint_names_web(self) -> None:
        self.assertTrue(
            self.refused("--port", "tcp:0", "--web", "abc").startswith(
                "--web abc: unknown endpoint type 'abc'; give a port number"
            )
        )

    def test_a_busy_port(self) -> None:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            where = f"tcp:{port}:interface=127.0.0.1"
            self.assertEqual(
                self.refused("--port", where),
                f"--port {where}: port {port} on 127.0.0.1 is in use by another "
                "program",
            )

    def test_port_and_web_on_one_port(self) -> None:
        port = free_port()
        self.assertEqual(
            self.refused("--port", str(port), "--web", str(port)),
            f"--web tcp:{port}: --port tcp:{port} already listens on port {port}",
        )

    def test_an_address_not_of_this_machine(self) -> None:
        self.assertEqual(
            self.refused("--port", "tcp:4999:interface=192.0.2.1"),
            "--port tcp:4999:interface=192.0.2.1: 192.0.2.1 is not an address "
            "of this machine",
        )

    def test_a_missing_or_unreadable_certificate(self) -> None:
        self.assertEqual(
            self.refused("--port", "ssl:0:privateKey=/nonexistent/key.pem"),
            "--port ssl:0:privateKey=/nonexistent/key.pem: no such file or "
            "directory: /nonexistent/key.pem",
        )
        garbage = Path(self.mktemp())
        garbage.write_text("not a key\n")
        self.assertEqual(
            self.refused("--web", f"ssl:0:privateKey={garbage}"),
            f"--web ssl:0:privateKey={garbage}: not a PEM key or certificate",
        )

    def test_systemd_without_a_socket(self) -> None:
        self.assertIn(
            "systemd passed no such socket",
            self.refused("--port", "systemd:domain=INET:index=0"),
        )

    def test_a_unix_socket_in_a_missing_directory(self) -> None:
        self.assertEqual(
            self.refused("--port", "unix:/nonexistent/chat.sock"),
            "--port unix:/nonexistent/chat.sock: no directory /nonexistent",
        )

    def test_a_port_taken_after_the_checks_is_still_one_line(self) -> None:
        # Between the checks and listening another program may take it.
        port = free_port()
        where = f"tcp:{port}:interface=127.0.0.1"
        options = parse("--port", where, "--db", self.mktemp())
        from twisted.internet import reactor

        server = makeService(options, reactor)
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", port))
            holder.listen(1)
            with self.assertRaises(StartupError) as raised:
                server.privilegedStartService()
        self.assertEqual(
            str(raised.exception),
            f"twistd chat: --port {where}: cannot listen: address already in use",
        )


class ConfigFileTests(SynchronousTestCase):
    def config(self, text: str) -> str:
        path = Path(self.mktemp())
        path.write_text(text)
        return str(path)

    def test_the_example_file_loads(self) -> None:
        example = Path(__file__).parent.parent / "contrib" / "twchat.toml"
        options = parse("--config", str(example), "--port", "tcp:0", "--web", "tcp:0")
        self.assertEqual(options["max-clients"], 500)
        self.assertEqual(options["max-per-ip"], 10)
        self.assertEqual(options["registration"], "open")
        self.assertFalse(options["require-account"])

    def test_keys_are_options_and_the_command_line_wins(self) -> None:
        path = self.config(
            'port = ["tcp:0", "tcp6:0"]\nweb = "tcp:0"\nmax-clients = 50\n'
            "max-line = 100\nno-history = true\n"
            'default-room = "hall"\nflood-rate = 2.5\n'
        )
        options = parse("--config", path, "--max-line", "200")
        self.assertEqual(options["port"], ["tcp:0", "tcp6:0"])
        self.assertEqual(options["web"], ["tcp:0"])
        self.assertEqual(options["max-clients"], 50)
        self.assertEqual(options["max-line"], 200)
        self.assertTrue(options["no-history"])
        self.assertEqual(options["default-room"], "hall")
        self.assertEqual(options["flood-rate"], 2.5)
        # A list on the command line replaces the file's.
        options = parse(f"--config={path}", "--port", "tcp:0:interface=127.0.0.1")
        self.assertEqual(options["port"], ["tcp:0:interface=127.0.0.1"])
        self.assertEqual(options["web"], ["tcp:0"])

    def test_mistakes_name_the_file_and_the_key(self) -> None:
        for text, error in [
            ("max-clients = 5\nbogus = 1\n", "unknown key 'bogus'"),
            ("max-clients = [1, 2]\n", "max-clients takes one value, not a list"),
            ("no-history = 1\n", "no-history must be true or false, not 1"),
            ("max-line = true\n", "max-line must be a string or a number, not bool"),
            ('config = "other.toml"\n', "a config file cannot name another"),
            ("max-clients = \n", "not valid TOML: Invalid value (at line 1"),
        ]:
            path = self.config(text)
            with self.assertRaises(StartupError) as raised:
                parse("--config", path, "--port", "tcp:0")
            self.assertTrue(
                str(raised.exception).startswith(
                    f"twistd chat: --config {path}: {error}"
                ),
                (str(raised.exception), error),
            )
        with self.assertRaises(StartupError) as raised:
            parse("--config", "/nonexistent.toml")
        self.assertEqual(
            str(raised.exception),
            "twistd chat: --config /nonexistent.toml: cannot read it: "
            "no such file or directory",
        )

    def test_a_bad_value_in_the_file_names_its_option(self) -> None:
        path = self.config("max-clients = 0\n")
        with self.assertRaises(StartupError) as raised:
            parse("--config", path, "--port", "tcp:0")
        self.assertEqual(
            str(raised.exception),
            "twistd chat: --max-clients must be at least 1, not 0",
        )


class VersionTests(SynchronousTestCase):
    def test_version_is_twchats(self) -> None:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as done:
            parse("--version")
        self.assertEqual(done.exception.code, 0)
        self.assertTrue(
            out.getvalue().startswith(f"twistd chat (twchat) {twchat.__version__} ")
        )
        self.assertIn("Twisted", out.getvalue())
