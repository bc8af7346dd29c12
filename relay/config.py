"""Relay configuration: a frozen dataclass merged as flags > TOML > OHTTP_RELAY_* env > defaults."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "OHTTP_RELAY_"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RESERVED_NAMES = frozenset({"healthz", "metrics", "ohttp-keys"})


class ConfigError(ValueError):
    """The configuration is invalid (the message names the option, never a secret value)."""


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """One configured gateway: ``name`` is "" for the single gateway served at ``POST /``."""

    name: str
    url: str
    scheme: str = field(init=False)
    host: str = field(init=False)
    port: int = field(init=False)
    target: str = field(init=False)  # origin-form request target: path and query
    host_header: str = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("gateway URL must be an absolute http:// or https:// URL")
        if parts.username or parts.password or parts.fragment:
            raise ConfigError("gateway URL must not carry credentials or a fragment")
        default_port = 443 if parts.scheme == "https" else 80
        port = parts.port or default_port
        host = parts.hostname
        bracketed = f"[{host}]" if ":" in host else host
        object.__setattr__(self, "scheme", parts.scheme)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        query = f"?{parts.query}" if parts.query else ""
        object.__setattr__(self, "target", (parts.path or "/") + query)
        host_header = bracketed if port == default_port else f"{bracketed}:{port}"
        object.__setattr__(self, "host_header", host_header)

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Everything the relay needs; build with :func:`load_config` or directly in tests."""

    gateways: tuple[GatewayTarget, ...]
    listen_host: str = "127.0.0.1"
    listen_port: int = 8081
    metrics_host: str | None = None
    metrics_port: int | None = None
    workers: int = 1
    tls_cert: str | None = None
    tls_key: str | None = None
    upstream_ca_file: str | None = None
    gateway_token: str | None = field(default=None, repr=False)
    client_cert: str | None = None
    client_key: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    connect_timeout: float = 5.0
    upstream_timeout: float = 30.0
    max_connections: int = 1024
    max_in_flight: int = 256
    rate_limit: int = 0  # requests per client per window; 0 disables
    rate_limit_window: float = 60.0
    key_cache_default_ttl: float = 300.0
    key_cache_min_ttl: float = 60.0
    key_cache_max_ttl: float = 86400.0
    upstream_pool_size: int = 64
    upstream_idle_timeout: float = 15.0

    def __post_init__(self) -> None:
        _validate(self)

    def gateway(self, name: str) -> GatewayTarget | None:
        return next((g for g in self.gateways if g.name == name), None)


def _validate(config: RelayConfig) -> None:
    if not config.gateways:
        raise ConfigError("at least one --gateway is required")
    names = [g.name for g in config.gateways]
    if len(set(names)) != len(names):
        raise ConfigError("gateway names must be unique")
    for name in names:
        if name and (not _NAME_PATTERN.fullmatch(name) or name in _RESERVED_NAMES):
            raise ConfigError("gateway names must match [A-Za-z0-9_-]{1,64} and not be reserved")
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    if (config.client_cert is None) != (config.client_key is None):
        raise ConfigError("--client-cert and --client-key go together")
    if (config.metrics_host is None) != (config.metrics_port is None):
        raise ConfigError("metrics listener needs both host and port")
    positive = ("workers", "max_body_bytes", "max_connections", "max_in_flight",
                "upstream_pool_size")
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    seconds = ("header_timeout", "body_timeout", "connect_timeout", "upstream_timeout",
               "rate_limit_window", "key_cache_default_ttl", "key_cache_max_ttl",
               "upstream_idle_timeout")
    for name in seconds:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    if config.rate_limit < 0 or config.key_cache_min_ttl < 0:
        raise ConfigError("rate_limit and key_cache_min_ttl must not be negative")
    if config.key_cache_min_ttl > config.key_cache_max_ttl:
        raise ConfigError("key_cache_min_ttl must not exceed key_cache_max_ttl")
    if config.gateway_token is not None and not re.fullmatch(r"[\x21-\x7e]+", config.gateway_token):
        raise ConfigError("gateway_token must be visible ASCII without spaces")


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` into (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("expected HOST:PORT")
    return host.strip("[]"), int(port)


def parse_gateways(values: list[str]) -> tuple[GatewayTarget, ...]:
    """``URL`` (served at ``/``) or ``NAME=URL`` (served at ``/NAME``) into targets."""
    targets = []
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or "://" in name:
            name, url = "", value
        targets.append(GatewayTarget(name, url))
    return tuple(targets)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if isinstance(value, dict):  # TOML table: [gateway] name = "url"
        return [f"{k}={v}" for k, v in value.items()]
    raise ConfigError("gateway must be a string, a list of strings or a table")


def _as_bool_free(kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ConfigError("expected a number")
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ConfigError("expected a number") from None

    return convert


# Options that are not 1:1 dataclass fields; everything else maps by field name.
_COMPOSITE = ("listen", "metrics_listen", "gateway")


def _converters() -> dict[str, Callable[[Any], Any]]:
    converters: dict[str, Callable[[Any], Any]] = {}
    for f in fields(RelayConfig):
        if f.name in ("gateways", "listen_host", "listen_port", "metrics_host", "metrics_port"):
            continue
        if f.type in ("int",):
            converters[f.name] = _as_bool_free(int)
        elif f.type in ("float",):
            converters[f.name] = _as_bool_free(float)
        else:
            converters[f.name] = str
    converters["listen"] = str
    converters["metrics_listen"] = str
    converters["gateway"] = _as_list
    return converters


OPTION_NAMES = tuple(sorted(_converters()))


def options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``OHTTP_RELAY_<OPTION>`` variables (e.g. OHTTP_RELAY_MAX_BODY_BYTES)."""
    found: dict[str, Any] = {}
    for name in OPTION_NAMES:
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None and value != "":
            found[name] = value
    return found


def options_from_toml(path: str | Path) -> dict[str, Any]:
    """Top-level keys named like the options (dashes or underscores), or a [relay] table."""
    try:
        with open(path, "rb") as stream:
            document = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("cannot read the TOML config file") from exc
    table = document.get("relay", document)
    if not isinstance(table, dict):
        raise ConfigError("[relay] must be a table")
    options = {key.replace("-", "_"): value for key, value in table.items()}
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise ConfigError(f"unknown option(s) in the TOML config: {', '.join(unknown)}")
    return options


def build_config(*layers: Mapping[str, Any]) -> RelayConfig:
    """Merge option layers, lowest precedence first, and validate."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    converters = _converters()
    values: dict[str, Any] = {}
    for name, raw in merged.items():
        if name not in converters:
            raise ConfigError(f"unknown option: {name}")
        try:
            values[name] = converters[name](raw)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    listen = values.pop("listen", None)
    if listen is not None:
        values["listen_host"], values["listen_port"] = parse_host_port(listen)
    metrics = values.pop("metrics_listen", None)
    if metrics is not None:
        values["metrics_host"], values["metrics_port"] = parse_host_port(metrics)
    values["gateways"] = parse_gateways(values.pop("gateway", []))
    return RelayConfig(**values)


def load_config(
    flags: Mapping[str, Any], config_file: str | None, environ: Mapping[str, str] | None = None
) -> RelayConfig:
    """The documented precedence: flags > TOML file > OHTTP_RELAY_* env > defaults."""
    env_layer = options_from_env(os.environ if environ is None else environ)
    toml_layer = options_from_toml(config_file) if config_file else {}
    return build_config(env_layer, toml_layer, flags)
