"""``ohttp request``: a curl-like oblivious request.

Exit codes of ``ohttp request``: 0 the inner response is 2xx; 1 a local problem (bad argument,
unreadable file); 2 usage (argparse); 3 the inner response is not 2xx; 4 the relay could not be
reached; 5 the relay or gateway rejected the request; 6 no usable key configuration; 7 the
response could not be decrypted or decoded; 8 the relay did not answer in time; 9 the relay's
TLS certificate is not trusted (see --cacert). With ``--log``, nothing is sent to the relay when
the key transparency log does not vouch for the key: 10 the log could not be fetched; 11 its
checkpoint is not signed by the log key; 12 too few witness cosignatures; 13 its tiles do not
match the checkpoint; 14 the checkpoint is not consistent with the last one seen; 15 the key is
not logged; 16 the key is outside its logged window; 17 the key's release is not pinned.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:  # the client (and aiohttp) load only when a request is sent
    from ohttp.aio.client import ClientError, Exchange, InnerResponse, ResponseStream
    from ohttp.aio.wallet import TokenSource

EXIT_OK: Final = 0
EXIT_LOCAL: Final = 1
EXIT_INNER_STATUS: Final = 3
_PROG: Final = "ohttp request"


@dataclass(frozen=True)
class RequestOptions:
    """One ``ohttp request`` invocation, parsed and validated."""

    relay: str
    keys: str | None
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    content: bytes | None
    include_headers: bool
    verbose: bool
    timeout: float
    stream: bool = False
    padding: str = "classes"
    wallet: Path | None = None
    prefer_pq: bool = True
    cacert: str | None = None
    log: str | None = None
    log_key: str | None = None
    witness_keys: tuple[str, ...] = ()
    min_witnesses: int | None = None
    releases: tuple[str, ...] = ()
    log_state: str | None = None


def configure(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``request`` subcommand."""
    request = subparsers.add_parser(
        "request",
        help="send one HTTP request through an oblivious relay",
        description="Send one HTTP request through an Oblivious HTTP relay and print the "
        "decrypted response body. " + (__doc__ or "").split("\n\n", 1)[1].strip(),
    )
    add_request_arguments(request)
    request.set_defaults(handler=run_request)


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ohttp request``; the streaming work adds ``--stream`` next to these."""
    parser.add_argument("--relay", required=True, metavar="URL", help="the relay resource URL")
    parser.add_argument(
        "--keys",
        metavar="URL|FILE",
        help="key configurations: a URL, a gateway key file or an application/ohttp-keys file "
        "(default: the relay's key mirror, RELAY/ohttp-keys)",
    )
    parser.add_argument("-X", "--request", dest="method", metavar="METHOD", help="HTTP method")
    parser.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="add an inner request header (repeatable)",
    )
    data = parser.add_mutually_exclusive_group()
    data.add_argument("-d", "--data", metavar="DATA", help="request body (UTF-8 text)")
    data.add_argument(
        "--data-binary", metavar="@FILE|DATA", help="request body, read from FILE with @FILE"
    )
    data.add_argument(
        "--json", metavar="JSON", help="JSON request body; sets Content-Type and Accept"
    )
    parser.add_argument(
        "-i", "--include", action="store_true", help="print the status line and headers first"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show on stderr what each party sees"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per round trip (with --stream: the longest wait for more data)",
    )
    parser.add_argument(
        "--cacert",
        metavar="FILE",
        help="also trust the CAs in FILE (PEM) for https:// relays and key URLs",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="chunked OHTTP: print the response body as it arrives; a stream cut short "
        "exits 7 after printing what arrived",
    )
    add_log_arguments(parser)
    parser.add_argument(
        "--padding",
        choices=("none", "classes"),
        default="classes",
        help="pad the inner request to a size class, so the relay cannot tell similar "
        "requests apart by length (docs/padding.md) [classes]",
    )
    parser.add_argument(
        "--wallet",
        type=Path,
        metavar="FILE",
        help="spend one Privacy Pass token from this wallet (`ohttp tokens fetch`) inside the "
        "encapsulated request",
    )
    parser.add_argument(
        "--prefer-kem",
        choices=("pq", "classical"),
        default="pq",
        help="which key configuration to use when the gateway offers both kinds: post-quantum "
        "(X-Wing, ML-KEM hybrids; default) or classical (X25519, P-256, ...)",
    )
    parser.add_argument(
        "url", metavar="URL", help="the target URL, e.g. https://processing.internal/v1/summarize"
    )


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    """The key transparency options (docs/transparency.md)."""
    log = parser.add_argument_group("key transparency (refuse keys the log does not vouch for)")
    log.add_argument("--log", metavar="URL|DIR", help="the key transparency log")
    log.add_argument("--log-key", metavar="VKEY", help="the log's verifier key (with --log)")
    log.add_argument(
        "--witness-key", dest="witness_keys", action="append", default=[], metavar="VKEY",
        help="a witness whose cosignature counts (repeatable)",
    )  # fmt: skip
    log.add_argument(
        "--min-witnesses", type=int, metavar="K", help="cosignatures required [every witness]"
    )
    log.add_argument(
        "--release", dest="releases", action="append", default=[], metavar="sha256:HEX",
        help="accept only keys logged for this release (repeatable)",
    )  # fmt: skip
    log.add_argument(
        "--log-state", metavar="DIR", help="keep the last checkpoint seen here (consistency)"
    )


def run_request(args: argparse.Namespace) -> int:
    """Handler of ``ohttp request``: returns the exit code (see the module docstring)."""
    from ohttp.aio.client import ClientError

    try:
        options = parse_options(args)
    except (OSError, ValueError) as exc:
        return _fail(str(exc), EXIT_LOCAL)
    if options.stream:
        return _run_streamed(options)
    try:
        response = asyncio.run(send(options))
    except ClientError as exc:
        return _fail(str(exc), _exit_code(exc))
    except ValueError as exc:  # an invalid target URL or header, found while building
        return _fail(str(exc), EXIT_LOCAL)
    write_response(response, options.include_headers, sys.stdout)
    if not response.ok:
        return _fail(f"the target answered {response.status} {response.reason}", EXIT_INNER_STATUS)
    return EXIT_OK


def parse_options(args: argparse.Namespace) -> RequestOptions:
    """Validate the parsed arguments; ValueError or OSError with a one-line message."""
    headers = tuple(_parse_header(line) for line in args.headers)
    content = _request_content(args)
    if args.json is not None:
        names = {name.lower() for name, _ in headers}
        extra = [("Content-Type", "application/json"), ("Accept", "application/json")]
        headers += tuple((name, value) for name, value in extra if name.lower() not in names)
    method = args.method or ("POST" if content is not None else "GET")
    _ssl_context(getattr(args, "cacert", None))  # a missing or bad file is a local error (1)
    return RequestOptions(
        relay=args.relay,
        keys=args.keys,
        method=method,
        url=args.url,
        headers=headers,
        content=content,
        include_headers=args.include,
        verbose=args.verbose,
        timeout=args.timeout,
        stream=bool(getattr(args, "stream", False)),
        padding=getattr(args, "padding", "classes"),
        wallet=getattr(args, "wallet", None),
        prefer_pq=getattr(args, "prefer_kem", "pq") == "pq",
        cacert=getattr(args, "cacert", None),
        log=args.log,
        log_key=args.log_key,
        witness_keys=tuple(args.witness_keys),
        min_witnesses=args.min_witnesses,
        releases=tuple(args.releases),
        log_state=args.log_state,
    )


async def send(options: RequestOptions) -> InnerResponse:
    """Send the request described by ``options`` and return the decrypted response."""
    from ohttp.aio.client import Client

    observer = _VerbosePrinter(sys.stderr) if options.verbose else None
    keys_url, keys_file = _key_source(options.keys)
    async with Client(
        options.relay,
        keys_url=keys_url,
        keys_file=keys_file,
        timeout=options.timeout,
        observer=observer,
        padding=options.padding,
        tokens=_token_source(options.wallet),
        prefer_pq=options.prefer_pq,
        ssl_context=_ssl_context(options.cacert),
        **_log_options(options),
    ) as client:
        return await client.request(
            options.method, options.url, headers=options.headers, content=options.content
        )


def write_response(response: InnerResponse, include_headers: bool, out: TextIO) -> None:
    """The body on ``out`` (bytes as received), preceded by status and headers with ``-i``."""
    _write_head(response, include_headers, out)
    out.buffer.write(response.content)
    out.flush()


def _write_head(response: InnerResponse | ResponseStream, include: bool, out: TextIO) -> None:
    if include:
        out.write(f"HTTP {response.status} {response.reason}".rstrip() + "\n")
        for name, value in response.headers.items():
            out.write(f"{name}: {value}\n")
        out.write("\n")
    out.flush()


def _run_streamed(options: RequestOptions) -> int:
    from ohttp.aio.client import ClientError

    try:
        status = asyncio.run(send_streamed(options, sys.stdout))
    except ClientError as exc:
        return _fail(str(exc), _exit_code(exc))
    except ValueError as exc:
        return _fail(str(exc), EXIT_LOCAL)
    if not 200 <= status < 300:
        return _fail(f"the target answered {status}", EXIT_INNER_STATUS)
    return EXIT_OK


async def send_streamed(options: RequestOptions, out: TextIO) -> int:
    """Send the request as chunked OHTTP and write the body to ``out`` as each chunk is
    decrypted (flushed at once); returns the inner status."""
    from ohttp.aio.client import Client

    observer = _VerbosePrinter(sys.stderr) if options.verbose else None
    keys_url, keys_file = _key_source(options.keys)
    async with (
        Client(
            options.relay,
            keys_url=keys_url,
            keys_file=keys_file,
            timeout=options.timeout,
            observer=observer,
            padding=options.padding,
            tokens=_token_source(options.wallet),
            prefer_pq=options.prefer_pq,
            ssl_context=_ssl_context(options.cacert),
            **_log_options(options),
        ) as client,
        client.stream(
            options.method, options.url, headers=options.headers, content=options.content
        ) as response,
    ):
        _write_head(response, options.include_headers, out)
        async for chunk in response:
            out.buffer.write(chunk)
            out.flush()
        return response.status


class _VerbosePrinter:
    """``-v``: for each round trip, what the relay and the gateway each see."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, exchange: Exchange) -> None:
        from yarl import URL

        url = URL(exchange.relay_url)
        inner = exchange.inner_request
        suite = exchange.suite
        lines = [
            f"* the relay sees a request from {exchange.local_address or 'this host'}:",
            f">   {exchange.method} {url.raw_path_qs or '/'}",
            *(f">   {name}: {value}" for name, value in exchange.request_headers),
            f">   [{exchange.request_bytes} bytes of ciphertext]",
            f"* the gateway decrypts it with key id {exchange.key_id} "
            f"({_name(exchange.kem.name)}{', post-quantum' if exchange.kem.post_quantum else ''}, "
            f"{_name(suite.kdf.name)}, {_name(suite.aead.name)}) "
            f"and sees, from the relay's address only:",
            f">   {_text(inner.method)} {_text(inner.scheme)}://{_text(inner.authority)}"
            f"{_text(inner.path)}",
            *(f">   {_text(name)}: {_text(value)}" for name, value in inner.headers),
            f">   [{len(inner.content)} bytes of content; "
            f"{exchange.inner_request_bytes} bytes of Binary HTTP, padding included]",
            f"* the relay returns {exchange.status}:",
            *(f"<   {name}: {value}" for name, value in exchange.response_headers),
            f"<   [{exchange.response_bytes} bytes]",
        ]
        self._out.write("\n".join(lines) + "\n")
        self._out.flush()


