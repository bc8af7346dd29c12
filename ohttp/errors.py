"""The exception tree of the sans-IO core.

These say what went wrong, not which HTTP status answers it: that mapping lives in each app's
error module alone (``gateway/errors.py``, ``relay/errors.py``). Messages here are fixed
strings and never contain input bytes.
"""

from __future__ import annotations

__all__ = [
    "PROBLEM_DATE",
    "PROBLEM_JSON",
    "PROBLEM_OHTTP_KEY",
    "BinaryHTTPError",
    "ChunkedError",
    "ContextUsedError",
    "DecapsulationError",
    "DecryptionError",
    "EncapsulationError",
    "KeyConfigError",
    "MalformedError",
    "MessageTooLargeError",
    "OHTTPError",
    "UnknownKeyError",
    "UnsupportedSuiteError",
]

# The problem types of RFC 9458 (RFC 9457 problem details): the gateway answers them, the
# client recognises them.
PROBLEM_JSON = "application/problem+json"
PROBLEM_OHTTP_KEY = "https://iana.org/assignments/http-problem-types#ohttp-key"  # §5.3
PROBLEM_DATE = "https://iana.org/assignments/http-problem-types#date"  # §6.5.2


class OHTTPError(Exception):
    """Base class of every error raised by the ``ohttp`` core."""


class MalformedError(OHTTPError):
    """Bytes that do not follow the encoding they claim (varints, lengths, framing)."""


class BinaryHTTPError(MalformedError):
    """An invalid Binary HTTP message (RFC 9292)."""


class MessageTooLargeError(BinaryHTTPError):
    """A message exceeds a configured limit (field count, field bytes, content bytes)."""


class KeyConfigError(MalformedError):
    """An invalid key configuration or ``application/ohttp-keys`` list (RFC 9458 §3)."""


class EncapsulationError(MalformedError):
    """An encapsulated message too short or otherwise malformed (RFC 9458 §4)."""


class ChunkedError(MalformedError):
    """Chunked OHTTP framing error: truncated stream, oversized chunk, bytes after the end."""


class DecapsulationError(OHTTPError):
    """The gateway cannot decrypt this request; clients should refresh keys (RFC 9458 §5.3).

    Subclasses exist for metrics only: responses and messages never say which step failed.
    """

    def __init__(self, message: str = "request could not be decapsulated") -> None:
        super().__init__(message)


class UnknownKeyError(DecapsulationError):
    """No key with this key id, or the KEM does not match it (RFC 9458 §4.3 step 1)."""


class UnsupportedSuiteError(DecapsulationError):
    """The (KDF, AEAD) pair is not offered for this key (RFC 9458 §4.3 step 1)."""


class DecryptionError(DecapsulationError):
    """HPKE or AEAD failure. Deliberately opaque (RFC 9458 §5.2; checklist C8)."""


class ContextUsedError(OHTTPError):
    """A single-use context (response sealer or opener) was used twice: a programming error."""
