"""A client body cut off before its framing's end is never forwarded as a whole one."""

from __future__ import annotations

import asyncio

from .conftest import RecordingGateway


async def test_half_closed_chunked_body_never_reaches_the_gateway_whole(
    gateway: RecordingGateway, relay_url: str
) -> None:
    host, port = relay_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST / HTTP/1.1\r\nHost: r\r\nContent-Type: message/ohttp-chunked-req\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    await writer.drain()
    await asyncio.sleep(0.2)  # the relay has started forwarding the body upstream
    writer.write_eof()  # the client's body ends without its last chunk
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400")
    await asyncio.sleep(0.2)
    # The upstream request was aborted: the gateway never read a complete body.
    assert gateway.posts == []
