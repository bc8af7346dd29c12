"""The asyncio layer of ``ohttp``: the client, and the serving shell the servers share.

- :mod:`ohttp.aio.client`: the async client (aiohttp);
- :mod:`ohttp.aio.serving`, :mod:`ohttp.aio.guard`, :mod:`ohttp.aio.logs`,
  :mod:`ohttp.aio.supervisor`: listeners, the connection guard, privacy-safe logs, forked workers;
- :mod:`ohttp.aio.settings`: flags, TOML and environment layered into frozen settings;
- :mod:`ohttp.aio.keyfile`: the gateway's key file (read, write, rotate).

It imports the core (``ohttp``) and never the apps; the apps and the command line import it.
"""

from ohttp.aio.client import (
    Client,
    ClientError,
    Exchange,
    InnerResponse,
    InvalidInnerResponse,
    KeyFetchError,
    KeyRejected,
    RelayRejected,
    RelayUnreachable,
    ResponseDecryptionError,
    ResponseStream,
    StreamTruncated,
)
from ohttp.aio.keyfile import load_key_file, save_key_file

__all__ = [
    "Client",
    "ClientError",
    "Exchange",
    "InnerResponse",
    "InvalidInnerResponse",
    "KeyFetchError",
    "KeyRejected",
    "RelayRejected",
    "RelayUnreachable",
    "ResponseDecryptionError",
    "ResponseStream",
    "StreamTruncated",
    "load_key_file",
    "save_key_file",
]
