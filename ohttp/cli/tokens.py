"""``ohttp tokens fetch`` (fill a wallet file by issuance) and ``keygen --issuer``.

Exit codes of ``ohttp tokens fetch``: 0 every token requested was issued; 1 a local problem
(unreadable account file, bad wallet); 4 fewer tokens than asked (some or all refused: account,
quota, key), or the issuer could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # the client (and aiohttp) load only when tokens are fetched
    from ohttp.aio.wallet import TokenSource, Wallet

EXIT_OK: Final = 0
EXIT_LOCAL: Final = 1
EXIT_ISSUER: Final = 4


def configure(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tokens fetch``."""
    tokens = subparsers.add_parser("tokens", help="Privacy Pass tokens for a gateway")
    commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    fetch = commands.add_parser(
        "fetch",
        help="fill a wallet file with tokens from an issuer",
        description="Fetch Privacy Pass tokens (type 2) for the gateway whose --token-origin "
        "is NAME, authenticated to the issuer with the credential in the account-token file, "
        "and add them to the wallet file (created with mode 0600). "
        + (__doc__ or "").split("\n\n", 1)[1].strip(),
    )
    fetch.add_argument("--issuer", required=True, metavar="URL",
                       help="the issuer's URL or its directory URL")  # fmt: skip
    fetch.add_argument("--origin", required=True, metavar="NAME",
                       help="the gateway's token origin (its --token-origin)")  # fmt: skip
    fetch.add_argument("--account-token", required=True, type=Path, metavar="FILE",
                       help="file holding the account's bearer credential")  # fmt: skip
    fetch.add_argument("--count", type=int, default=16, metavar="N",
                       help="tokens to fetch (default 16)")  # fmt: skip
    fetch.add_argument("--wallet", required=True, type=Path, metavar="FILE",
                       help="wallet file to create or add to")  # fmt: skip
    fetch.set_defaults(handler=_fetch)


def _fetch(args: argparse.Namespace) -> int:
    from ohttp.aio.wallet import TokenFetchError, Wallet, WalletError, directory_url

    try:
        if not 1 <= args.count <= 1000:
            raise ValueError("--count must be within 1..1000")
        credential = args.account_token.read_text().strip()
        if not credential:
            raise ValueError("the account-token file is empty")
        issuer = directory_url(args.issuer)
        wallet = Wallet.load(args.wallet) if args.wallet.exists() else None
        if wallet is not None and (wallet.issuer, wallet.origin) != (issuer, args.origin):
            raise ValueError("the wallet holds tokens for another issuer or origin")
        wallet = wallet or Wallet(issuer, args.origin, path=args.wallet)
    except (OSError, ValueError, WalletError) as exc:
        print(f"ohttp tokens fetch: {_message(exc)}", file=sys.stderr)
        return EXIT_LOCAL
    try:
        issued = asyncio.run(_issue(wallet, credential, args.count))
    except TokenFetchError as exc:
        print(f"ohttp tokens fetch: {exc}", file=sys.stderr)
        return EXIT_ISSUER
    print(f"{issued} token(s) added; {len(wallet)} in {args.wallet}")
    if issued < args.count:
        print(f"ohttp tokens fetch: the issuer refused {args.count - issued}", file=sys.stderr)
        return EXIT_ISSUER
    return EXIT_OK


async def _issue(wallet: Wallet, credential: str, count: int) -> int:
    import aiohttp

    from ohttp.aio.wallet import fetch_directory, issue_tokens

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        directory = await fetch_directory(session, wallet.issuer)
        tokens = await issue_tokens(session, directory, wallet.challenge, credential, count)
    wallet.add(tokens)
    return len(tokens)


def _message(exc: Exception) -> str:
    if isinstance(exc, OSError):  # the file's path is ours; never its content
        return f"{exc.strerror or 'cannot read'}: {exc.filename}"
    return str(exc)


def issuer_keygen(path: Path | None, *, rotate: bool, force: bool) -> int:
    """``ohttp keygen --issuer --out FILE`` / ``--rotate FILE``: prints the token-key(s)."""
    from issuer.keys import rotate_issuer_key, write_issuer_key
    from ohttp.errors import OHTTPError
    from ohttp.privacypass import encode_token_key

    assert path is not None  # argparse requires --out or --rotate
    try:
        if rotate:
            keys = [pair.public_key for pair in rotate_issuer_key(path).pairs]
        else:
            keys = [write_issuer_key(path, force=force).public_key]
    except FileExistsError:
        print(f"ohttp keygen: error: {path} exists (use --force)", file=sys.stderr)
        return EXIT_LOCAL
    except (OSError, OHTTPError) as exc:
        print(f"ohttp keygen: error: {_message(exc)}", file=sys.stderr)
        return EXIT_LOCAL
    for key in keys:  # the directory's token-key values, current first
        print(encode_token_key(key))
    return EXIT_OK


# `ohttp demo`: an issuer with one demo account, and the client's tokens -------------------

_DEMO_ORIGIN: Final = "processing.internal"


@dataclass(frozen=True)
class DemoIssuer:
    """The demo issuer's files and its one account."""

    key: Path
    accounts: Path
    credential: str = field(repr=False)

    def args(self, listen: str) -> list[str]:
        return ["issuer", "--key", str(self.key), "--listen", listen,
                "--accounts", str(self.accounts)]  # fmt: skip

    def gateway_args(self, issuer_url: str) -> list[str]:
        from ohttp.aio.wallet import directory_url

        return ["--require-token", directory_url(issuer_url), "--token-origin", _DEMO_ORIGIN]


def write_demo_issuer(directory: Path) -> DemoIssuer:
    """A fresh issuer key and an accounts file with one random demo credential."""
    from issuer.keys import write_issuer_key

    files = DemoIssuer(directory / "issuer.pem", directory / "accounts", secrets.token_urlsafe())
    write_issuer_key(files.key)
    files.accounts.write_text(f"# the demo account\n{files.credential}\n")
    return files


def demo_token_source(issuer_url: str, files: DemoIssuer) -> TokenSource:
    from ohttp.aio.wallet import TokenSource, Wallet, directory_url

    wallet = Wallet(directory_url(issuer_url), _DEMO_ORIGIN)
    return TokenSource(wallet, credential=files.credential, batch=8, refill_below=2)

