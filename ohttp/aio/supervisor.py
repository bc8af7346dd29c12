"""``workers > 1``: processes forked onto one port (SO_REUSEPORT) and supervised by PID."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from types import FrameType

from ohttp.aio.logs import set_worker
from ohttp.aio.metrics import multiprocess_directory, worker_ended
from ohttp.aio.store import SharedStoreServer

__all__ = ["run_workers"]

log = logging.getLogger("ohttp.serving")


def run_workers(
    count: int, worker: Callable[[int], int], *, forward_sighup: bool,
    shared_store: int | None = None, metrics: bool = False,
) -> int:  # fmt: skip
    """Run ``worker(index)`` in this process, or in ``count`` forked children; the exit code.

    With ``shared_store`` (its maximum number of keys) and several workers, this process owns
    a store the workers share: ``ohttp.aio.store.open_store(None)`` in a worker returns it.

    SIGHUP is passed on (when ``forward_sighup``, for the worker's own handler) or else ignored,
    with one worker as with several; it is ignored until a worker installs its handler.
    Children are supervised by PID: SIGTERM/SIGINT stop them all, and one ending on its own
    stops the rest (exit 1). With ``metrics``, the workers share a multiprocess metrics
    directory (``ohttp.aio.metrics``) that exists while they run.
    """
    with multiprocess_directory(metrics):
        return _run(count, worker, forward_sighup, shared_store)


def _run(
    count: int, worker: Callable[[int], int], forward_sighup: bool, shared_store: int | None
) -> int:
    # A process manager's reload must never kill a server (SIGHUP's default is to exit): it is
    # ignored until a worker's event loop installs its own handler, if it has one.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if count == 1:
        set_worker(0)
        return worker(0)
    children: set[int] = set()
    store = None if shared_store is None else SharedStoreServer(shared_store)
    if store is not None:
        for _ in range(count):
            store.pair()
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # child: serve, then leave without running the parent's cleanup
            code = 1
            try:
                set_worker(index)
                if store is not None:
                    store.in_child(index)
                code = worker(index)
            finally:
                os._exit(code)
        children.add(pid)
    if store is not None:
        store.start()  # a thread, started after the last fork
    log.info("workers_started", extra={"workers": count})
    return _supervise(children, forward_sighup)


def _supervise(children: set[int], forward_sighup: bool) -> int:
    stopping = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        for pid in children:
            os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    signal.signal(signal.SIGHUP, forward if forward_sighup else signal.SIG_IGN)
    code = 0
    while children:
        pid, status = os.waitpid(-1, 0)
        if pid not in children:
            continue
        children.discard(pid)
        worker_ended(pid)
        if not stopping:  # a worker ended on its own: stop the rest and report failure
            code = 1
            stopping = True
            for other in children:
                os.kill(other, signal.SIGTERM)
        elif os.waitstatus_to_exitcode(status) != 0:
            code = 1
    return code
