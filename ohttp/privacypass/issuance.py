"""The issuance protocol of token type 0x0002 (RFC 9578 §6) and token verification.

Client (RFC 9578 §6.1, §6.3)::

    request, state = begin_issuance(challenge, issuer_public_key)   # send request to issuer
    token = finalize(state, response)                               # Token, already verified

Issuer (RFC 9578 §6.2)::

    response = issue(issuer_key_pair, request)

Origin (RFC 9578 §6.4)::

    token = verify_token(token_bytes, {token_key_id: public_key}, challenge.digest())

The issuer learns the key the client used and nothing of the nonce or challenge (the token
input is blinded); the origin learns a valid token for its challenge and not which issuance
produced it. Randomness comes from ``rng`` (``secrets.token_bytes`` by default) so tests can
replay vectors.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from ohttp.privacypass import blindrsa
from ohttp.privacypass.blindrsa import BlindRSAPublicKey, Random
from ohttp.privacypass.errors import (
    ChallengeMismatchError,
    InvalidSignatureError,
    InvalidTokenSignatureError,
    TokenFormatError,
    TokenRequestError,
    UnknownTokenKeyError,
    WrongTokenTypeError,
)
from ohttp.privacypass.keys import IssuerKeyPair, token_key_id
from ohttp.privacypass.tokens import NK, TOKEN_TYPE_BLIND_RSA, Token, TokenChallenge, TokenRequest

__all__ = ["IssuanceState", "begin_issuance", "finalize", "issue", "verify_token"]

_NONCE_LEN = 32


@dataclass(frozen=True, eq=False, repr=False)
class IssuanceState:
    """What the client keeps between its TokenRequest and the issuer's TokenResponse.

    Holds the blinding inverse: secret, single-issuance, never logged (no repr).
    """

    public_key: BlindRSAPublicKey
    unsigned_token: Token
    inv: bytes


def begin_issuance(
    challenge: TokenChallenge,
    public_key: BlindRSAPublicKey,
    rng: Random = secrets.token_bytes,
) -> tuple[bytes, IssuanceState]:
    """RFC 9578 §6.1: the TokenRequest bytes for ``challenge``, and the state to finalize it."""
    if challenge.token_type != TOKEN_TYPE_BLIND_RSA:
        raise TokenFormatError("unsupported token type")
    key_id = token_key_id(public_key)
    unsigned = Token(TOKEN_TYPE_BLIND_RSA, rng(_NONCE_LEN), challenge.digest(), key_id, b"")
    # The Deterministic variant: prepare is the identity (RFC 9578 §6.1).
    blinded_msg, inv = blindrsa.blind(public_key, unsigned.token_input(), rng)
    request = TokenRequest(TOKEN_TYPE_BLIND_RSA, key_id[-1], blinded_msg)
    return request.encode(), IssuanceState(public_key, unsigned, inv)


def finalize(state: IssuanceState, token_response: bytes) -> Token:
    """RFC 9578 §6.3: unblind the TokenResponse into a verified :class:`Token`."""
    if len(token_response) != NK:
        raise TokenFormatError("malformed token response")
    unsigned = state.unsigned_token
    authenticator = blindrsa.finalize(
        state.public_key, unsigned.token_input(), token_response, state.inv
    )
    return Token(
        unsigned.token_type,
        unsigned.nonce,
        unsigned.challenge_digest,
        unsigned.token_key_id,
        authenticator,
    )


def issue(key: IssuerKeyPair, token_request: bytes, rng: Random = secrets.token_bytes) -> bytes:
    """RFC 9578 §6.2: the TokenResponse (``blind_sig``) for a client's TokenRequest bytes.

    Raises :class:`TokenRequestError` for a wrong length, type or truncated key id (§6.2: the
    issuer's server answers each with 422 Unprocessable Content), and :class:`SigningError`
    if the signature fails its own check (a 500: nothing about it goes to the client).
    """
    if len(token_request) != 3 + NK:
        raise TokenRequestError("token request has the wrong length")
    request = TokenRequest.decode(token_request)
    if request.token_type != TOKEN_TYPE_BLIND_RSA:
        raise TokenRequestError("unsupported token type")
    if request.truncated_token_key_id != key.token_key_id[-1]:
        raise TokenRequestError("unknown token key")
    return key.private_key.blind_sign(request.blinded_msg, rng)


def verify_token(
    token: bytes | Token,
    public_keys: Mapping[bytes, BlindRSAPublicKey],
    expected_challenge_digest: bytes,
) -> Token:
    """RFC 9578 §6.4: check a token for the origin; the decoded :class:`Token` if valid.

    ``public_keys`` maps ``token_key_id`` to the issuer keys the origin trusts. Errors, each a
    :class:`TokenVerificationError`: :class:`WrongTokenTypeError`,
    :class:`UnknownTokenKeyError`, :class:`ChallengeMismatchError`,
    :class:`InvalidTokenSignatureError`; malformed bytes raise :class:`TokenFormatError`.
    Double-spending is the caller's to track (RFC 9577 §2.2: nonce and key id).
    """
    if isinstance(token, bytes):
        if token[:2] != TOKEN_TYPE_BLIND_RSA.to_bytes(2, "big") and len(token) >= 2:
            raise WrongTokenTypeError("unsupported token type")
        token = Token.decode(token)
    elif token.token_type != TOKEN_TYPE_BLIND_RSA:
        raise WrongTokenTypeError("unsupported token type")
    public_key = public_keys.get(token.token_key_id)
    if public_key is None:
        raise UnknownTokenKeyError("unknown token key")
    if not hmac.compare_digest(token.challenge_digest, expected_challenge_digest):
        raise ChallengeMismatchError("token is for another challenge")
    try:
        blindrsa.verify(public_key, token.token_input(), token.authenticator)
    except InvalidSignatureError:
        raise InvalidTokenSignatureError("invalid token signature") from None
    return token
