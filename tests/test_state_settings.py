"""The ``state`` setting of both servers: flag, environment and TOML; validated; never printed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gateway import cli as gateway_cli
from gateway.config import load_config as load_gateway_config
from ohttp.aio.settings import SettingsError
from relay import cli as relay_cli
from relay.config import load_config as load_relay_config

GW = "http://127.0.0.1:8080/.well-known/ohttp-gateway"
URL = "redis://:s3cret@127.0.0.1:6379/2"


def test_gateway_state_from_each_source(tmp_path: Path) -> None:
    toml = tmp_path / "gateway.toml"
    toml.write_text('state = "redis://file:6379/0"\n')
    assert load_gateway_config({}, toml, {}).state == "redis://file:6379/0"
    env = {"OHTTP_GATEWAY_STATE": URL}
    assert load_gateway_config({}, toml, env).state == URL  # env over file
    parser = argparse.ArgumentParser()
    gateway_cli.add_arguments(parser)
    flags = parser.parse_args(["--state", "rediss://flag:6380/1"])
    assert load_gateway_config(flags, toml, env).state == "rediss://flag:6380/1"
    assert load_gateway_config({}, None, {}).state is None  # memory by default
    assert "s3cret" not in repr(load_gateway_config({}, None, env))


def test_relay_state_from_each_source(tmp_path: Path) -> None:
    toml = tmp_path / "relay.toml"
    toml.write_text(f'gateway = ["{GW}"]\nstate = "unix:///run/redis.sock"\n')
    assert load_relay_config({}, toml, {}).state == "unix:///run/redis.sock"
    config = load_relay_config({}, toml, {"OHTTP_RELAY_STATE": URL})
    assert config.state == URL and "s3cret" not in repr(config)
    parser = argparse.ArgumentParser()
    relay_cli.add_arguments(parser)
    assert "--state" in parser.format_help()


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "memory"])
def test_only_redis_urls(url: str) -> None:
    with pytest.raises(SettingsError, match="state"):
        load_gateway_config({}, None, {"OHTTP_GATEWAY_STATE": url})
    with pytest.raises(SettingsError, match="state"):
        load_relay_config({"gateway": [GW]}, None, {"OHTTP_RELAY_STATE": url})
