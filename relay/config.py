"""Relay configuration: a frozen dataclass merged as flags > OHTTP_RELAY_* env > TOML > defaults.

The layering itself is :mod:`ohttp.aio.settings`, shared with the gateway; this module adds what
only the relay has: the named gateways and the ``HOST:PORT`` options split into two fields.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ohttp.aio.logs import LOG_LEVELS
from ohttp.aio.settings import (
    SettingsError,
    gather,
    option_types,
    parse_host_port,
    require,
    require_together,
)
from ohttp.aio.store import STATE_SCHEMES

__all__ = [
    "ENV_PREFIX",
    "ConfigError",
    "GatewayTarget",
    "RelayConfig",
    "load_config",
    "parse_gateways",
    "parse_host_port",
]

ENV_PREFIX = "OHTTP_RELAY_"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RESERVED_NAMES = frozenset({"healthz", "metrics", "ohttp-keys"})

ConfigError = SettingsError  # the relay's historical name for the one settings error


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
    # On SIGTERM, forwards in flight get this long; below Kubernetes' default 30 s grace period.
    shutdown_timeout: float = 25.0
    # Shared state (rate-limit counters): a Redis URL; None is this process's memory, or the
    # supervisor's store shared by all workers. Not printed: it may hold a password.
    state: str | None = field(default=None, repr=False)
    # The longest a client may take no bytes of a response before it is abandoned.
    write_timeout: float = 30.0
    log_level: str = "info"  # one of ohttp.aio.logs.LOG_LEVELS
    # The key transparency log's base URL, served at /log/... (docs/transparency.md); off if None.
    log_mirror: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    def gateway(self, name: str) -> GatewayTarget | None:
        return next((g for g in self.gateways if g.name == name), None)


def _validate(config: RelayConfig) -> None:
    require(bool(config.gateways), "at least one --gateway is required")
    names = [g.name for g in config.gateways]
    require(len(set(names)) == len(names), "gateway names must be unique")
    for name in names:
        valid = not name or (_NAME_PATTERN.fullmatch(name) and name not in _RESERVED_NAMES)
        require(bool(valid), "gateway names must match [A-Za-z0-9_-]{1,64} and not be reserved")
    for first, second in (("tls_cert", "tls_key"), ("client_cert", "client_key"),
                          ("metrics_host", "metrics_port")):
        require_together(config, first, second)
    positive = ("workers", "max_body_bytes", "max_connections", "max_in_flight",
                "upstream_pool_size")
    for name in positive:
        require(getattr(config, name) >= 1, f"{name} must be at least 1")
    seconds = ("header_timeout", "body_timeout", "connect_timeout", "upstream_timeout",
               "rate_limit_window", "key_cache_default_ttl", "key_cache_max_ttl",
               "upstream_idle_timeout", "write_timeout")
    for name in seconds:
        require(getattr(config, name) > 0, f"{name} must be positive")
    require(config.rate_limit >= 0 and config.key_cache_min_ttl >= 0
            and config.shutdown_timeout >= 0,
            "rate_limit, key_cache_min_ttl and shutdown_timeout must not be negative")
    require(config.key_cache_min_ttl <= config.key_cache_max_ttl,
            "key_cache_min_ttl must not exceed key_cache_max_ttl")
    require(config.log_level in LOG_LEVELS, "log_level must be debug, info, warning or error")
    token = config.gateway_token
    require(token is None or re.fullmatch(r"[\x21-\x7e]+", token) is not None,
            "gateway_token must be visible ASCII without spaces")
    require(config.state is None or config.state.startswith(STATE_SCHEMES),
            "state: expected a redis://, rediss:// or unix:// URL")
    mirror = config.log_mirror
    require(mirror is None or re.fullmatch(r"https?://[^\s@#?]+", mirror) is not None,
            "log_mirror must be an http:// or https:// URL without credentials or query")


def parse_gateways(values: tuple[str, ...]) -> tuple[GatewayTarget, ...]:
    """``URL`` (served at ``/``) or ``NAME=URL`` (served at ``/NAME``) into targets."""
    targets = []
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or "://" in name:
            name, url = "", value
        targets.append(GatewayTarget(name, url))
    return tuple(targets)


def _gateway_table(value: Any) -> Any:
    """A TOML table ``[relay.gateway]`` of ``name = "URL"`` as ``NAME=URL`` items."""
    if isinstance(value, dict):
        return [f"{name}={url}" for name, url in value.items()]
    return value


# The settings: the fields, but one HOST:PORT option each for the listeners (split in two
# fields) and ``gateway`` (repeatable ``[NAME=]URL``) for ``gateways``.
_SPLIT = ("gateways", "listen_host", "listen_port", "metrics_host", "metrics_port")
_OPTIONS = option_types(
    RelayConfig,
    exclude=_SPLIT,
    extra={"listen": str, "metrics_listen": str, "gateway": tuple[str, ...]},
)


def load_config(
    flags: argparse.Namespace | Mapping[str, Any],
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> RelayConfig:
    """Merge flags > environment > TOML (``config_file`` or ``OHTTP_RELAY_CONFIG``) > defaults.

    ``environ`` defaults to ``os.environ``; raises :class:`ConfigError`.
    """
    values = gather(
        _OPTIONS, flags, config_file=config_file, table="relay", env_prefix=ENV_PREFIX,
        environ=environ, parsers={"gateway": _gateway_table},
    )  # fmt: skip
    for option, prefix in (("listen", "listen"), ("metrics_listen", "metrics")):
        if option in values:
            host_port = parse_host_port(values.pop(option), option)
            values[f"{prefix}_host"], values[f"{prefix}_port"] = host_port
    values["gateways"] = parse_gateways(values.pop("gateway", ()))
    return RelayConfig(**values)
