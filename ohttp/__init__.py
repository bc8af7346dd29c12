"""Oblivious HTTP (RFC 9458) sans-IO core: Binary HTTP, key configurations, encapsulation.

Bytes in, bytes out: nothing here does I/O or imports asyncio. The asyncio layer (the client,
the serving shell, settings and key files) is ``ohttp.aio``; the command line is ``ohttp.cli``;
the gateway and relay are the ``gateway`` and ``relay`` packages.
"""

from ohttp.bhttp import (
    Fields,
    InformationalResponse,
    Limits,
    Request,
    Response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from ohttp.chunked import (
    ChunkedRequestDecoder,
    ChunkedRequestEncoder,
    ChunkedResponseDecoder,
    ChunkedResponseEncoder,
    ChunkLimits,
)
from ohttp.encapsulation import (
    ClientResponseOpener,
    ResponseSealer,
    decapsulate_request,
    encapsulate_request,
)
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
from ohttp.keys import (
    AEAD,
    KDF,
    KEM,
    GatewayKey,
    KeyConfig,
    KeyRing,
    SymmetricSuite,
    decode_key_configs,
    encode_key_configs,
)

__all__ = [
    "AEAD",
    "KDF",
    "KEM",
    "BinaryHTTPError",
    "ChunkLimits",
    "ChunkedError",
    "ChunkedRequestDecoder",
    "ChunkedRequestEncoder",
    "ChunkedResponseDecoder",
    "ChunkedResponseEncoder",
    "ClientResponseOpener",
    "ContextUsedError",
    "DecapsulationError",
    "DecryptionError",
    "EncapsulationError",
    "Fields",
    "GatewayKey",
    "InformationalResponse",
    "KeyConfig",
    "KeyConfigError",
    "KeyRing",
    "Limits",
    "MalformedError",
    "MessageTooLargeError",
    "OHTTPError",
    "Request",
    "Response",
    "ResponseSealer",
    "SymmetricSuite",
    "UnknownKeyError",
    "UnsupportedSuiteError",
    "decapsulate_request",
    "decode_key_configs",
    "decode_request",
    "decode_response",
    "encapsulate_request",
    "encode_key_configs",
    "encode_request",
    "encode_response",
]
