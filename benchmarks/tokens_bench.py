"""Privacy Pass token type 0x0002 costs: ``python -m benchmarks.tokens_bench [--seconds S]``.

Reports, on one core (the work is single-threaded, so tokens/s scales with cores):

- issuer: :func:`ohttp.privacypass.issue` per TokenRequest (CRT on ``gmpy2.powmod_sec``,
  base blinding, the s^e == m check) as tokens/s per core and µs each;
- the same private operation with ``cryptography``'s RSA signing as a floor (an ordinary
  RSASSA-PSS signature, no blinding by the caller), for reference;
- origin: :func:`ohttp.privacypass.verify_token` in µs;
- client: :func:`begin_issuance` + :func:`finalize` in µs;
- ``ohttp issuer`` over HTTP: tokens/s per core of the issuer process (its CPU time from
  /proc, so the client's blinding is not counted), and tokens/s on the wall clock;
- the gateway's added CPU per request with ``--require-token``: ``answer_request`` on an echo
  backend, in process, without and with the token check, side by side (every token fresh and
  valid, the spent-token record in a MemoryStore).

Timing: process CPU time, best of several rounds (interference only ever adds time).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ohttp.privacypass import (
    TokenChallenge,
    begin_issuance,
    finalize,
    generate_issuer_key,
    issue,
    verify_token,
)


def _best_us(operation: Callable[[], object], seconds: float, rounds: int = 5) -> float:
    """The best per-call CPU time in µs over ``rounds`` rounds of about ``seconds`` each."""
    best = float("inf")
    for _ in range(rounds):
        count, start = 0, time.process_time()
        while (elapsed := time.process_time() - start) < seconds / rounds or count == 0:
            operation()
            count += 1
        best = min(best, elapsed / count * 1e6)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    args = parser.parse_args(argv)

    pair, pem = generate_issuer_key()
    challenge = TokenChallenge(2, b"issuer.example", b"\x00" * 32, b"origin.example")
    request, state = begin_issuance(challenge, pair.public_key)
    response = issue(pair, request)
    token = finalize(state, response)
    keys = {pair.token_key_id: pair.public_key}
    digest = challenge.digest()

    floor_key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(floor_key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)

    issue_us = _best_us(lambda: issue(pair, request), args.seconds)
    floor_us = _best_us(lambda: floor_key.sign(b"token input", pss, hashes.SHA384()), args.seconds)
    verify_us = _best_us(lambda: verify_token(token, keys, digest), args.seconds)

    # finalize needs the issuer's answer to that very request: time the two client halves
    # around one issue() and subtract the issuer's share.
    def client_round() -> None:
        req, st = begin_issuance(challenge, pair.public_key)
        finalize(st, issue(pair, req))

    client_us = _best_us(client_round, args.seconds) - issue_us
    print(f"issuer issue():          {1e6 / issue_us:8.0f} tokens/s/core ({issue_us:.0f} µs)")
    print(f"floor cryptography sign: {1e6 / floor_us:8.0f} sigs/s/core ({floor_us:.0f} µs)")
    print(f"origin verify_token():   {verify_us:8.1f} µs")
    print(f"client begin+finalize:   {client_us:8.1f} µs")
    count = max(20, int(args.seconds * 100))
    per_core, per_wall = _issuer_http(count)
    print(f"ohttp issuer over HTTP:  {per_core:8.0f} tokens/s/core ({per_wall:.0f} tokens/s wall)")
    without, with_check = _gateway_check_us(max(50, int(args.seconds * 200)))
    print(
        f"gateway per request:     {without:8.1f} µs without tokens, {with_check:.1f} µs with "
        f"(+{with_check - without:.1f} µs)"
    )


def _issuer_http(count: int) -> tuple[float, float]:
    """``count`` token requests, one at a time, to an ``ohttp issuer`` subprocess: its
    tokens/s per CPU second, and on the wall clock."""
    import asyncio
    import tempfile
    from pathlib import Path

    import aiohttp

    from benchmarks import procs
    from issuer.keys import write_issuer_key
    from ohttp.aio.wallet import directory_url, fetch_directory, issue_tokens

    with tempfile.TemporaryDirectory(prefix="tokens-bench-") as work:
        workdir = Path(work)
        write_issuer_key(workdir / "issuer.pem")
        (workdir / "accounts").write_text("bench-account\n")
        port = procs.free_port()
        server = procs.start_python("issuer", [
            "ohttp", "issuer", "--key", str(workdir / "issuer.pem"), "--listen",
            f"127.0.0.1:{port}", "--accounts", str(workdir / "accounts"),
            "--tokens-per-window", str(count + 10),
        ], port, workdir)  # fmt: skip
        challenge = TokenChallenge(2, b"issuer.example", b"", b"origin.example")

        async def run() -> tuple[float, float]:
            async with aiohttp.ClientSession() as session:
                directory = await fetch_directory(session, directory_url(server.url))
                await issue_tokens(session, directory, challenge, "bench-account", 1)  # warm
                before, started = procs.cpu_seconds(server.pids()), time.perf_counter()
                for _ in range(count):
                    await issue_tokens(session, directory, challenge, "bench-account", 1)
                wall = time.perf_counter() - started
                cpu = (procs.cpu_seconds(server.pids()) - before).total
                return cpu, wall

        try:
            cpu, wall = asyncio.run(run())
        finally:
            procs.stop(server)
    return count / max(cpu, 1e-9), count / wall


def _gateway_check_us(count: int) -> tuple[float, float]:
    """CPU µs per request through ``answer_request``: without and with the token check, best
    of three alternating rounds each (interference only ever adds time)."""
    import asyncio
    import json
    import tempfile
    from pathlib import Path

    from gateway.backends import EchoBackend
    from gateway.config import GatewayConfig
    from gateway.pipeline import Answer, GatewayState, answer_request
    from ohttp import bhttp
    from ohttp.aio.wallet import gateway_challenge
    from ohttp.encapsulation import encapsulate_request
    from ohttp.keys import GatewayKey, KeyRing
    from ohttp.privacypass import authorization, encode_token_key

    key = GatewayKey.generate(1)
    pair, _ = generate_issuer_key()
    challenge = gateway_challenge(b"issuer.example", "echo.internal")

    def bodies(with_token: bool) -> list[bytes]:
        out = []
        for _ in range(count):
            headers: tuple[tuple[bytes, bytes], ...] = ()
            if with_token:
                request, state = begin_issuance(challenge, pair.public_key)
                token = finalize(state, issue(pair, request))
                headers = ((b"authorization", authorization(token).encode()),)
            inner = bhttp.Request(b"GET", b"https", b"echo.internal", b"/", headers, b"")
            out.append(encapsulate_request(key.config, bhttp.encode_request(inner))[0])
        return out

    async def timed(state: GatewayState, requests: list[bytes]) -> float:
        start = time.process_time()
        for body in requests:

            async def read(_length: int | None, _limit: int, body: bytes = body) -> bytes:
                return body

            answer = await answer_request(state, "POST", "message/ohttp-req", len(body), read)
            assert isinstance(answer, Answer) and answer.status == 200
        return (time.process_time() - start) / len(requests) * 1e6

    with tempfile.TemporaryDirectory(prefix="tokens-bench-") as work:
        directory = Path(work) / "directory.json"
        directory.write_text(json.dumps({"issuer-request-uri": "/token-request", "token-keys": [
            {"token-type": 2, "token-key": encode_token_key(pair.public_key)}]}))  # fmt: skip
        plain = GatewayConfig(backend="echo")
        checked = GatewayConfig(
            backend="echo", require_token=str(directory), token_issuer="issuer.example"
        )
        best = [float("inf"), float("inf")]
        for _ in range(3):
            for index, config in enumerate((plain, checked)):
                state = GatewayState.from_config(config, KeyRing([key]), EchoBackend())
                requests = bodies(with_token=index == 1)  # fresh tokens every round
                best[index] = min(best[index], asyncio.run(timed(state, requests)))
    return best[0], best[1]


if __name__ == "__main__":
    main()
