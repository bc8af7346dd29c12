"""One harness per parser an attacker can reach (issue 13): its entry point on bytes, the
parser's own error types (anything else raised is a failure) and valid seeds to mutate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ohttp import bhttp
from ohttp.chunked import ChunkedRequestDecoder, ChunkedRequestEncoder, ChunkLimits
from ohttp.errors import OHTTPError
from ohttp.httpdate import parse_http_date
from ohttp.keys import GatewayKey, KeyRing, decode_key_configs, encode_key_configs
from ohttp.privacypass.auth import parse_authorization, parse_www_authenticate
from ohttp.privacypass.tokens import Token, TokenChallenge, TokenRequest
from ohttp.tlog.checkpoint import Checkpoint
from ohttp.tlog.note import parse_note
from ohttp.tlog.statement import KeyStatement
from ohttp.tlog.tiles import parse_tile, parse_tile_path
from relay.h1 import ProtocolError, ResponseParser


@dataclass(frozen=True)
class Harness:
    name: str
    target: Callable[[bytes], object]
    errors: tuple[type[BaseException], ...]
    seeds: tuple[bytes, ...]


_KEY = GatewayKey.generate(1)
_RING = KeyRing([_KEY])
_REQUEST = bhttp.Request(b"POST", b"https", b"a.example", b"/p", ((b"x", b"1"),), b"body")
_RESPONSE = bhttp.Response(200, ((b"content-type", b"text/plain"),), b"hello")


def _chunked_seed() -> bytes:
    encoder = ChunkedRequestEncoder(_KEY.config)
    return encoder.header() + encoder.chunk(b"abc") + encoder.final(b"end")


def _chunked(data: bytes) -> object:
    decoder = ChunkedRequestDecoder(_RING, limits=ChunkLimits(1 << 14, 1 << 14))
    decoder.feed(data)
    return decoder.close()


def _h1(data: bytes) -> object:
    parser = ResponseParser()
    parser.start()
    parser.feed(data)
    return parser.feed_eof()


def _text(parse: Callable[[str], object]) -> Callable[[bytes], object]:
    return lambda data: parse(data.decode("utf-8", "replace"))


def _tile(data: bytes) -> object:
    return parse_tile(data, 1 + data[0] % 256 if data else 1)


HARNESSES = (
    Harness("bhttp-request", bhttp.decode_request, (OHTTPError,),
            (bhttp.encode_request(_REQUEST),)),
    Harness("bhttp-response", bhttp.decode_response, (OHTTPError,),
            (bhttp.encode_response(_RESPONSE),)),
    Harness("key-configs", decode_key_configs, (OHTTPError,),
            (encode_key_configs([_KEY.config]),)),
    Harness("chunked-ohttp", _chunked, (OHTTPError,), (_chunked_seed(),)),
    Harness("relay-h1-response", _h1, (ProtocolError,), (
        b"HTTP/1.1 200 OK\r\nContent-Type: message/ohttp-res\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n0\r\n\r\n",
    )),
    Harness("http-date", parse_http_date, (), (
        b"Sun, 06 Nov 1994 08:49:37 GMT", b"Sunday, 06-Nov-94 08:49:37 GMT",
        b"Sun Nov  6 08:49:37 1994",
    )),
    Harness("pp-www-authenticate", _text(parse_www_authenticate), (OHTTPError,),
            (b'PrivateToken challenge="AAIAAA==", token-key="AAAA"',)),
    Harness("pp-authorization", _text(parse_authorization), (OHTTPError,),
            (b'PrivateToken token="AAIAAA=="',)),
    Harness("pp-token-challenge", TokenChallenge.decode, (OHTTPError,), (b"\x00\x02\x00\x00",)),
    Harness("pp-token-request", TokenRequest.decode, (OHTTPError,), (b"\x00\x02\x00" * 4,)),
    Harness("pp-token", Token.decode, (OHTTPError,), (b"\x00\x02" + b"\x00" * 98,)),
    Harness("tlog-note", parse_note, (OHTTPError,),
            (b"example.com/log\n1\nAAAA\n\n\xe2\x80\x94 name AAAAAAAA\n",)),
    Harness("tlog-checkpoint", _text(Checkpoint.parse), (OHTTPError,),
            (b"example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",)),
    Harness("tlog-key-statement", KeyStatement.parse, (OHTTPError,), (b"ohttp-key\n",)),
    Harness("tlog-tile-path", _text(parse_tile_path), (OHTTPError,), (b"tile/0/000",)),
    Harness("tlog-tile", _tile, (OHTTPError,), (b"\x01" + b"\x00" * 63,)),
)
