"""``python -m twchat.client``: pick the front end, then the reactor."""

from __future__ import annotations

import sys

from twisted.python import usage

from .options import ClientOptions


def main(argv: list[str] | None = None) -> None:
    options = ClientOptions()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        print(f"{options}\nerror: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    tty = sys.stdin.isatty() and sys.stdout.isatty() and not options["plain"]
    if tty:
        # prompt_toolkit runs on asyncio: this must happen before anything
        # imports twisted.internet.reactor.
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    from .app import run

    task.react(lambda reactor: Deferred.fromCoroutine(run(reactor, options, tty)))


if __name__ == "__main__":
    main()
