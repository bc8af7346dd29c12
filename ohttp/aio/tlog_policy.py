"""The client's key transparency policy: check a key configuration before encrypting to it.

:class:`KeyLogCheck` refuses (each with its own :class:`~ohttp.aio.tlog.LogError`) unless

- the log's checkpoint is signed by the log key (``LogSignatureError``) and cosigned by at least
  ``min_witnesses`` of the witness keys (``WitnessQuorumError``);
- the tiles served reproduce that checkpoint (``LogContentError``);
- the checkpoint extends the last one this client saw, kept in ``state_dir``
  (``LogInconsistent``);
- the key configuration is in the log (``KeyNotLogged``), now is inside its statement's window
  (``KeyWindowError``), and, when releases are pinned, the statement names one of them
  (``ReleaseNotPinned``).

The verified log is reused for ``refresh`` seconds; a configuration missing from it makes one
early re-read (a key logged since). Everything happens before the request is encapsulated.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ohttp.aio.tlog import (
    KeyNotLogged,
    KeyWindowError,
    LogInconsistent,
    ReleaseNotPinned,
    VerifiedLog,
    WitnessQuorumError,
    check_consistent,
    fetch_log,
    log_reader,
    log_verifier,
    open_saved_checkpoint,
    write_atomically,
)
from ohttp.keys import KeyConfig
from ohttp.tlog import KeyStatement, TransparencyError
from ohttp.tlog.note import ALG_ED25519, split_vkey
from ohttp.tlog.witness import ALG_COSIGNATURE_V1, CosignatureVerifier

__all__ = ["KeyLogCheck", "LogPolicy", "witness_verifier"]

_RELEASE = re.compile(r"sha256:[0-9a-f]{64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def witness_verifier(vkey: str) -> CosignatureVerifier:
    """A witness's cosignature verifier from its vkey: the ``cosignature/v1`` type (0x04), or
    the Ed25519 note type (0x01) that ``ohttp log keygen`` prints, for the same key pair."""
    try:
        name, _, alg, public_key = split_vkey(vkey)
        if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise ValueError("the witness key is not an Ed25519 key")
        return CosignatureVerifier(name, public_key)
    except TransparencyError:
        raise ValueError("the witness key is not a valid verifier key") from None


@dataclass(frozen=True)
class LogPolicy:
    """What a client requires of the log; built from the client's options (ValueError if bad)."""

    location: str  # http(s):// base URL of the log, or a directory
    log_key: str
    witness_keys: tuple[str, ...] = ()
    min_witnesses: int | None = None  # default: every witness key given
    releases: tuple[str, ...] = ()  # empty: any release (or none)
    state_dir: Path | None = None
    refresh: float = 300.0

    def __post_init__(self) -> None:
        log_verifier(self.log_key)
        witnesses = {(w.name, w.key_id) for w in map(witness_verifier, self.witness_keys)}
        if len(witnesses) != len(self.witness_keys):
            raise ValueError("a witness key is given twice")  # it would count twice
        if not 0 <= self.quorum <= len(self.witness_keys):
            raise ValueError("min_witnesses must be between 0 and the number of witness keys")
        if any(_RELEASE.fullmatch(release) is None for release in self.releases):
            raise ValueError("a release must be sha256: and 64 lowercase hex digits")

    @property
    def quorum(self) -> int:
        return len(self.witness_keys) if self.min_witnesses is None else self.min_witnesses


class KeyLogCheck:
    """Checks key configurations against the log under one :class:`LogPolicy`."""

    def __init__(
        self,
        policy: LogPolicy,
        http: Callable[[], aiohttp.ClientSession],
        timeout: aiohttp.ClientTimeout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._reader = log_reader(policy.location, http, timeout)
        self._log_key = log_verifier(policy.log_key)
        self._witnesses = [witness_verifier(vkey) for vkey in policy.witness_keys]
        self._clock = clock
        self._cache: dict[str, bytes] = {}  # full tiles never change
        self._log: VerifiedLog | None = None
        self._found: dict[KeyConfig, list[KeyStatement]] = {}  # per config, for self._log
        self._read_at = 0.0

    async def check(self, config: KeyConfig) -> KeyStatement:
        """The statement that vouches for ``config`` now; raises a LogError otherwise."""
        log = self._log
        stale = log is None or time.monotonic() - self._read_at >= self._policy.refresh
        if log is None or stale or not self._statements(log, config):
            log = await self.refresh()
        return self._vouching(log, config)

    async def refresh(self) -> VerifiedLog:
        """Read and check the log again (signatures, quorum, tiles, consistency)."""
        log = await fetch_log(
            self._reader, self._log_key, others=self._witnesses, cache=self._cache
        )
        self._require_quorum(log)
        self._advance_state(log)
        self._log, self._read_at, self._found = log, time.monotonic(), {}
        return log

    def _require_quorum(self, log: VerifiedLog) -> None:
        signed = {(s.name, s.key_id) for s in log.opened.verified}
        count = sum((w.name, w.key_id) in signed for w in self._witnesses)
        if count < self._policy.quorum:
            raise WitnessQuorumError()

    def _advance_state(self, log: VerifiedLog) -> None:
        if self._policy.state_dir is None:
            return
        path = self._policy.state_dir / _state_name(log.checkpoint.origin)
        try:
            saved = path.read_bytes()
        except FileNotFoundError:
            saved = None
        except OSError:
            raise LogInconsistent("the saved log checkpoint could not be read") from None
        if saved is not None:
            check_consistent(open_saved_checkpoint(saved, self._log_key), log)
        if saved != log.note:
            write_atomically(path, log.note)

    def _statements(self, log: VerifiedLog, config: KeyConfig) -> list[KeyStatement]:
        found = self._found.get(config)
        if found is None:
            found = self._found[config] = log.statements_of(config)
        return found

    def _vouching(self, log: VerifiedLog, config: KeyConfig) -> KeyStatement:
        logged = self._statements(log, config)
        if not logged:
            raise KeyNotLogged()
        now = self._clock()
        active = [s for s in logged if s.active(now)]
        if not active:
            raise KeyWindowError()
        pinned = set(self._policy.releases)
        allowed = [s for s in active if not pinned or s.release in pinned]
        if not allowed:
            raise ReleaseNotPinned()
        return allowed[0]


def _state_name(origin: str) -> str:
    """One state file per log origin, named so any origin is a safe file name."""
    digest = hashlib.sha256(origin.encode()).hexdigest()[:16]
    return f"{_UNSAFE.sub('_', origin)[:64]}-{digest}.checkpoint"
