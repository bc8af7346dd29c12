"""Gateway configuration: flags > ``OHTTP_GATEWAY_*`` environment > TOML file > defaults.

The layering itself is :mod:`ohttp.aio.settings`, shared with the relay. Also the target policy
derived from the configuration: which inner authorities the gateway serves.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

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
    "ECHO_AUTHORITY",
    "ENV_PREFIX",
    "PROCESSING_AUTHORITY",
    "GatewayConfig",
    "SettingsError",
    "TargetPolicy",
    "default_authority",
    "load_config",
    "parse_origin",
]

ENV_PREFIX = "OHTTP_GATEWAY_"
ECHO_AUTHORITY = "echo.internal"
PROCESSING_AUTHORITY = "processing.internal"


def parse_origin(origin_url: str) -> URL:
    """An origin URL for ``HttpOriginBackend``, or ValueError."""
    url = URL(origin_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("origin URL must be http:// or https:// with a host")
    if url.user is not None or url.password is not None or url.query_string or url.fragment:
        raise ValueError("origin URL must not carry userinfo, a query or a fragment")
    if not _valid_host(url.raw_host or ""):
        raise ValueError("origin URL host must be a DNS name or an IP address")
    return url


# RFC 1123 §2.1 host names (letters, digits, hyphens; labels of 1 to 63; underscores too, as
# internal DNS names have them), after IDNA encoding; or an IP literal.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _valid_host(host: str) -> bool:
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return True
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def default_authority(spec: str) -> str:
    """The authority inner requests name for a backend spec: the default target allowlist."""
    if spec == "echo":
        return ECHO_AUTHORITY
    if spec == "processing":
        return PROCESSING_AUTHORITY
    if spec.startswith(("http://", "https://")):
        return parse_origin(spec).raw_authority
    raise ValueError("backend must be 'echo', 'processing' or an http:// or https:// URL")


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
    # Outer body bytes as received (the encapsulated request), the same limit and default as
    # the relay's max_body_bytes: a 1 MiB inner request must fit (docs/operations.md).
    max_body: int = 16 * 1024 * 1024
    max_chunk: int = 1 << 14  # largest chunk of a chunked request, plaintext bytes
    max_in_flight: int = 1024
    backend_timeout: float = 30.0
    header_timeout: float = 10.0  # a request head must be complete within this (slowloris)
    max_connections: int = 1024  # open client connections per worker; more get a 503
    # On SIGTERM, requests in flight get this long; below Kubernetes' default 30 s grace period.
    shutdown_timeout: float = 25.0
    replay_cache_size: int = 1_000_000
    padding: str = "classes"  # responses padded to size classes (ohttp.padding) or "none"
    # Privacy Pass (docs/privacy-pass.md): the issuer directory's URL or a file holding it.
    require_token: str | None = None
    token_origin: str | None = None  # the challenge's origin info; default: backend authority
    token_issuer: str | None = None  # the challenge's issuer name; default: the URL authority
    token_spent_ttl: float = 7 * 86400.0  # spent-token records; keep longer than a key lives
    # Shared state (replay records): a Redis URL; None is this process's memory, or the
    # supervisor's store shared by all workers with workers > 1. Not printed: it may hold a
    # password.
    state: str | None = field(default=None, repr=False)
    body_timeout: float = 30.0  # the whole request body must arrive within this of its head
    # An idle client connection is closed after this; longer than the relay's
    # upstream_idle_timeout (15 s) by a margin, so a relay never reuses one being closed.
    keepalive_timeout: float = 30.0
    # The longest a client may take no bytes of a response before it is abandoned (a stall
    # limit, as nginx's send_timeout: a slow but steady download is not cut off).
    write_timeout: float = 30.0
    # Content chunks of an indeterminate-length inner message; more is an inner 413.
    max_content_chunks: int = 4096
    # Key transparency (docs/transparency.md): refuse to load a key the log does not vouch for.
    log: str | None = None  # the log's http(s):// URL or directory
    log_key: str | None = None  # its verifier key
    require_release: bool = False  # and whose statement names this gateway's own release
    # The measurement --require-release compares with; None: measure the installed release.
    # Set by tests and embedders, never a setting.
    release_measurement: str | None = field(default=None, compare=False)
    # Set by the serving code: reload the key file on SIGHUP. Embedders leave it off.
    reload_on_sighup: bool = field(default=False, compare=False)
    # `ohttp gateway` adds a key this often (seconds; 0: never) and keeps the one it replaces
    # for key_rotation_overlap more seconds (docs/operations.md, "Key rotation").
    key_rotation: int = 0
    key_rotation_overlap: int = 2 * 24 * 3600
    # Relay authentication (docs/operations.md): accepted bearer tokens, client certificate CA.
    relay_token_file: Path | None = None
    client_ca: Path | None = None
    log_level: str = "info"  # one of ohttp.aio.logs.LOG_LEVELS

    def __post_init__(self) -> None:
        parse_host_port(self.listen, "listen")
        try:
            default_authority(self.backend)
        except ValueError:
            raise SettingsError(
                "backend: expected 'echo', 'processing' or an http:// or https:// URL"
            ) from None
        if self.metrics_listen is not None:
            parse_host_port(self.metrics_listen, "metrics_listen")
        require_together(self, "tls_cert", "tls_key")
        # The Date header has one-second granularity (checklist A6.45): at least 2 s.
        require(self.date_window >= 2, "date_window must be at least 2 seconds")
        require(self.workers >= 1, "workers must be at least 1")
        require(self.max_body > 0, "max_body must be positive")
        # chunked-08 §3: chunks of 2^14 bytes of plaintext MUST be accepted.
        require(self.max_chunk >= 1 << 14, "max_chunk must be at least 16384")
        require(self.max_in_flight > 0, "max_in_flight must be positive")
        require(self.backend_timeout > 0, "backend_timeout must be positive")
        require(self.header_timeout > 0, "header_timeout must be positive")
        require(self.max_connections > 0, "max_connections must be positive")
        require(self.shutdown_timeout >= 0, "shutdown_timeout must not be negative")
        require(self.replay_cache_size > 0, "replay_cache_size must be positive")
        require(self.padding in ("none", "classes"), "padding must be 'none' or 'classes'")
        _check_token_settings(self)
        require(
            self.state is None or self.state.startswith(STATE_SCHEMES),
            "state: expected a redis://, rediss:// or unix:// URL",
        )
        require(self.body_timeout > 0, "body_timeout must be positive")
        require(self.keepalive_timeout > 0, "keepalive_timeout must be positive")
        require(self.write_timeout > 0, "write_timeout must be positive")
        require(self.max_content_chunks > 0, "max_content_chunks must be positive")
        require(self.key_rotation >= 0, "key_rotation must not be negative")
        # The overlap must cover a key document's cache lifetime, at least the 60 s floor.
        require(self.key_rotation_overlap >= 60, "key_rotation_overlap must be at least 60")
        require(self.client_ca is None or self.tls_cert is not None,
                "client_ca needs tls_cert and tls_key")
        require(self.log_level in LOG_LEVELS, "log_level must be debug, info, warning or error")
        require_together(self, "log", "log_key")
        require(not self.require_release or self.log is not None, "require_release needs log")

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_host_port(self.listen, "listen")

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        if self.metrics_listen is None:
            return None
        return parse_host_port(self.metrics_listen, "metrics_listen")

    def target_policy(self, backend_authority: str | None) -> TargetPolicy:
        """The allowlist: the backend's own authority (if it has one) plus ``allow_target``."""
        return TargetPolicy.from_authorities((backend_authority or "", *self.allow_target))


