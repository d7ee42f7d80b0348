"""
``--config FILE``: the server's options in a TOML file.

The keys are the long options' names (``max-clients = 500``,
``no-history = true``); repeatable options take lists (``port =
["tcp:1234", "ssl:6697:..."]``). The file's options are read first and
the command line's after them, so the command line wins: a scalar given
on both is the command line's, and a list given on the command line
replaces the file's.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigFile", "ConfigFileError", "config_path", "read_config"]


class ConfigFileError(Exception):
    """What is wrong with the file, in one line naming it."""


def config_path(argv: list[str]) -> str | None:
    """The FILE of ``--config FILE`` / ``--config=FILE`` in ``argv``, if any."""
    for i, word in enumerate(argv):
        if word == "--":
            return None
        if word == "--config":
            if i + 1 == len(argv):
                raise ConfigFileError("--config needs a file name")
            return argv[i + 1]
        if word.startswith("--config="):
            return word.removeprefix("--config=")
    return None


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as e:
        raise ConfigFileError(
            f"--config {path}: cannot read it: {(e.strerror or str(e)).lower()}"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigFileError(f"--config {path}: not valid TOML: {e}") from None


def _scalar(path: str, key: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigFileError(
            f"--config {path}: {key} must be a string or a number, "
            f"not {type(value).__name__}"
        )
    return str(value)


def _arguments(
    path: str,
    table: dict[str, Any],
    parameters: Collection[str],
    flags: Collection[str],
) -> Iterator[str]:
    for key, value in table.items():
        if key == "config":
            raise ConfigFileError(f"--config {path}: a config file cannot name another")
        if key in flags:
            if not isinstance(value, bool):
                raise ConfigFileError(
                    f"--config {path}: {key} must be true or false, not {value!r}"
                )
            if value:
                yield f"--{key}"
        elif key in parameters:
            if isinstance(value, list):
                raise ConfigFileError(
                    f"--config {path}: {key} takes one value, not a list"
                )
            yield f"--{key}={_scalar(path, key, value)}"
        else:
            raise ConfigFileError(f"--config {path}: unknown key {key!r}")


@dataclass(frozen=True)
class ConfigFile:
    #: The single-valued options and flags as command-line words, to be
    #: parsed before the command line's.
    words: list[str]
    #: The repeatable options' lists, used where the command line gave none.
    lists: dict[str, list[str]]


def read_config(
    path: str,
    parameters: Collection[str],
    flags: Collection[str],
    repeatable: Collection[str],
) -> ConfigFile:
    table = _read(path)
    lists = {
        key: [
            _scalar(path, key, item)
            for item in (value if isinstance(value, list) else [value])
        ]
        for key, value in table.items()
        if key in repeatable
    }
    rest = {key: value for key, value in table.items() if key not in repeatable}
    return ConfigFile(list(_arguments(path, rest, parameters, flags)), lists)
