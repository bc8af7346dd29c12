"""``ohttp keygen`` and ``ohttp keys show``.

Exit codes: 0 success; 1 a problem with the input or a file (one line on stderr, no
traceback); 2 usage (argparse).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar

from ohttp.aio.keyfile import add_key, add_next_key, load_key_file, parse_key_file, save_key_file
from ohttp.errors import KeyConfigError
from ohttp.keys import (
    AEAD,
    DEFAULT_SUITES,
    KDF,
    KEM,
    GatewayKey,
    KeyConfig,
    KeyRing,
    SymmetricSuite,
    decode_key_configs,
    encode_key_configs,
)

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
_FETCH_TIMEOUT: Final = 10.0
_MAX_FETCH_BYTES: Final = 1 << 20

_Enum = TypeVar("_Enum", KEM, KDF, AEAD)


class _CommandError(Exception):
    """A problem reported as one line on stderr with exit code 1."""


def _normalized(text: str) -> str:
    return text.upper().replace("-", "").replace("_", "")


def _enum_parser(enum: type[_Enum], aliases: dict[str, _Enum]) -> Callable[[str], _Enum]:
    names = {_normalized(member.name): member for member in enum} | aliases

    def parse(text: str) -> _Enum:
        member = names.get(_normalized(text))
        if member is None:
            choices = ", ".join(member.name.lower().replace("_", "-") for member in enum)
            raise argparse.ArgumentTypeError(f"unknown {enum.__name__} {text!r} ({choices})")
        return member

    return parse


_parse_kem = _enum_parser(KEM, {"MLKEM768X25519": KEM.X_WING})
_parse_kdf = _enum_parser(
    KDF, {"SHA256": KDF.HKDF_SHA256, "SHA384": KDF.HKDF_SHA384, "SHA512": KDF.HKDF_SHA512}
)
_parse_aead = _enum_parser(AEAD, {"CHACHA20": AEAD.CHACHA20_POLY1305})


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a hex string") from None


def configure(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keygen`` and ``keys show`` to the ``ohttp`` command."""
    keygen = subparsers.add_parser(
        "keygen",
        help="write a gateway key file and print its application/ohttp-keys in hex",
        description="Write a key file (mode 0600) holding private keys, their suites and "
        "validity times, and print the public application/ohttp-keys in hex.",
    )
    target = keygen.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, metavar="FILE", help="key file to create")
    target.add_argument(
        "--rotate", type=Path, metavar="FILE", help="add the next key id to an existing key file"
    )
    target.add_argument(
        "--add",
        type=Path,
        metavar="FILE",
        help="add a key of --kem beside the keys of an existing key file (retires none)",
    )
    keygen.add_argument(
        "--key-id", type=int, metavar="N", help="0..255 (default 1; with --add the next free id)"
    )
    keygen.add_argument(
        "--kem",
        type=_parse_kem,
        help="x25519 (default), x448, p256, p384, p521; post-quantum: x-wing "
        "(= mlkem768-x25519), mlkem768-p256, mlkem1024-p384, mlkem768, mlkem1024",
    )
    keygen.add_argument(
        "--kdf", type=_parse_kdf, action="append", help="hkdf-sha256 (default), -sha384, -sha512"
    )
    keygen.add_argument(
        "--aead",
        type=_parse_aead,
        action="append",
        help="aes-128-gcm, aes-256-gcm, chacha20-poly1305 (default: aes-128-gcm and chacha20)",
    )
    material = keygen.add_mutually_exclusive_group()
    material.add_argument("--private-key-hex", type=_hex, metavar="HEX", help="import a raw key")
    material.add_argument("--seed-hex", type=_hex, metavar="HEX", help="derive from a seed")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing key file")
    keygen.add_argument(
        "--valid-for", type=int, metavar="SECONDS", help="with --rotate: lifetime of the new key"
    )
    keygen.add_argument(
        "--overlap",
        type=int,
        metavar="SECONDS",
        help="with --rotate: how long older keys still decrypt (default two days)",
    )
    keygen.add_argument(
        "--issuer",
        action="store_true",
        help="a Privacy Pass issuer key (2048-bit RSA, PKCS#8 PEM) for `ohttp issuer`; with "
        "--rotate: publish a next key and make the previous next key current",
    )
    keygen.set_defaults(handler=_keygen)

    keys = subparsers.add_parser("keys", help="inspect key configurations")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    show = keys_commands.add_parser(
        "show",
        help="decode a key file or an application/ohttp-keys body (file or URL)",
        description="Decode a key file, an application/ohttp-keys body (binary or hex), or "
        "the body fetched from an http(s) URL. Private keys are never printed.",
    )
    show.add_argument("source", metavar="FILE|URL")
    show.set_defaults(handler=_show)


def _run(name: str, action: Callable[[], int]) -> int:
    try:
        return action()
    except (_CommandError, KeyConfigError) as error:
        print(f"ohttp {name}: error: {error}", file=sys.stderr)
    except FileExistsError as error:
        print(f"ohttp {name}: error: {error.filename} exists (use --force)", file=sys.stderr)
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        print(f"ohttp {name}: error: {error.strerror or error}{where}", file=sys.stderr)
    return EXIT_ERROR


# --- keygen -------------------------------------------------------------------------------------


