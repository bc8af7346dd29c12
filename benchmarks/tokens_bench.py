"""Privacy Pass token type 0x0002 costs: ``python -m benchmarks.tokens_bench [--seconds S]``.

Reports, on one core (the work is single-threaded, so tokens/s scales with cores):

- issuer: :func:`ohttp.privacypass.issue` per TokenRequest (CRT on ``gmpy2.powmod_sec``,
  base blinding, the s^e == m check) as tokens/s per core and µs each;
- the same private operation with ``cryptography``'s RSA signing as a floor (an ordinary
  RSASSA-PSS signature, no blinding by the caller), for reference;
- origin: :func:`ohttp.privacypass.verify_token` in µs;
- client: :func:`begin_issuance` + :func:`finalize` in µs.

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


if __name__ == "__main__":
    main()
