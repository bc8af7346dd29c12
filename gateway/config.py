"""Gateway configuration: defaults < ``OHTTP_GATEWAY_*`` environment < TOML file < flags.

Also the target policy derived from it: which inner authorities the gateway serves.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.backends import default_authority

__all__ = [
    "ENV_PREFIX",
    "GatewayConfig",
    "TargetPolicy",
    "load_config",
    "parse_hostport",
]

ENV_PREFIX = "OHTTP_GATEWAY_"


def parse_hostport(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` or ``[V6]:PORT``; raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs to run; validated on construction."""

    keys: Path | None = None
    listen: str = "127.0.0.1:8080"
    backend: str = "processing"
    allow_target: tuple[str, ...] = ()
    workers: int = 1
    metrics_listen: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_date: bool = False
    date_window: float = 60.0
    max_body: int = 1024 * 1024
    max_chunk: int = 1 << 14  # largest chunk of a chunked request, plaintext bytes
    max_in_flight: int = 1024
    backend_timeout: float = 30.0
    header_timeout: float = 10.0  # a request head must be complete within this (slowloris)
    max_connections: int = 1024  # open client connections per worker; more get a 503
    replay_cache_size: int = 1_000_000
    # Set by the serving code: reload the key file on SIGHUP. Embedders leave it off.
    reload_on_sighup: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        parse_hostport(self.listen)
        default_authority(self.backend)  # raises ValueError for an unknown backend spec
        if self.metrics_listen is not None:
            parse_hostport(self.metrics_listen)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        # The Date header has one-second granularity (checklist A6.45): at least 2 s.
        _require(self.date_window >= 2, "date_window must be at least 2 seconds")
        _require(self.workers >= 1, "workers must be at least 1")
        _require(self.max_body > 0, "max_body must be positive")
        # chunked-08 §3: chunks of 2^14 bytes of plaintext MUST be accepted.
        _require(self.max_chunk >= 1 << 14, "max_chunk must be at least 16384")
        _require(self.max_in_flight > 0, "max_in_flight must be positive")
        _require(self.backend_timeout > 0, "backend_timeout must be positive")
        _require(self.header_timeout > 0, "header_timeout must be positive")
        _require(self.max_connections > 0, "max_connections must be positive")
        _require(self.replay_cache_size > 0, "replay_cache_size must be positive")

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_hostport(self.listen)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return None if self.metrics_listen is None else parse_hostport(self.metrics_listen)

    def target_policy(self, backend_authority: str | None) -> TargetPolicy:
        """The allowlist: the backend's own authority (if it has one) plus ``allow_target``."""
        return TargetPolicy.from_authorities((backend_authority or "", *self.allow_target))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _parse_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


_FROM_STRING: dict[str, Callable[[str], Any]] = {
    "keys": Path,
    "tls_cert": Path,
    "tls_key": Path,
    "allow_target": _parse_list,
    "workers": int,
    "max_body": int,
    "max_chunk": int,
    "max_in_flight": int,
    "max_connections": int,
    "replay_cache_size": int,
    "date_window": float,
    "backend_timeout": float,
    "header_timeout": float,
    "require_date": _parse_bool,
}
_SETTABLE = tuple(f.name for f in fields(GatewayConfig) if f.name != "reload_on_sighup")


def _coerce(name: str, value: Any) -> Any:
    if isinstance(value, str):
        return _FROM_STRING.get(name, str)(value)
    if name == "allow_target" and isinstance(value, list):
        return tuple(str(item) for item in value)
    if name in {"keys", "tls_cert", "tls_key"} and value is not None:
        return Path(value)
    return value


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        name: _coerce(name, env[ENV_PREFIX + name.upper()])
        for name in _SETTABLE
        if ENV_PREFIX + name.upper() in env
    }


def _from_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        data = tomllib.load(file)
    section = data.get("gateway", data)  # either top-level keys or a [gateway] table
    settings = {key.replace("-", "_"): value for key, value in section.items()}
    unknown = sorted(set(settings) - set(_SETTABLE))
    if unknown:
        raise ValueError(f"unknown settings in {path}: {', '.join(unknown)}")
    return {name: _coerce(name, value) for name, value in settings.items()}


def load_config(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config_file: Path | None = None,
) -> GatewayConfig:
    """Merge the sources, flags winning. Flags set to None count as not given."""
    if config_file is None and ENV_PREFIX + "CONFIG" in env:
        config_file = Path(env[ENV_PREFIX + "CONFIG"])
    merged: dict[str, Any] = _from_env(env)
    if config_file is not None:
        merged.update(_from_toml(config_file))
    merged.update({k: _coerce(k, v) for k, v in flags.items() if k in _SETTABLE and v is not None})
    return GatewayConfig(**merged)


_DEFAULT_PORTS = {b"https": 443, b"http": 80}


def _split_authority(authority: str) -> tuple[str, int | None]:
    """Lower-cased host (IPv6 without brackets) and explicit port, or ValueError."""
    if "@" in authority:  # userinfo is deprecated and a classic allowlist bypass
        raise ValueError("userinfo in authority")
    parts = urlsplit("//" + authority)
    host = parts.hostname
    if not host or parts.path or parts.query or parts.fragment:
        raise ValueError("not an authority")
    return host.lower().rstrip("."), parts.port


@dataclass(frozen=True)
class TargetPolicy:
    """Allowlist of (host, port) pairs; the only gate between inner requests and backends.

    RFC 9458 §6.3 and §6.10: the gateway forwards only to targets it is configured for, so
    it is not an open proxy. IP literals (loopback, link-local, 169.254.169.254 ...) and
    ``localhost`` are refused unless an operator allowlists exactly that authority. An entry
    without a port matches the scheme's default port only.
    """

    allowed: frozenset[tuple[str, int | None]]
    # (scheme, authority) spellings known to be allowed, for a lookup without parsing on the
    # hot path; anything else (case variants, other spellings) takes the full check.
    _known: frozenset[tuple[bytes, bytes]] = field(
        init=False, repr=False, compare=False, default=frozenset()
    )

    def __post_init__(self) -> None:
        spellings = {
            spelling
            for host, port in self.allowed
            for spelling in _spellings(host, port)
        }
        known = frozenset(
            (scheme, spelling)
            for scheme in _DEFAULT_PORTS
            for spelling in spellings
            if self._allows_parsed(scheme, spelling)
        )
        object.__setattr__(self, "_known", known)

    @classmethod
    def from_authorities(cls, authorities: tuple[str, ...]) -> TargetPolicy:
        return cls(frozenset(_split_authority(a) for a in authorities if a))

    def allows(self, scheme: bytes, authority: bytes) -> bool:
        return (scheme, authority) in self._known or self._allows_parsed(scheme, authority)

    def _allows_parsed(self, scheme: bytes, authority: bytes) -> bool:
        default_port = _DEFAULT_PORTS.get(scheme.lower())
        if default_port is None:
            return False
        try:
            host, port = _split_authority(authority.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            return False
        effective = default_port if port is None else port
        if (host, effective) in self.allowed:
            return True
        return effective == default_port and (host, None) in self.allowed


def _spellings(host: str, port: int | None) -> tuple[bytes, ...]:
    if not host.isascii():  # inner authorities are ASCII: such an entry never matches
        return ()
    name = f"[{host}]" if ":" in host else host
    ports = (port,) if port is not None else tuple(_DEFAULT_PORTS.values())
    return (name.encode("ascii"), *(f"{name}:{p}".encode("ascii") for p in ports))