def _suites(args: argparse.Namespace) -> tuple[SymmetricSuite, ...]:
    if args.kdf is None and args.aead is None:
        return DEFAULT_SUITES
    kdfs = args.kdf or [KDF.HKDF_SHA256]
    aeads = args.aead or [suite.aead for suite in DEFAULT_SUITES]
    unique = dict.fromkeys(SymmetricSuite(k, a) for k, a in itertools.product(kdfs, aeads))
    return tuple(unique)


def _keygen(args: argparse.Namespace) -> int:
    return _run("keygen", lambda: _keygen_action(args))


def _keygen_action(args: argparse.Namespace) -> int:
    if args.issuer:
        from ohttp.cli.tokens import issuer_keygen

        return issuer_keygen(args.out or args.rotate, rotate=args.rotate is not None,
                             force=args.force)
    if args.add is not None:
        return _add_action(args)
    if args.rotate is not None:
        if args.private_key_hex is not None or args.seed_hex is not None:
            raise _CommandError("--rotate always generates a fresh key")
        options = {} if args.overlap is None else {"overlap": args.overlap}
        suites = None if args.kdf is None and args.aead is None else _suites(args)
        add_next_key(args.rotate, valid_for=args.valid_for, kem=args.kem, suites=suites, **options)
        print(_public_hex(args.rotate))
        return EXIT_OK
    if args.valid_for is not None or args.overlap is not None:
        raise _CommandError("--valid-for and --overlap go with --rotate")
    key_id = 1 if args.key_id is None else args.key_id
    if not 0 <= key_id <= 255:
        raise _CommandError("--key-id must be within 0..255")
    kem = args.kem or KEM.X25519
    suites = _suites(args)
    if args.private_key_hex is not None:
        key = GatewayKey.from_private_bytes(key_id, kem, args.private_key_hex, suites)
    elif args.seed_hex is not None:
        key = GatewayKey.derive(key_id, kem, args.seed_hex, suites)
    else:
        key = GatewayKey.generate(key_id, kem, suites)
    save_key_file(args.out, [key], force=args.force)
    print(encode_key_configs([key.config]).hex())
    return EXIT_OK


def _add_action(args: argparse.Namespace) -> int:
    """``--add FILE --kem KEM [--key-id N]``: one more key, under its own key id."""
    if args.kem is None:
        raise _CommandError("--add needs --kem")
    if args.private_key_hex is not None or args.seed_hex is not None:
        raise _CommandError("--add always generates a fresh key")
    if args.valid_for is not None or args.overlap is not None:
        raise _CommandError("--valid-for and --overlap go with --rotate")
    if args.key_id is not None and not 0 <= args.key_id <= 255:
        raise _CommandError("--key-id must be within 0..255")
    add_key(args.add, args.kem, key_id=args.key_id, suites=_suites(args))
    print(_public_hex(args.add))
    return EXIT_OK


def _public_hex(path: Path) -> str:
    return load_key_file(path).encode_public().hex()


# --- keys show ----------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    return _run("keys show", lambda: _show_action(args.source))


def _show_action(source: str) -> int:
    if source.startswith(("http://", "https://")):
        print("\n".join(_describe_configs(decode_key_configs(_fetch(source)))))
        return EXIT_OK
    data = Path(source).read_bytes()
    if data.lstrip().startswith(b"{"):
        keys = parse_key_file(data.decode("utf-8", errors="replace"))
        print("\n".join(_describe_keys(keys)))
        return EXIT_OK
    print("\n".join(_describe_configs(decode_key_configs(_maybe_hex(data)))))
    return EXIT_OK


def _maybe_hex(data: bytes) -> bytes:
    """A file holding the hex that ``keygen`` prints is accepted as well as raw bytes."""
    text = data.strip()
    if text and len(text) % 2 == 0 and all(chr(c) in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text.decode("ascii"))
    return data


def _fetch(url: str) -> bytes:
    # Only http(s) URLs reach here (checked by the caller).
    request = urllib.request.Request(url, headers={"Accept": "application/ohttp-keys"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=_FETCH_TIMEOUT) as response:  # noqa: S310
            body: bytes = response.read(_MAX_FETCH_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise _CommandError(f"fetching the key configuration failed: HTTP {error.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise _CommandError(f"fetching the key configuration failed: {reason}") from None
    if len(body) > _MAX_FETCH_BYTES:
        raise _CommandError("key configuration body too large")
    return body


def _suite_names(config: KeyConfig) -> str:
    return ", ".join(f"{s.kdf.name}/{s.aead.name}" for s in config.suites)


def _describe_configs(configs: Sequence[KeyConfig]) -> list[str]:
    lines = [f"application/ohttp-keys: {len(configs)} key configuration(s)"]
    for config in configs:
        lines += [
            f"key id {config.key_id}: {config.kem.name} (0x{config.kem:04x})",
            f"  public key  {config.public_key.hex()}",
            f"  suites      {_suite_names(config)}",
        ]
    return lines


def _when(instant: int | None) -> str:
    if instant is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(instant))


def _describe_keys(keys: Sequence[GatewayKey]) -> list[str]:
    now = time.time()
    ring = KeyRing(keys)
    advertised = {key.key_id for key in ring.current(now)}
    lines = [f"key file: {len(keys)} key(s)"]
    for key in keys:
        state = (
            "advertised"
            if key.key_id in advertised
            else "accepted"
            if key.usable(now)
            else "expired"
        )
        lines += _describe_configs([key.config])[1:]
        lines.append(
            f"  validity    {_when(key.not_before)} .. {_when(key.not_after)} (now {state})"
        )
    lines.append(f"advertised application/ohttp-keys (hex): {ring.encode_public(now).hex()}")
    return lines
