"""Key statements: the log entries of the gateway key transparency log.

An entry is UTF-8 text, one ``name value`` line each, every line ending in a newline, in
exactly this order (the first line is the bare tag)::

    ohttp-key/v1
    config <standard base64 of one key configuration, RFC 9458 §3.1, no length prefix>
    not-before <RFC 3339 UTC time, whole seconds, e.g. 2026-12-05T14:00:00Z>
    not-after <same>
    release <sha256:<64 lowercase hex> or none>

Both bounds are required. They mean what :class:`ohttp.keys.GatewayKey` means: the key is
advertised from ``not-before`` on, and neither advertised nor accepted from ``not-after`` on
(``not_before <= now < not_after``). A key with an open bound gets the missing one from the
appender (:meth:`KeyStatement.from_gateway_key`), so every logged key has a finite window a
client can check. ``release`` names the gateway software release (e.g. an image digest) that
holds the key, or ``none``.

:meth:`KeyStatement.parse` accepts only the canonical encoding that :meth:`encode` produces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ohttp.errors import KeyConfigError
from ohttp.keys import GatewayKey, KeyConfig
from ohttp.tlog._text import b64decode, b64encode
from ohttp.tlog.errors import KeyStatementError

__all__ = ["KEY_STATEMENT_TAG", "KeyStatement", "format_time", "parse_time"]

KEY_STATEMENT_TAG = "ohttp-key/v1"
_FIELDS = ("config", "not-before", "not-after", "release")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_RELEASE = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z, the last time RFC 3339 can write


def format_time(timestamp: int) -> str:
    """POSIX seconds as RFC 3339 UTC with whole seconds and ``Z``."""
    if not 0 <= timestamp <= _MAX_TIME:
        raise KeyStatementError("time out of range")
    return datetime.fromtimestamp(timestamp, UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> int:
    """The inverse of :func:`format_time`; any other spelling is rejected."""
    if _TIME.fullmatch(text) is None:
        raise KeyStatementError("malformed time")
    try:
        parsed = datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise KeyStatementError("malformed time") from None
    timestamp = int(parsed.timestamp())
    if format_time(timestamp) != text:
        raise KeyStatementError("malformed time")
    return timestamp


@dataclass(frozen=True, slots=True)
class KeyStatement:
    """One logged gateway key: its configuration, validity window and release digest."""

    config: KeyConfig
    not_before: int
    not_after: int
    release: str | None = None

    def __post_init__(self) -> None:
        format_time(self.not_before)
        format_time(self.not_after)
        if self.not_after <= self.not_before:
            raise KeyStatementError("key validity window is empty")
        if self.release is not None and _RELEASE.fullmatch(self.release) is None:
            raise KeyStatementError("malformed release digest")

    @classmethod
    def from_gateway_key(
        cls,
        key: GatewayKey,
        *,
        not_before: int | None = None,
        not_after: int | None = None,
        release: str | None = None,
    ) -> KeyStatement:
        """The statement of a gateway key. An explicit bound overrides the key's own; a bound
        left open by both raises :class:`~ohttp.tlog.errors.KeyStatementError`."""
        start = key.not_before if not_before is None else not_before
        end = key.not_after if not_after is None else not_after
        if start is None or end is None:
            raise KeyStatementError("a key statement needs both validity bounds")
        return cls(key.config, start, end, release)

    def active(self, now: float) -> bool:
        """Inside the validity window: ``not_before <= now < not_after``."""
        return self.not_before <= now < self.not_after

    def encode(self) -> bytes:
        """The canonical entry bytes."""
        values = (
            b64encode(self.config.encode()),
            format_time(self.not_before),
            format_time(self.not_after),
            self.release or "none",
        )
        lines = [KEY_STATEMENT_TAG] + [f"{n} {v}" for n, v in zip(_FIELDS, values, strict=True)]
        return "".join(line + "\n" for line in lines).encode()

    @classmethod
    def parse(cls, entry: bytes) -> KeyStatement:
        """Parse an entry; anything but the canonical encoding raises KeyStatementError."""
        try:
            text = entry.decode("ascii")  # every valid statement is ASCII
        except UnicodeDecodeError:
            raise KeyStatementError("malformed key statement") from None
        lines = text.split("\n")
        if lines[:1] != [KEY_STATEMENT_TAG] or lines[-1:] != [""] or len(lines) != 6:
            raise KeyStatementError("malformed key statement")
        values = []
        for name, line in zip(_FIELDS, lines[1:5], strict=True):
            label, space, value = line.partition(" ")
            if label != name or not space:
                raise KeyStatementError("malformed key statement")
            values.append(value)
        config_text, not_before, not_after, release = values
        statement = cls(
            _parse_config(config_text),
            parse_time(not_before),
            parse_time(not_after),
            None if release == "none" else release,
        )
        if statement.encode() != entry:
            raise KeyStatementError("malformed key statement")  # e.g. stray spaces
        return statement


def _parse_config(text: str) -> KeyConfig:
    raw = b64decode(text)
    if raw is None:
        raise KeyStatementError("malformed key configuration")
    try:
        config = KeyConfig.decode(raw)
    except KeyConfigError:
        raise KeyStatementError("malformed key configuration") from None
    # Decoding drops algorithms it does not know: a logged key must be logged as it is.
    if config.encode() != raw:
        raise KeyStatementError("malformed key configuration")
    return config