def _token_source(wallet: Path | None) -> TokenSource | None:
    """The wallet's tokens, spent one per request; ValueError if there are none."""
    if wallet is None:
        return None
    from ohttp.aio.wallet import TokenSource, Wallet, WalletError

    try:
        loaded = Wallet.load(wallet)
    except WalletError as exc:
        raise ValueError(f"{exc}: {wallet}") from None
    if not loaded:
        raise ValueError(f"the wallet holds no tokens: {wallet}")
    return TokenSource(loaded)


def _parse_header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not name.strip() or name != name.strip():
        raise ValueError("a header must look like 'Name: value'")
    return name, value.strip()


def _request_content(args: argparse.Namespace) -> bytes | None:
    if args.data is not None:
        return str(args.data).encode("utf-8")
    if args.json is not None:
        return str(args.json).encode("utf-8")
    if args.data_binary is not None:
        value = str(args.data_binary)
        if value.startswith("@"):
            try:
                return Path(value[1:]).read_bytes()
            except OSError as exc:
                raise OSError(f"cannot read {value[1:]}: {exc.strerror}") from exc
        return value.encode("utf-8")
    return None


def _key_source(keys: str | None) -> tuple[str | None, str | None]:
    if keys is None:
        return None, None
    if keys.startswith(("http://", "https://")):
        return keys, None
    return None, keys


