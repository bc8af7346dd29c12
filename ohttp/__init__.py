"""Oblivious HTTP (RFC 9458) sans-IO core: Binary HTTP, key configurations, encapsulation.

The integration owner curates the exports below; submodules are private to the package.
"""

from ohttp.errors import (
    BinaryHTTPError,
    ChunkedError,
    ContextUsedError,
    DecapsulationError,
    DecryptionError,
    EncapsulationError,
    KeyConfigError,
    MalformedError,
    MessageTooLargeError,
    OHTTPError,
    UnknownKeyError,
    UnsupportedSuiteError,
)

__all__ = [
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
