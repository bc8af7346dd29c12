"""The settings layering shared by the gateway and the relay (ohttp.aio.settings)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import gateway.cli
import relay.cli
from ohttp.aio.settings import (
    SettingsError,
    add_flag,
    coerce,
    gather,
    option_types,
    parse_host_port,
)

PREFIX = "OHTTP_TEST_"


@dataclass(frozen=True)
class Sample:
    name: str = "default"
    count: int = 1
    ratio: float = 0.5
    enabled: bool = False
    path: Path | None = None
    items: tuple[str, ...] = ()
    secret: str | None = None


OPTIONS = option_types(Sample)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    for option in ("name", "count", "ratio", "path", "secret"):
        add_flag(parser, option, "X", "help")
    add_flag(parser, "enabled", None, "switch")
    add_flag(parser, "items", "ITEM", "repeatable", repeatable=True)
    parser.add_argument("--config")
    return parser.parse_args(argv)


def load(
    flags: argparse.Namespace | dict[str, Any],
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Sample:
    values = gather(
        OPTIONS, flags, config_file=config_file, table="sample", env_prefix=PREFIX,
        environ=environ or {},
    )  # fmt: skip
    return Sample(**values)


def test_option_types_follow_the_dataclass() -> None:
    assert set(OPTIONS) == {"name", "count", "ratio", "enabled", "path", "items", "secret"}
    assert option_types(Sample, exclude=("secret",), extra={"x": int})["x"] is int


def test_defaults_when_nothing_is_set() -> None:
    assert load(parse()) == Sample()


def test_precedence_flags_over_env_over_toml(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('count = 20\nratio = 2\nitems = ["t1", "t2"]\n')
    env = {f"{PREFIX}COUNT": "30", f"{PREFIX}NAME": "env", f"{PREFIX}RATIO": "3.5",
           f"{PREFIX}ENABLED": "yes", f"{PREFIX}ITEMS": "e1, e2 e3"}
    config = load(parse("--count", "10"), toml, env)
    assert config.count == 10  # flag
    assert config.ratio == 3.5 and isinstance(config.ratio, float)  # env over TOML
    assert config.items == ("e1", "e2", "e3")
    assert load(parse(), toml, {}).ratio == 2.0  # TOML over default
    assert (config.name, config.enabled) == ("env", True)  # env over default
    assert load(parse(), None, env).items == ("e1", "e2", "e3")  # commas and spaces
    assert load(parse("--items", "f1", "--items", "f2"), toml, env).items == ("f1", "f2")


def test_an_absent_flag_does_not_mask_the_file_or_environment(tmp_path: Path) -> None:
    namespace = parse()
    assert not hasattr(namespace, "count")  # SUPPRESS: only given flags appear
    assert load(namespace, None, {f"{PREFIX}COUNT": "4"}).count == 4
    assert load({"count": None}, None, {f"{PREFIX}COUNT": "4"}).count == 4


def test_switch_flag() -> None:
    assert load(parse("--enabled"), None, {f"{PREFIX}ENABLED": "off"}).enabled is True


def test_table_dashes_and_config_from_environment(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('[sample]\nname = "table"\n')
    assert load(parse(), None, {f"{PREFIX}CONFIG": str(toml)}).name == "table"
    toml.write_text("path = \"/a/b\"\n")
    assert load(parse(), toml).path == Path("/a/b")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("countt = 1\n", "countt"),
        ("count = 1\ncount-x = 2\n", "count_x"),
        ("count = 1\n[other]\nx = 1\n", "other"),
        ("count = 1\n\"count\" = 2\n", "valid TOML"),
        ("count = 1\n[sample.x]\n", "x"),
        ("sample = 3\n", "[sample]"),
    ],
)
def test_bad_toml_names_the_problem(tmp_path: Path, text: str, words: str) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text(text)
    with pytest.raises(SettingsError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load(parse(), toml)


def test_a_setting_given_twice_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("max-body = 1\nmax_body = 2\n")  # the same setting in two spellings
    with pytest.raises(SettingsError, match="twice"):
        gather({"max_body": int}, {}, config_file=toml, table="t", env_prefix=PREFIX, environ={})


def test_unreadable_file() -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load(parse(), Path("/nonexistent/settings.toml"))


def test_unknown_mapping_flag() -> None:
    with pytest.raises(SettingsError, match="counts"):
        load({"counts": 1})


def test_empty_environment_variable_is_unset() -> None:
    assert load(parse(), None, {f"{PREFIX}COUNT": "", f"{PREFIX}NAME": ""}) == Sample()


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (int, " 12 ", 12), (int, 7, 7), (float, "1.5", 1.5), (float, 3, 3.0),
        (bool, "On", True), (bool, "0", False), (bool, False, False),
        (Path | None, "x.pem", Path("x.pem")), (str | None, "s", "s"),
        (tuple[str, ...], ["a", "b"], ("a", "b")), (tuple[str, ...], "a,,b", ("a", "b")),
    ],
)  # fmt: skip
def test_coercion(kind: Any, value: Any, expected: Any) -> None:
    assert coerce("opt", kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (int, True), (int, "1.5"), (int, 1.5), (int, "lots"), (float, "nan"), (float, "inf"),
        (float, False), (bool, "maybe"), (bool, 1), (str, 5), (Path, 5),
        (tuple[str, ...], [1]), (tuple[str, ...], 3),
    ],
)  # fmt: skip
def test_coercion_refuses_with_the_option_name(kind: Any, value: Any) -> None:
    with pytest.raises(SettingsError, match=r"^opt: expected") as caught:
        coerce("opt", kind, value)
    assert str(value) not in str(caught.value).removeprefix("opt: ")


def test_messages_never_echo_a_value() -> None:
    with pytest.raises(SettingsError) as caught:
        load({"count": "hunter2-secret"})
    assert "hunter2" not in str(caught.value) and "count" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:65535", ("::1", 65535)),
     ("example.org:1", ("example.org", 1))],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    "text", ["nowhere", ":80", "h:", "h:0", "h:65536", "h:-1", "h:\uff18\uff10"]  # fullwidth 80
)
def test_parse_host_port_refuses(text: str) -> None:
    with pytest.raises(SettingsError, match=r"^metrics_listen: expected HOST:PORT"):
        parse_host_port(text, "metrics_listen")


# --- both commands behave the same ---------------------------------------------------------

GW = "http://127.0.0.1:8080/.well-known/ohttp-gateway"
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int], tuple[str, ...]]] = {
    "gateway": (gateway.cli.add_arguments, gateway.cli.run,
                ("--keys", "k.json", "--backend", "echo")),
    "relay": (relay.cli.add_arguments, relay.cli.run_from_args, ("--gateway", GW)),
}


def run_command(name: str, *argv: str) -> int:
    add_arguments, run, required = COMMANDS[name]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args([*required, *argv]))


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize(
    "argv",
    [("--listen", "127.0.0.1:0"), ("--metrics-listen", "127.0.0.1:70000"),
     ("--workers", "many"), ("--tls-cert", "c.pem"), ("--max-in-flight", "0")],
)
def test_both_commands_exit_2_on_invalid_settings(
    name: str, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(name, *argv) == 2
    assert capsys.readouterr().err.startswith(f"ohttp {name}: ")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_both_commands_read_their_config_variable(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(f"[{name}]\nworkers = 0\n")
    monkeypatch.setenv(f"OHTTP_{name.upper()}_CONFIG", str(toml))
    assert run_command(name) == 2
    assert "workers" in capsys.readouterr().err


def test_relay_token_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command("relay", "--gateway-token", "s3cret token") == 2
    err = capsys.readouterr().err
    assert "gateway_token" in err and "s3cret" not in err
