"""Settings layering shared by ``ohttp gateway`` and ``ohttp relay`` (stdlib only).

Precedence: flags > ``<PREFIX><OPTION>`` environment variables > TOML file > dataclass
defaults. Values are coerced by the type of the option (the dataclass field type), so a
setting means the same wherever it comes from. Error messages are fixed text naming the
option and never its value (a value may be a secret such as the relay's gateway token).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "INVALID_SETTINGS_EXIT",
    "SettingsError",
    "add_flag",
    "coerce",
    "gather",
    "option_types",
    "parse_host_port",
    "require",
    "require_together",
]

INVALID_SETTINGS_EXIT = 2  # the exit status of both commands for any invalid setting

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_LIST_SEPARATORS = re.compile(r"[\s,]+")


class SettingsError(ValueError):
    """An invalid setting; the message names the option, never its value."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`SettingsError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SettingsError(message)


def require_together(config: object, first: str, second: str) -> None:
    """Both of two optional settings are given, or neither (e.g. a certificate and its key)."""
    given = (getattr(config, first) is None, getattr(config, second) is None)
    require(given[0] == given[1], f"{first} and {second} go together")


def parse_host_port(value: str, option: str = "listen") -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` into (host, port); the port is 1 to 65535."""
    host, sep, port = value.rpartition(":")
    # Port 0 is refused: workers share the port and metrics listen on PORT+i, so the
    # operator must name a real one.
    valid = bool(sep and host) and port.isascii() and port.isdigit() and 0 < int(port) < 65536
    require(valid, f"{option}: expected HOST:PORT with a port from 1 to 65535")
    return host.strip("[]"), int(port)


def add_flag(
    parser: argparse.ArgumentParser,
    option: str,
    metavar: str | None,
    text: str,
    *,
    repeatable: bool = False,
) -> None:
    """Add ``--option-name``; without ``metavar`` it is an on/off switch.

    The flag writes ``option`` into the namespace only when given (``SUPPRESS`` default),
    so an absent flag never masks the TOML file or the environment.
    """
    name = "--" + option.replace("_", "-")
    if metavar is None:
        parser.add_argument(
            name, dest=option, action="store_const", const=True,
            default=argparse.SUPPRESS, help=text,
        )  # fmt: skip
        return
    action = "append" if repeatable else "store"
    parser.add_argument(
        name, dest=option, metavar=metavar, action=action, default=argparse.SUPPRESS, help=text
    )


def option_types(
    cls: type, *, exclude: Collection[str] = (), extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Option name to type: the init fields of dataclass ``cls`` but ``exclude``, and ``extra``."""
    hints = typing.get_type_hints(cls)
    found = {
        f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init and f.name not in exclude
    }
    found.update(extra or {})
    return found


def gather(
    options: Mapping[str, Any],
    flags: argparse.Namespace | Mapping[str, Any],
    *,
    config_file: str | Path | None,
    table: str,
    env_prefix: str,
    environ: Mapping[str, str] | None = None,
    parsers: Mapping[str, Callable[[Any], Any]] | None = None,
) -> dict[str, Any]:
    """The typed values of the options that are set anywhere, flags winning.

    ``flags``: an argparse namespace (only attributes named like an option count) or a
    mapping (None means not given). ``config_file`` defaults to ``<PREFIX>CONFIG``. The TOML
    file holds the options at top level or in a ``[table]`` table, with ``-`` or ``_``.
    ``parsers`` pre-process raw values of particular options before type coercion.
    """
    environ = os.environ if environ is None else environ
    if config_file is None:
        config_file = environ.get(env_prefix + "CONFIG") or None
    # Flags > environment > file > defaults: the container and twelve-factor convention, where
    # a deployment overrides a packaged file through its environment.
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(_from_toml(options, Path(config_file), table))
    merged.update(_from_env(options, env_prefix, environ))
    merged.update(_from_flags(options, flags))
    parsers = parsers or {}
    return {
        name: coerce(name, options[name], parsers.get(name, _unchanged)(value))
        for name, value in merged.items()
    }


def _unchanged(value: Any) -> Any:
    return value


def _from_env(options: Collection[str], prefix: str, environ: Mapping[str, str]) -> dict[str, Any]:
    # An empty variable counts as unset, as shells make unsetting awkward.
    found = {name: environ.get(prefix + name.upper(), "") for name in options}
    return {name: value for name, value in found.items() if value != ""}


def _from_toml(options: Collection[str], path: Path, table: str) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except OSError as exc:
        raise SettingsError(f"cannot read the TOML config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:  # its text names a line and column, no content
        raise SettingsError(f"the config file is not valid TOML: {exc}") from None
    section = document.get(table, document)
    require(isinstance(section, dict), f"[{table}] in the TOML config file must be a table")
    settings = {key.replace("-", "_"): value for key, value in section.items()}
    require(len(settings) == len(section), "a setting is given twice in the TOML config file")
    unknown = sorted(set(settings) - set(options))
    require(not unknown, f"unknown setting(s) in the TOML config file: {', '.join(unknown)}")
    return settings


def _from_flags(
    options: Collection[str], flags: argparse.Namespace | Mapping[str, Any]
) -> dict[str, Any]:
    if isinstance(flags, argparse.Namespace):
        given = {name: value for name, value in vars(flags).items() if name in options}
    else:
        unknown = sorted(set(flags) - set(options))
        require(not unknown, f"unknown setting(s): {', '.join(unknown)}")
        given = dict(flags)
    return {name: value for name, value in given.items() if value is not None}


def coerce(option: str, kind: Any, value: Any) -> Any:
    """``value`` (a string from a flag or the environment, or a TOML value) as ``kind``."""
    kind = _without_none(kind)
    if kind is bool:
        return _to_bool(option, value)
    if kind in (int, float):
        return _to_number(option, kind, value)
    if kind is Path and isinstance(value, str | Path):
        return Path(value)
    if kind is str and isinstance(value, str):
        return value
    if typing.get_origin(kind) is tuple:
        return _to_strings(option, value)
    raise SettingsError(f"{option}: expected {_describe(kind)}")


def _without_none(kind: Any) -> Any:
    if typing.get_origin(kind) in (types.UnionType, typing.Union):
        rest = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return kind


def _to_bool(option: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower() if isinstance(value, str) else None
    require(lowered in _TRUE | _FALSE, f"{option}: expected true or false")
    return lowered in _TRUE


def _to_number(option: str, kind: type[int] | type[float], value: Any) -> int | float:
    message = f"{option}: expected {_describe(kind)}"
    require(not isinstance(value, bool), message)  # TOML true is not 1
    if isinstance(value, str):
        try:
            value = kind(value.strip())
        except ValueError:
            raise SettingsError(message) from None
    if kind is float and isinstance(value, int):
        value = float(value)
    require(isinstance(value, kind), message)
    require(kind is int or math.isfinite(value), message)
    return typing.cast(int | float, value)


def _to_strings(option: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # environment: a comma- or space-separated list
        return tuple(part for part in _LIST_SEPARATORS.split(value) if part)
    valid = isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)
    require(valid, f"{option}: expected a list of strings")
    return tuple(value)


def _describe(kind: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", Path: "a file path"}
    return names.get(kind, "a value of another type")
