"""Key transparency end to end, every party a real `ohttp` subprocess (issue "Verifiable keys"):

1. keygen (gateway keys, a witness key); 2. log init and append; 3. serve, and the witness
cosigns through the log server; 4. a client with --log succeeds; 5. rotate, append, cosign,
SIGHUP: the client follows the new checkpoint; 6. a gateway serving an unlogged key: with
--log it refuses to start; without, the client refuses and the gateway received no request;
7. a tampered tile, then a checkpoint signed by another key: the client refuses each, and
`ohttp log verify` fails.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ohttp.tlog import Checkpoint, Ed25519Signer, parse_note, sign_note
from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args
from tests.support import LOOPBACK, REPO, RunningProcess, free_port, ohttp_process

ORIGIN = "log.example/ohttp-keys"
TARGET = "https://echo.internal/hello"


def ohttp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ohttp", *args],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False, env=env,
    )  # fmt: skip


@contextlib.contextmanager
def gateway_and_relay(
    tmp: Path, name: str, keys: Path, *extra: str
) -> Iterator[tuple[str, RunningProcess, int]]:
    """A gateway (echo backend, metrics on) and a relay in front; yields the relay URL."""
    gateway_port, relay_port, metrics_port = free_port(), free_port(), free_port()
    args = gateway_args(keys, gateway_port, "--backend", "echo", *extra)
    args += ["--metrics-listen", f"{LOOPBACK}:{metrics_port}"]
    with (
        ohttp_process(args, base_url(gateway_port) + "/healthz", tmp / f"{name}-gw.log") as gw,
        ohttp_process(
            relay_args(relay_port, base_url(gateway_port) + WELL_KNOWN),
            base_url(relay_port) + "/healthz",
            tmp / f"{name}-relay.log",
        ),
    ):
        yield base_url(relay_port) + "/", gw, metrics_port


def request(relay: str, log_url: str, vkey: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return ohttp("request", "--relay", relay, "--log", log_url, "--log-key", vkey, *extra, TARGET)


def posts_received(metrics_port: int) -> float:
    url = f"http://{LOOPBACK}:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    lines = [line for line in text.splitlines() if line.startswith("ohttp_gateway_requests_total")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def test_transparency_end_to_end(tmp_path: Path) -> None:
    keys, log_dir, state = tmp_path / "keys.json", tmp_path / "log", tmp_path / "state"
    # 1. keygen
    assert ohttp("keygen", "--out", str(keys)).returncode == 0
    made = ohttp("log", "keygen", "--name", "witness.example", "--out", str(tmp_path / "w.key"))
    witness_vkey = made.stdout.strip()
    # 2. log init and append
    init = ohttp("log", "init", "--dir", str(log_dir), "--origin", ORIGIN,
                 "--key", str(tmp_path / "log.key"))  # fmt: skip
    assert init.returncode == 0, init.stderr
    vkey = init.stdout.strip()
    append = ["log", "append", "--dir", str(log_dir), "--keys", str(keys),
              "--key", str(tmp_path / "log.key")]  # fmt: skip
    assert ohttp(*append).returncode == 0
    # 3. serve, and the witness cosigns through the server
    log_port = free_port()
    log_url = base_url(log_port)
    serve = ["log", "serve", "--dir", str(log_dir), "--listen", f"{LOOPBACK}:{log_port}",
             "--witness-key", witness_vkey]  # fmt: skip
    witness = ["log", "witness", "--log", log_url, "--log-key", vkey,
               "--key", str(tmp_path / "w.key"), "--state", str(tmp_path / "w.state")]  # fmt: skip
    client = ["--witness-key", witness_vkey, "--log-state", str(state)]
    with ohttp_process(serve, log_url + "/checkpoint", tmp_path / "serve.log"):
        cosigned = ohttp(*witness)
        assert cosigned.returncode == 0, cosigned.stderr
        # 4. a gateway that checks the log, and a client with --log: success
        with gateway_and_relay(tmp_path, "good", keys, "--log", log_url, "--log-key", vkey) as (
            relay, gateway, _,
        ):  # fmt: skip
            first = request(relay, log_url, vkey, *client)
            assert first.returncode == 0, first.stderr
            (seen,) = state.iterdir()
            assert Checkpoint.parse(parse_note(seen.read_bytes()).text).size == 1
            # 5. rotate, append, cosign, reload: the client follows the new checkpoint
            assert ohttp("keygen", "--rotate", str(keys)).returncode == 0
            assert ohttp(*append).returncode == 0
            assert ohttp(*witness).returncode == 0
            gateway.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "keys_reloaded" in gateway.log())
            second = request(relay, log_url, vkey, *client)
            assert second.returncode == 0, second.stderr
            assert Checkpoint.parse(parse_note(seen.read_bytes()).text).size == 2
        # 6. a gateway serving an unlogged key
        unlogged = tmp_path / "unlogged.json"
        assert ohttp("keygen", "--out", str(unlogged)).returncode == 0
        refused = ohttp(*gateway_args(unlogged, free_port(), "--log", log_url, "--log-key", vkey))
        assert refused.returncode == 1 and "startup_failed" in refused.stderr + refused.stdout
        with gateway_and_relay(tmp_path, "rogue", unlogged) as (relay, _, metrics_port):
            answer = request(relay, log_url, vkey, *client)
            assert answer.returncode == 15, answer.stderr
            assert "not in the transparency log" in answer.stderr
            assert posts_received(metrics_port) == 0
            assert ohttp("log", "verify", "--log", log_url, "--log-key", vkey).returncode == 0
            # 7. a tampered tile, then a checkpoint signed by another key
            with gateway_and_relay(tmp_path, "good2", keys) as (good_relay, _, good_metrics):
                tile = log_dir / "tile/0/000.p/2"
                original = tile.read_bytes()
                tile.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
                answer = request(good_relay, log_url, vkey, *client)
                assert answer.returncode == 13, answer.stderr
                verify = ohttp("log", "verify", "--log", log_url, "--log-key", vkey)
                assert verify.returncode == 3 and "tiles do not match" in verify.stderr
                tile.write_bytes(original)
                other = Ed25519Signer.generate(ORIGIN)
                text = parse_note((log_dir / "checkpoint").read_bytes()).text
                (log_dir / "checkpoint").write_bytes(sign_note(text, [other]))
                answer = request(good_relay, log_url, vkey, *client)
                assert answer.returncode == 11, answer.stderr
                verify = ohttp("log", "verify", "--log", log_url, "--log-key", vkey)
                assert verify.returncode == 3 and "not validly signed" in verify.stderr
                assert posts_received(good_metrics) == 0
