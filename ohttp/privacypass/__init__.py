"""Privacy Pass publicly verifiable tokens (RFC 9576/9577/9578, token type 0x0002): sans-IO.

Bytes in, bytes out; no I/O, no clock; randomness is a parameter (``rng(n) -> bytes``).

- :mod:`~ohttp.privacypass.blindrsa`: RSABSSA-SHA384-PSS blind signatures (RFC 9474);
- :mod:`~ohttp.privacypass.keys`: issuer keys, the RSASSA-PSS SPKI, ``token_key_id``;
- :mod:`~ohttp.privacypass.tokens`: TokenChallenge, TokenRequest, Token encodings;
- :mod:`~ohttp.privacypass.issuance`: client (:func:`begin_issuance`, :func:`finalize`),
  issuer (:func:`issue`) and origin (:func:`verify_token`);
- :mod:`~ohttp.privacypass.auth`: the ``PrivateToken`` HTTP authentication scheme (RFC 9577);
- :mod:`~ohttp.privacypass.errors`: the exception tree, under ``OHTTPError``.

See docs/privacy-pass.md for the roles, the flows and what each party learns.
"""

from __future__ import annotations

from ohttp.privacypass.auth import (
    PrivateTokenChallenge,
    authorization,
    parse_authorization,
    parse_www_authenticate,
    www_authenticate,
)
from ohttp.privacypass.blindrsa import BlindRSAPrivateKey, BlindRSAPublicKey
from ohttp.privacypass.errors import (
    AuthHeaderError,
    BlindingError,
    ChallengeMismatchError,
    InvalidSignatureError,
    InvalidTokenSignatureError,
    KeyFormatError,
    PrivacyPassError,
    SigningError,
    TokenFormatError,
    TokenRequestError,
    TokenVerificationError,
    UnknownTokenKeyError,
    WrongTokenTypeError,
)
from ohttp.privacypass.issuance import (
    IssuanceState,
    begin_issuance,
    finalize,
    issue,
    verify_token,
)
from ohttp.privacypass.keys import (
    IssuerKeyPair,
    decode_public_key,
    decode_token_key,
    encode_public_key,
    encode_token_key,
    generate_issuer_key,
    load_private_key_pem,
    private_key_pem,
    token_key_id,
)
from ohttp.privacypass.tokens import NK, TOKEN_TYPE_BLIND_RSA, Token, TokenChallenge, TokenRequest

__all__ = [
    "NK",
    "TOKEN_TYPE_BLIND_RSA",
    "AuthHeaderError",
    "BlindRSAPrivateKey",
    "BlindRSAPublicKey",
    "BlindingError",
    "ChallengeMismatchError",
    "InvalidSignatureError",
    "InvalidTokenSignatureError",
    "IssuanceState",
    "IssuerKeyPair",
    "KeyFormatError",
    "PrivacyPassError",
    "PrivateTokenChallenge",
    "SigningError",
    "Token",
    "TokenChallenge",
    "TokenFormatError",
    "TokenRequest",
    "TokenRequestError",
    "TokenVerificationError",
    "UnknownTokenKeyError",
    "WrongTokenTypeError",
    "authorization",
    "begin_issuance",
    "decode_public_key",
    "decode_token_key",
    "encode_public_key",
    "encode_token_key",
    "finalize",
    "generate_issuer_key",
    "issue",
    "load_private_key_pem",
    "parse_authorization",
    "parse_www_authenticate",
    "private_key_pem",
    "token_key_id",
    "verify_token",
    "www_authenticate",
]
