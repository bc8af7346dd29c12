"""The client's errors, and the one boundary where aiohttp's and the socket's become them."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import ClassVar

import aiohttp


class ClientError(Exception):
    """Base class of every error the client raises; messages are fixed strings."""

    default_message: ClassVar[str] = "the oblivious request failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class RelayUnreachable(ClientError):
    """The relay could not be reached, or the connection failed or timed out."""

    default_message = "the relay could not be reached"


class RelayTimeout(RelayUnreachable):
    """The relay did not answer within the timeout."""

    default_message = "the relay did not answer in time"


class RelayUntrusted(RelayUnreachable):
    """The relay's TLS certificate did not verify (see ``ohttp request --cacert``)."""

    default_message = "the relay's TLS certificate is not trusted"


class RelayRejected(ClientError):
    """The relay (or the gateway behind it) answered the outer request with an error status."""

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status = status
        super().__init__(message or f"the relay rejected the request with status {status}")


class KeyRejected(RelayRejected):
    """The gateway does not accept the key configuration, even after a refresh (RFC 9458 §5.3)."""

    def __init__(self, status: int) -> None:
        super().__init__(status, f"the gateway rejected the key configuration (status {status})")


class KeyFetchError(ClientError):
    """No usable key configuration could be obtained."""

    default_message = "no usable key configuration could be obtained"


class ResponseDecryptionError(ClientError):
    """The relay's answer is not an encapsulated response this request can open."""

    default_message = "the encapsulated response could not be decrypted"


class StreamTruncated(ResponseDecryptionError):
    """A chunked response ended before its final chunk: what arrived is not the whole body
    (draft-ietf-ohai-chunked-ohttp-08 §7.1)."""

    default_message = "the response stream ended before its final chunk"


class InvalidInnerResponse(ClientError):
    """The decrypted response is not a valid Binary HTTP response."""

    default_message = "the decrypted response is not a valid Binary HTTP response"


@contextlib.contextmanager
def network_errors(error: ClientError) -> Iterator[None]:
    """The one boundary where aiohttp and socket errors become this package's errors."""
    try:
        yield
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _specific(error, exc) from exc


def _specific(error: ClientError, exc: BaseException) -> ClientError:
    """An unreachable relay is told apart from a timeout and an untrusted certificate."""
    if type(error) is not RelayUnreachable:
        return error
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return RelayUntrusted()
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutError subclasses too
        return RelayTimeout()
    return error


async def read_body(
    response: aiohttp.ClientResponse, limit: int, error: type[ClientError]
) -> bytes:
    """The whole body, or ``error`` as soon as it is known to exceed ``limit``."""
    if response.content_length is not None and response.content_length > limit:
        raise error("the response is larger than the client accepts")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise error("the response is larger than the client accepts")
        chunks.append(chunk)
    return b"".join(chunks)