def _log_options(options: RequestOptions) -> dict[str, Any]:
    return {
        "log": options.log,
        "log_key": options.log_key,
        "witness_keys": options.witness_keys,
        "min_witnesses": options.min_witnesses,
        "releases": options.releases,
        "log_state": options.log_state,
    }


def _exit_code(error: ClientError) -> int:
    from ohttp.aio.client import (
        InvalidInnerResponse,
        KeyFetchError,
        LogError,
        RelayRejected,
        RelayTimeout,
        RelayUnreachable,
        RelayUntrusted,
        ResponseDecryptionError,
    )

    codes: tuple[tuple[type[ClientError], int], ...] = (
        (RelayTimeout, 8),
        (RelayUntrusted, 9),
        (RelayUnreachable, 4),
        (RelayRejected, 5),
        (KeyFetchError, 6),
        (ResponseDecryptionError, 7),
        (InvalidInnerResponse, 7),
    )
    if isinstance(error, LogError):
        return error.exit_code
    for kind, code in codes:
        if isinstance(error, kind):
            return code
    return EXIT_LOCAL


def _ssl_context(cacert: str | None) -> ssl.SSLContext | None:
    if cacert is None:
        return None
    context = ssl.create_default_context()  # the system's CAs, and these
    try:
        context.load_verify_locations(cafile=cacert)
    except ssl.SSLError:
        raise ValueError(f"--cacert {cacert}: not a PEM certificate file") from None
    except OSError as exc:
        raise OSError(f"--cacert {cacert}: {exc.strerror or type(exc).__name__}") from None
    return context


def _fail(message: str, code: int) -> int:
    print(f"{_PROG}: {message}", file=sys.stderr)
    return code


def _name(enum_name: str) -> str:
    return enum_name.replace("_", "-")


def _text(value: bytes) -> str:
    return value.decode("latin-1")
