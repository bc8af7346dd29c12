"""Shared state across real processes (issue 14): replay records seen by every worker and
replica, fail closed while Redis is down and recovered when it returns, the relay's rate limit
held across its workers. Real ``ohttp`` processes, a real redis-server, loopback only."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ohttp import bhttp
from ohttp.encapsulation import ClientResponseOpener, encapsulate_request
from ohttp.keys import KeyConfig
from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args, write_key_file
from tests.gateway.conftest import http, inner_request
from tests.redis_support import needs_redis, redis_server
from tests.support import LOOPBACK, RunningProcess, free_port, ohttp_process

REQ = {"Content-Type": "message/ohttp-req"}


def copies(config: KeyConfig, count: int) -> list[tuple[bytes, ClientResponseOpener]]:
    """``count`` byte-identical dated requests (one ephemeral key), each with its own opener."""
    data = bhttp.encode_request(inner_request(date=True))
    ephemeral = os.urandom(32)
    return [encapsulate_request(config, data, ephemeral_private_key=ephemeral)
            for _ in range(count)]  # fmt: skip


def inner(url: str, body: bytes, opener: ClientResponseOpener) -> bhttp.Response:
    """Send on a fresh connection; the decrypted inner response (the outer one must be 200)."""
    status, _, payload = http(url, body, REQ)
    assert status == 200, status  # every refusal here is encapsulated
    return bhttp.decode_response(opener.open(payload))


@contextlib.contextmanager
def gateway(
    directory: Path, name: str, key_file: Path, *extra: str
) -> Iterator[tuple[str, RunningProcess]]:
    port = free_port()
    args = gateway_args(key_file, port, "--backend", "echo", *extra)
    with ohttp_process(args, base_url(port) + "/healthz", directory / f"{name}.log") as running:
        yield base_url(port) + WELL_KNOWN, running


def metric(url: str, name: str) -> float:
    _, _, text = http(url)
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
        if line.startswith(name)
    )  # fmt: skip


def test_two_workers_without_redis_accept_one_of_twenty_copies(tmp_path: Path) -> None:
    key = write_key_file(tmp_path / "keys.json", key_id=1)
    metrics_url = f"http://{LOOPBACK}:{free_port()}/metrics"
    extra = ("--workers", "2", "--metrics-listen", metrics_url.split("/")[2])
    log = tmp_path / "gateway.log"
    with gateway(tmp_path, "gateway", tmp_path / "keys.json", *extra) as (url, running):
        deadline = time.monotonic() + 15
        while log.read_text().count('"event": "listening"') < 2:  # the second worker is up too
            assert time.monotonic() < deadline
            time.sleep(0.05)
        statuses = [inner(url, body, opener).status for body, opener in copies(key.config, 20)]
        assert statuses.count(200) == 1 and statuses.count(400) == 19, statuses
        # One /metrics merges the workers (flushed once a second): every copy was counted.
        while metric(metrics_url, "ohttp_gateway_requests_total") != 20:
            assert time.monotonic() < deadline + 15
            time.sleep(0.1)
        assert running.process.poll() is None


@needs_redis
def test_a_copy_sent_to_another_replica_is_a_replay(tmp_path: Path) -> None:
    key = write_key_file(tmp_path / "keys.json", key_id=1)
    with (
        redis_server(tmp_path) as redis,
        gateway(tmp_path, "first", tmp_path / "keys.json", "--state", redis.url) as (first, _),
        gateway(tmp_path, "second", tmp_path / "keys.json", "--state", redis.url) as (second, _),
    ):
        (body, opener), (copy, copy_opener) = copies(key.config, 2)
        assert inner(first, body, opener).status == 200
        refused = inner(second, copy, copy_opener)
        assert refused.status == 400  # the #date problem, as for a replay on one replica
        assert b"#date" in refused.content


class Load:
    """Threads sending fresh dated requests on fresh connections until stopped."""

    def __init__(self, url: str, config: KeyConfig, threads: int = 3) -> None:
        self.url, self.config = url, config
        # (sent, answered, outer status, inner status, inner headers)
        self.answers: list[tuple[float, float, int, int, dict[bytes, bytes]]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            [(body, opener)] = copies(self.config, 1)
            sent = time.monotonic()
            status, _, payload = http(self.url, body, REQ)
            inner_status, headers = 0, {}
            if status == 200:
                response = bhttp.decode_response(opener.open(payload))
                inner_status, headers = response.status, dict(response.headers)
            self.answers.append((sent, time.monotonic(), status, inner_status, headers))

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.answers) + count
        while len(self.answers) < target:
            assert time.monotonic() < deadline, "the load stalled"
            time.sleep(0.02)


@needs_redis
def test_redis_down_under_load_is_an_encapsulated_503_and_service_recovers(
    tmp_path: Path,
) -> None:
    key = write_key_file(tmp_path / "keys.json", key_id=1)
    metrics_port = free_port()
    with redis_server(tmp_path) as redis:
        extra = ("--state", redis.url, "--metrics-listen", f"{LOOPBACK}:{metrics_port}")
        with (
            gateway(tmp_path, "gateway", tmp_path / "keys.json", *extra) as (url, running),
            Load(url, key.config) as load,
        ):
            load.wait_for(20)
            redis.stop()
            stopped = time.monotonic()
            load.wait_for(30)
            restarting = time.monotonic()  # Redis may answer before start() returns
            redis.start()
            restarted = time.monotonic()
            deadline = restarted + 10
            while not any(t > restarted and s == 200 for _, t, _, s, _ in load.answers):
                assert time.monotonic() < deadline, "no recovery within 10 s of Redis returning"
                time.sleep(0.02)
            recovered = next(t for _, t, _, s, _ in load.answers if t > restarted and s == 200)
            load.wait_for(10)
            alive = running.process.poll() is None
            errors = metric(f"http://{LOOPBACK}:{metrics_port}/metrics",
                            "ohttp_gateway_store_errors_total")
        log = running.log()
    answers = load.answers
    assert alive
    assert {outer for _, _, outer, _, _ in answers} == {200}  # never a plain 5xx
    assert {status for _, _, _, status, _ in answers} == {200, 503}  # correct answer or 503
    outage = [(s, h) for sent, t, _, s, h in answers if stopped < sent and t < restarting]
    assert len(outage) >= 20 and all(s == 503 for s, _ in outage)  # never accepted unchecked
    assert all(h.get(b"retry-after") == b"1" for s, h in outage)
    assert recovered - restarted < 5, recovered - restarted
    assert errors > 0
    assert log.count("store_unavailable") == 1 and "store_available" in log


def _relay(directory: Path, name: str, gateway_url: str, *extra: str
           ) -> contextlib.AbstractContextManager[RunningProcess]:
    port = free_port()
    args = [*relay_args(port, gateway_url), "--rate-limit", "5", *extra]
    directory.joinpath(f"{name}.port").write_text(str(port))
    return ohttp_process(args, base_url(port) + "/healthz", directory / f"{name}.log")


def _relay_url(directory: Path, name: str) -> str:
    return base_url(int(directory.joinpath(f"{name}.port").read_text())) + "/"


def test_the_relay_rate_limit_holds_across_two_workers(tmp_path: Path) -> None:
    key = write_key_file(tmp_path / "keys.json", key_id=1)
    with (
        gateway(tmp_path, "gateway", tmp_path / "keys.json") as (gateway_url, _),
        _relay(tmp_path, "relay", gateway_url, "--workers", "2"),
    ):
        url = _relay_url(tmp_path, "relay")
        statuses = [http(url, body, REQ)[0] for body, _ in copies(key.config, 1) * 12]
    # 12 fresh connections spread over both workers; one count for the client address.
    assert statuses.count(429) == 7, statuses


@needs_redis
def test_the_relay_rate_limit_holds_across_two_relays_on_redis(tmp_path: Path) -> None:
    key = write_key_file(tmp_path / "keys.json", key_id=1)
    with (
        redis_server(tmp_path) as redis,
        gateway(tmp_path, "gateway", tmp_path / "keys.json") as (gateway_url, _),
        _relay(tmp_path, "a", gateway_url, "--state", redis.url),
        _relay(tmp_path, "b", gateway_url, "--state", redis.url),
    ):
        urls = [_relay_url(tmp_path, name) for name in "ab"]
        body = copies(key.config, 1)[0][0]
        statuses = [http(urls[i % 2], body, REQ)[0] for i in range(8)]
    assert statuses.count(429) == 3, statuses
