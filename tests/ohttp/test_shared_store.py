"""The supervisor's store shared by forked workers (no Redis): real ``run_workers`` processes,
each worker talking to the parent over its inherited socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support import REPO, stop_process

WORKERS = 3
KEYS = 50

_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from ohttp.aio.store import StoreUnavailable, open_store
from ohttp.aio.store._shared import SharedStoreClient
from ohttp.aio.supervisor import run_workers

out = Path(sys.argv[1])

async def work(index):
    store = open_store(None)
    assert isinstance(store, SharedStoreClient), type(store)
    added = await asyncio.gather(*(store.add(b"k%d" % k, 60) for k in range(%(keys)d)))
    counts = [await store.incr(b"c", 60) for _ in range(10)]
    secret = await store.setdefault(b"s", b"from-%%d" %% index, 60)
    extra = []
    if index == 0:  # every other key exists now: 8 places are left of 60
        for j in range(10):
            try:
                extra.append(await store.add(b"x%%d" %% j, 60))
            except StoreUnavailable as exc:
                extra.append(exc.reason)
    await store.ping()
    result = {"added": added, "counts": counts, "secret": secret.decode(), "extra": extra}
    (out / f"{index}.json").write_text(json.dumps(result))
    await asyncio.Event().wait()  # until SIGTERM: a worker ending would stop the others

def worker(index):
    try:
        asyncio.run(work(index))
    except KeyboardInterrupt:
        pass
    return 0

sys.exit(run_workers(%(workers)d, worker, forward_sighup=False, shared_store=60))
""".replace("%(keys)d", str(KEYS)).replace("%(workers)d", str(WORKERS)).replace("%%", "%")


def test_workers_share_one_store_through_the_supervisor(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(tmp_path)], cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while len(list(tmp_path.glob("*.json"))) < WORKERS:
            assert process.poll() is None, "the supervisor ended early"
            assert time.monotonic() < deadline, "workers did not report"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGTERM)
        process.wait(10)
    finally:
        stop_process(process)
    results = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(WORKERS)]
    for key in range(KEYS):  # each key was new to exactly one worker
        assert sum(r["added"][key] for r in results) == 1
    counts = sorted(c for r in results for c in r["counts"])
    assert counts == list(range(1, 10 * WORKERS + 1))  # one counter, every increment atomic
    assert len({r["secret"] for r in results}) == 1  # one value won for everyone
    assert results[0]["extra"] == [True] * 8 + ["full"] * 2  # refused, never evicted
