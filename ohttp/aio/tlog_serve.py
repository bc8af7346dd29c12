"""``ohttp log serve``: the log directory over HTTP, as any static server would serve it.

- ``GET /checkpoint``: ``text/plain; charset=utf-8``, ``Cache-Control: no-cache`` (it changes).
- ``GET /tile/...``: ``application/octet-stream``; full tiles and bundles never change
  (c2sp.org/tlog-tiles), so they are ``public, max-age=31536000, immutable``; partial ones
  get a short max-age. Only canonical tile paths are served: nothing else in the directory
  (no traversal, no dot files) is reachable.
- ``POST /add-cosignature``: a witness's cosigned checkpoint note; its cosignatures are merged
  into the checkpoint if they verify against a configured witness key and the text is the
  current checkpoint's (``ohttp log witness``; see docs/transparency.md). 403 when no witness
  key is configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from aiohttp import web

from ohttp.aio.tlog import CHECKPOINT_PATH
from ohttp.aio.tlog_dir import LogDirError, add_cosignature
from ohttp.tlog import TransparencyError, Verifier, parse_tile_path

__all__ = ["COSIGNATURE_PATH", "create_log_app"]

COSIGNATURE_PATH: Final = "/add-cosignature"
_IMMUTABLE: Final = "public, max-age=31536000, immutable"
_PARTIAL: Final = "public, max-age=60"
_MAX_NOTE_BYTES: Final = 64 * 1024


def create_log_app(directory: Path, witnesses: Sequence[Verifier] = ()) -> web.Application:
    """The static log app for ``directory``; ``witnesses`` may add cosignatures."""
    root = directory.resolve()
    lock = asyncio.Lock()

    async def checkpoint(_: web.Request) -> web.Response:
        try:
            body = await asyncio.to_thread((root / CHECKPOINT_PATH).read_bytes)
        except OSError:
            raise web.HTTPNotFound() from None
        return web.Response(
            body=body, content_type="text/plain", charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )  # fmt: skip

    async def tile(request: web.Request) -> web.Response:
        path = "tile/" + request.match_info["rest"]
        try:
            parsed = parse_tile_path(path)  # canonical paths only: no "..", no other files
            body = await asyncio.to_thread((root / path).read_bytes)
        except (TransparencyError, OSError):
            raise web.HTTPNotFound() from None
        cache = _PARTIAL if parsed.partial else _IMMUTABLE
        return web.Response(
            body=body, content_type="application/octet-stream", headers={"Cache-Control": cache}
        )

    async def cosign(request: web.Request) -> web.Response:
        if not witnesses:
            raise web.HTTPForbidden(text="no witness keys configured")
        if request.content_length is None or request.content_length > _MAX_NOTE_BYTES:
            raise web.HTTPRequestEntityTooLarge(_MAX_NOTE_BYTES, request.content_length or 0)
        note = await request.read()
        async with lock:
            try:
                added = await asyncio.to_thread(add_cosignature, root, note, witnesses)
            except (LogDirError, TransparencyError) as exc:
                raise web.HTTPConflict(text=str(exc)) from None
        return web.Response(text=f"added {added} cosignature(s)\n")

    app = web.Application(client_max_size=_MAX_NOTE_BYTES)
    app.router.add_get("/" + CHECKPOINT_PATH, checkpoint)
    app.router.add_get("/tile/{rest:.+}", tile)
    app.router.add_post(COSIGNATURE_PATH, cosign)
    return app
