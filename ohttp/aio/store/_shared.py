"""The store shared by forked workers without Redis: the supervisor owns it.

Why this mechanism: the parent process already outlives and supervises every worker, so it
holds one :class:`MemoryStore` and answers the workers over one ``socketpair`` each, created
before the fork (nothing to name, bind or clean up; no other process can connect). A thread
in the parent runs the server on its own event loop, so the parent's ``waitpid`` and signal
handling stay as they are, and the workers' GIL is not involved. Every operation is one
small frame each way; a worker pipelines its requests on its socket (many in flight, answers
in order), so under load a read and a write carry many of them. Shared memory with a
cross-process lock would save the round trip but needs a hash table with expiry in raw
memory and a lock a crashed worker can leave held.

Frames: request ``op(1) ttl(float64) klen(uint16) vlen(uint16) key value``; answer
``status(1) number(int64) vlen(uint16) value``.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
import threading
from collections.abc import Callable

from ohttp.aio.store._base import REASONS, StoreUnavailable
from ohttp.aio.store._memory import MemoryStore

__all__ = ["SharedStoreClient", "SharedStoreServer", "take_inherited_socket"]

_REQUEST = struct.Struct(">BdHH")
_ANSWER = struct.Struct(">BqH")
_ADD, _INCR, _SETDEFAULT, _PING = range(4)
_OK = 255  # any other status is an index into REASONS
_MAX_KEY = 1024

# This worker's end, put here after the fork: what a forked child inherits from run_workers.
_inherited: list[socket.socket] = []


def take_inherited_socket() -> socket.socket | None:
    """This worker's end of its socket to the supervisor's store, once; None if there is none."""
    return _inherited.pop() if _inherited else None


# --------------------------------------------------------------------------- the parent


class _ServerProtocol(asyncio.Protocol):
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        out, offset = bytearray(), 0
        while len(buffer) - offset >= _REQUEST.size:
            op, ttl, klen, vlen = _REQUEST.unpack_from(buffer, offset)
            end = offset + _REQUEST.size + klen + vlen
            if end > len(buffer):
                break
            key = bytes(buffer[offset + _REQUEST.size : end - vlen])
            out += self._answer(op, ttl, key, bytes(buffer[end - vlen : end]))
            offset = end
        del buffer[:offset]
        if out and self._transport is not None:
            self._transport.write(out)  # one write for every frame that arrived together

    def _answer(self, op: int, ttl: float, key: bytes, value: bytes) -> bytes:
        store = self._store
        try:
            if op == _ADD:
                return _ANSWER.pack(_OK, store.add_now(key, ttl), 0)
            if op == _INCR:
                return _ANSWER.pack(_OK, store.incr_now(key, ttl), 0)
            if op == _SETDEFAULT:
                stored = store.setdefault_now(key, value, ttl)
                return _ANSWER.pack(_OK, 0, len(stored)) + stored
            return _ANSWER.pack(_OK, 0, 0)
        except StoreUnavailable as exc:
            return _ANSWER.pack(REASONS.index(exc.reason), 0, 0)


class SharedStoreServer:
    """The supervisor's side: one MemoryStore served to ``count`` workers.

    Call :meth:`pair` once per worker before forking, :meth:`in_child` in each child and
    :meth:`start` in the parent after the last fork (a thread must not exist at a fork).
    """

    def __init__(self, max_entries: int) -> None:
        self._store = MemoryStore(max_entries=max_entries)
        self._parent_ends: list[socket.socket] = []
        self._child_ends: list[socket.socket] = []

    def pair(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._parent_ends.append(parent)
        self._child_ends.append(child)

    def in_child(self, index: int) -> None:
        """In worker ``index`` after the fork: keep only its own end, for open_store."""
        for sock in self._parent_ends:
            sock.close()
        for i, sock in enumerate(self._child_ends):
            if i != index:
                sock.close()
        _inherited[:] = [self._child_ends[index]]

    def start(self) -> None:
        threading.Thread(target=self.serve_forever, name="ohttp-store", daemon=True).start()

    def serve_forever(self) -> None:
        """Serve in this thread until the process ends (``start`` runs it in a thread)."""
        for sock in self._child_ends:
            sock.close()
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._parent_ends:
            await loop.create_unix_connection(lambda: _ServerProtocol(self._store), sock=sock)
        await asyncio.Event().wait()  # serves until the process ends (daemon thread)


# --------------------------------------------------------------------------- a worker


class _ClientProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.waiting: collections.deque[asyncio.Future[tuple[int, bytes]]] = collections.deque()
        self._buffer = bytearray()
        self.lost = False

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        offset = 0
        while len(buffer) - offset >= _ANSWER.size:
            status, number, vlen = _ANSWER.unpack_from(buffer, offset)
            end = offset + _ANSWER.size + vlen
            if end > len(buffer):
                break
            value = bytes(buffer[end - vlen : end])
            offset = end
            future = self.waiting.popleft()
            if future.done():  # its caller timed out; the answer still comes, in order
                continue
            if status == _OK:
                future.set_result((number, value))
            else:
                future.set_exception(StoreUnavailable(REASONS[status]))
        del buffer[:offset]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(StoreUnavailable("connection"))


class SharedStoreClient:
    """A worker's :class:`~ohttp.aio.store.Store`: the supervisor's, over the inherited socket."""

    def __init__(self, sock: socket.socket, *, timeout: float = 0.5) -> None:
        self._sock: socket.socket | None = sock
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._protocol: _ClientProtocol | None = None
        self._connecting = asyncio.Lock()  # the first calls may come together

    async def add(self, key: bytes, ttl: float) -> bool:
        number, _ = await self._call(_ADD, key, ttl)
        return bool(number)

    async def incr(self, key: bytes, ttl: float) -> int:
        number, _ = await self._call(_INCR, key, ttl)
        return number

    async def setdefault(self, key: bytes, value: bytes, ttl: float) -> bytes:
        _, stored = await self._call(_SETDEFAULT, key, ttl, value)
        return stored

    async def ping(self) -> None:
        await self._call(_PING, b"", 0.0)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        elif self._sock is not None:
            self._sock.close()
        self._sock = None

    async def _call(self, op: int, key: bytes, ttl: float, value: bytes = b"") -> tuple[int, bytes]:
        if len(key) > _MAX_KEY or len(value) > _MAX_KEY:
            raise ValueError("store keys and values are short digests")
        transport, protocol = await self._connection()
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        protocol.waiting.append(future)
        transport.write(_REQUEST.pack(op, ttl, len(key), len(value)) + key + value)
        try:
            async with asyncio.timeout(self._timeout):
                return await future
        except TimeoutError:
            raise StoreUnavailable("timeout") from None

    async def _connection(self) -> tuple[asyncio.Transport, _ClientProtocol]:
        if self._transport is None or self._protocol is None:
            async with self._connecting:
                if self._transport is None or self._protocol is None:
                    await self._connect()
        assert self._transport is not None and self._protocol is not None
        if self._protocol.lost:
            raise StoreUnavailable("connection")
        return self._transport, self._protocol

    async def _connect(self) -> None:
        if self._sock is None:
            raise StoreUnavailable("closed")
        factory: Callable[[], _ClientProtocol] = _ClientProtocol
        self._transport, self._protocol = await asyncio.get_running_loop().create_unix_connection(
            factory, sock=self._sock
        )
