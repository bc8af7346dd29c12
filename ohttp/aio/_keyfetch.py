"""Where the client's key configuration comes from, and when it is fetched again."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from yarl import URL

from ohttp.aio._errors import (
    KeyFetchError,
    KeyRejected,
    RelayUnreachable,
    network_errors,
    read_body,
)
from ohttp.aio.keyfile import load_key_file
from ohttp.errors import OHTTPError
from ohttp.keys import (
    AEAD,
    KDF,
    KEM,
    KEYS_MEDIA_TYPE,
    KeyConfig,
    SymmetricSuite,
    decode_key_configs,
)

# aiohttp adds these unless told not to; each one is a fingerprint the relay does not need
# (RFC 9458 §5: the outer request carries only what the encapsulated request does not).
SKIP_AUTO_HEADERS: Final = ("User-Agent", "Accept", "Accept-Encoding")
_MAX_KEYS_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class UsableKey:
    config: KeyConfig
    suite: SymmetricSuite
    expires: float | None  # time.monotonic() deadline; None: never (file or fixed config)


def key_mirror_url(relay_url: str) -> str:
    """The relay's key mirror: ``<relay>/ohttp-keys``, or ``<relay>/<NAME>/ohttp-keys``."""
    url = URL(relay_url)
    return str(url.with_path(url.path.rstrip("/") + "/ohttp-keys"))


def supported_suite(config: KeyConfig) -> SymmetricSuite | None:
    """The first (KDF, AEAD) pair of ``config`` this client implements, if any.

    ``decode_key_configs`` already drops configurations with unknown algorithms; this is the
    client's own check, so a ``KeyConfig`` built by other means is held to the same rule.
    """
    if config.kem not in set(KEM):
        return None
    for suite in config.suites:
        if suite.kdf in set(KDF) and suite.aead in set(AEAD):
            return suite
    return None


class KeySource:
    """Exactly one source of key configurations: the relay's key mirror, a ``keys_url``, a
    ``keys_file`` or a fixed ``key_config``; fetched keys are cached for their freshness."""

    def __init__(
        self,
        relay_url: str,
        *,
        keys_url: str | None,
        keys_file: str | Path | None,
        key_config: KeyConfig | None,
        http: Callable[[], aiohttp.ClientSession],
        timeout: aiohttp.ClientTimeout,
        prefer_pq: bool = True,
    ) -> None:
        # By default the keys come from the relay itself (its key mirror).
        self._from_relay = keys_url is None and keys_file is None and key_config is None
        self._url = key_mirror_url(relay_url) if self._from_relay else keys_url
        self._file = Path(keys_file) if keys_file is not None else None
        self._fixed = key_config
        self._http = http
        self._timeout = timeout
        self._key: UsableKey | None = None
        self._prefer_pq = prefer_pq

    async def usable(self) -> UsableKey:
        """The cached key while fresh, else a newly loaded one."""
        key = self._key
        if key is not None and (key.expires is None or time.monotonic() < key.expires):
            return key
        return await self._load()

    async def refreshed(self, stale: UsableKey, rejected: KeyRejected) -> UsableKey:
        """A newly loaded key after ``stale`` was rejected; ``rejected`` again if unchanged."""
        fresh = await self._load()
        if fresh.config == stale.config:
            # Same configuration again (fixed config, or a mirror still serving it): a retry
            # would certainly fail the same way.
            raise rejected
        return fresh

    async def _load(self) -> UsableKey:
        lifetime: float | None = None
        if self._fixed is not None:
            configs = [self._fixed]
        elif self._file is not None:
            configs = _read_key_file(self._file)
        else:
            assert self._url is not None
            configs, lifetime = await self._fetch(self._url)
        expires = None if lifetime is None else time.monotonic() + lifetime
        key = _choose_key(_preferred_first(configs, self._prefer_pq), expires)
        self._key = key
        return key

    async def _fetch(self, url: str) -> tuple[list[KeyConfig], float]:
        unreachable = (
            RelayUnreachable()
            if self._from_relay
            else KeyFetchError("the key configuration could not be fetched")
        )
        with network_errors(unreachable):
            async with self._http().get(
                url,
                headers={"Accept": KEYS_MEDIA_TYPE},
                skip_auto_headers=SKIP_AUTO_HEADERS,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                if response.status != 200 or response.content_type != KEYS_MEDIA_TYPE:
                    raise KeyFetchError("the key configuration endpoint did not return keys")
                body = await read_body(response, _MAX_KEYS_BYTES, KeyFetchError)
                lifetime = _freshness_lifetime(response.headers)
        try:
            # RFC 9458 §3.2: an encoding error discards the whole collection.
            return decode_key_configs(body), lifetime
        except OHTTPError as exc:
            raise KeyFetchError("the key configuration list is malformed") from exc


def _read_key_file(path: Path) -> list[KeyConfig]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFetchError("the key file could not be read") from exc
    with contextlib.suppress(OHTTPError, ValueError):
        return decode_key_configs(data)
    try:
        return [key.config for key in load_key_file(path).current()]
    except (OHTTPError, ValueError, OSError) as exc:
        raise KeyFetchError("the key file holds no valid key configuration") from exc


def _preferred_first(configs: Iterable[KeyConfig], prefer_pq: bool) -> list[KeyConfig]:
    """The configurations with the preferred kind of KEM first, each kind in the offered order.

    Post-quantum first by default: a recorded request stays private even once a quantum
    computer exists ("harvest now, decrypt later"); classical first saves about 1.1 KB a
    request (an X-Wing enc is 1120 bytes against 32 for X25519)."""
    return sorted(configs, key=lambda config: config.kem.post_quantum != prefer_pq)


def _choose_key(configs: Iterable[KeyConfig], expires: float | None) -> UsableKey:
    for config in configs:
        suite = supported_suite(config)
        if suite is not None:
            return UsableKey(config, suite, expires)
    raise KeyFetchError("no key configuration uses a supported suite")


def _freshness_lifetime(headers: Mapping[str, str]) -> float:
    """Seconds the key list stays fresh: max-age minus Age (RFC 9111 §4.2); 0 if not cacheable."""
    max_age = 0
    for value in headers.get("Cache-Control", "").split(","):
        directive, _, argument = value.strip().partition("=")
        if directive.lower() in ("no-store", "no-cache"):
            return 0.0
        if directive.lower() == "max-age" and argument.strip('"').isdigit():
            max_age = int(argument.strip('"'))
    age = headers.get("Age", "0").strip()
    return float(max(0, max_age - (int(age) if age.isdigit() else 0)))