def _check_token_settings(config: GatewayConfig) -> None:
    source = config.require_token
    for option in ("token_origin", "token_issuer"):
        value = getattr(config, option)
        require(value is None or (value.isascii() and 0 < len(value) < 256), f"{option}: "
                "expected an ASCII name")  # fmt: skip
    if source is None:
        return
    require(config.token_spent_ttl > 0, "token_spent_ttl must be positive")
    if source.startswith(("http://", "https://")):
        require(bool(urlsplit(source).hostname), "require_token: expected a URL with a host")
    else:
        require(config.token_issuer is not None,
                "token_issuer is required when require_token is a file")  # fmt: skip


# Every init field is a setting, except the switch the serving code sets itself.
_OPTIONS = option_types(GatewayConfig, exclude=("reload_on_sighup", "release_measurement"))


def load_config(
    flags: argparse.Namespace | Mapping[str, Any],
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> GatewayConfig:
    """Merge flags > environment > TOML (``config_file`` or ``OHTTP_GATEWAY_CONFIG``) > defaults.

    ``environ`` defaults to ``os.environ``; raises :class:`SettingsError`.
    """
    values = gather(
        _OPTIONS, flags, config_file=config_file, table="gateway",
        env_prefix=ENV_PREFIX, environ=environ,
    )  # fmt: skip
    return GatewayConfig(**values)


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
