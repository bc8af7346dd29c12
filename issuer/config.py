"""Issuer configuration: flags > ``OHTTP_ISSUER_*`` environment > TOML file > defaults.

The layering is :mod:`ohttp.aio.settings`, shared with the gateway and the relay.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ohttp.aio.settings import (
    SettingsError,
    gather,
    option_types,
    parse_host_port,
    require,
    require_together,
)
from ohttp.aio.store import STATE_SCHEMES

__all__ = ["ENV_PREFIX", "IssuerConfig", "SettingsError", "load_config"]

ENV_PREFIX = "OHTTP_ISSUER_"


@dataclass(frozen=True)
class IssuerConfig:
    """Everything the issuer needs to run; validated on construction."""

    key: Path | None = None  # PEM file: one or more PKCS#8 RSA keys, the first is current
    listen: str = "127.0.0.1:8443"
    accounts: Path | None = None  # one bearer credential per line; '#' starts a comment
    tokens_per_window: int = 100
    window: float = 3600.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    header_timeout: float = 10.0
    max_connections: int = 1024
    shutdown_timeout: float = 25.0
    directory_max_age: int = 300  # Cache-Control of the directory: bounds a rotation's reach
    # The quota counters: a Redis URL shared by replicas (docs/state.md); None is this
    # process's memory. Not printed: it may hold a password.
    state: str | None = field(default=None, repr=False)
    # Set by the serving code: reload the key and accounts files on SIGHUP.
    reload_on_sighup: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        parse_host_port(self.listen, "listen")
        require_together(self, "tls_cert", "tls_key")
        require(self.tokens_per_window > 0, "tokens_per_window must be positive")
        require(self.window > 0, "window must be positive")
        require(self.header_timeout > 0, "header_timeout must be positive")
        require(self.max_connections > 0, "max_connections must be positive")
        require(self.shutdown_timeout >= 0, "shutdown_timeout must not be negative")
        require(self.directory_max_age >= 0, "directory_max_age must not be negative")
        require(self.state is None or self.state.startswith(STATE_SCHEMES),
                "state: expected a redis://, rediss:// or unix:// URL")  # fmt: skip

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_host_port(self.listen, "listen")


_OPTIONS = option_types(IssuerConfig, exclude=("reload_on_sighup",))


def load_config(
    flags: argparse.Namespace | Mapping[str, Any],
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> IssuerConfig:
    """Merge flags > environment > TOML (``config_file`` or ``OHTTP_ISSUER_CONFIG``) > defaults.

    Raises :class:`SettingsError`.
    """
    values = gather(
        _OPTIONS, flags, config_file=config_file, table="issuer",
        env_prefix=ENV_PREFIX, environ=environ,
    )  # fmt: skip
    return IssuerConfig(**values)
