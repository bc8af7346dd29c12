"""``ohttp log``: the key transparency log (init, append, keygen, serve, verify, witness).

Exit codes: 0 success; 1 a local problem (unreadable file, bad argument, log unreachable), one
line on stderr; 2 usage (argparse); 3 the log failed a check (``verify``) or the witness refuses
to cosign (a fork or a rollback). Keys go to files (mode 0600) and verifier keys to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    import aiohttp

    from ohttp.aio.tlog import VerifiedLog
    from ohttp.tlog import Ed25519Verifier, KeyStatement
    from ohttp.tlog.witness import CosignatureVerifier

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_REFUSED: Final = 3
_T = TypeVar("_T")


class _Refused(Exception):
    """The log failed a check, or the witness refuses: exit 3."""


class _Failed(Exception):
    """A local problem: exit 1."""


def configure(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``log`` and its subcommands to the ``ohttp`` command."""
    log = subparsers.add_parser(
        "log", help="the key transparency log", description=(__doc__ or "").split("\n\n")[0]
    )
    commands = log.add_subparsers(dest="log_command", required=True, metavar="COMMAND")
    init = commands.add_parser("init", help="create a log and its signing key")
    init.add_argument("--dir", required=True, type=Path, help="the log directory (published)")
    init.add_argument("--origin", required=True, help="the log's origin line, e.g. example.com/log")
    init.add_argument("--key", type=Path, help="signing key file (default: in ~/.config/ohttp)")
    init.set_defaults(handler=_handler(_init))
    append = commands.add_parser("append", help="log every key of a key file not logged yet")
    append.add_argument("--dir", required=True, type=Path)
    append.add_argument("--keys", required=True, type=Path, help="gateway key file")
    append.add_argument("--key", type=Path, help="signing key file (default: as for init)")
    append.add_argument("--release", metavar="sha256:HEX", help="the release holding the keys")
    append.set_defaults(handler=_handler(_append))
    keygen = commands.add_parser("keygen", help="make an Ed25519 note key (witness, log)")
    keygen.add_argument("--name", required=True)
    keygen.add_argument("--out", required=True, type=Path)
    keygen.set_defaults(handler=_handler(_keygen))
    serve = commands.add_parser("serve", help="serve the log directory over HTTP")
    serve.add_argument("--dir", required=True, type=Path)
    serve.add_argument("--listen", default="127.0.0.1:8090", metavar="HOST:PORT")
    serve.add_argument(
        "--witness-key", action="append", default=[], metavar="VKEY",
        help="accept cosignatures from this witness at POST /add-cosignature (repeatable)",
    )  # fmt: skip
    serve.set_defaults(handler=_handler(_serve))
    verify = commands.add_parser("verify", help="download and check the whole log")
    _log_arguments(verify)
    verify.add_argument("--state", type=Path, help="the last checkpoint seen (read, updated)")
    verify.set_defaults(handler=_handler(_verify))
    witness = commands.add_parser("witness", help="cosign the log's checkpoint if consistent")
    _log_arguments(witness)
    witness.add_argument("--key", required=True, type=Path, help="the witness's key file")
    witness.add_argument("--state", required=True, type=Path, help="the last cosigned checkpoint")
    witness.set_defaults(handler=_handler(_witness))


def _log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", required=True, metavar="URL|DIR", help="the log's base URL")
    parser.add_argument("--log-key", required=True, metavar="VKEY", help="the log's verifier key")


def _handler(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handle(args: argparse.Namespace) -> int:
        from ohttp.aio.tlog import LogError, LogUnavailable
        from ohttp.aio.tlog_dir import LogDirError
        from ohttp.errors import OHTTPError

        try:
            return run(args)
        except _Refused as exc:
            return _fail(f"refused: {exc}", EXIT_REFUSED)
        except LogError as exc:
            code = EXIT_ERROR if isinstance(exc, LogUnavailable) else EXIT_REFUSED
            return _fail(str(exc), code)
        except (_Failed, LogDirError, OHTTPError, ValueError) as exc:
            return _fail(str(exc), EXIT_ERROR)
        except OSError as exc:
            return _fail(f"{exc.filename or 'I/O'}: {exc.strerror}", EXIT_ERROR)

    return handle


def _init(args: argparse.Namespace) -> int:
    from ohttp.aio.tlog_dir import default_key_path, init_log

    key = args.key if args.key is not None else default_key_path(args.origin)
    signer = init_log(args.dir, args.origin, key)
    print(signer.verifier.vkey)
    return EXIT_OK


def _append(args: argparse.Namespace) -> int:
    from ohttp.aio.keyfile import load_key_file
    from ohttp.aio.tlog_dir import append_keys, default_key_path, read_signer
    from ohttp.tlog import Checkpoint, parse_note

    if args.key is None:
        origin = Checkpoint.parse(parse_note((args.dir / "checkpoint").read_bytes()).text).origin
        args.key = default_key_path(origin)
    signer = read_signer(args.key)
    ring = load_key_file(args.keys)
    summary = append_keys(args.dir, ring, signer, now=int(time.time()), release=args.release)
    print(f"logged {summary.added} key(s); tree size {summary.size}", file=sys.stderr)
    return EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    from ohttp.aio.tlog_dir import write_secret
    from ohttp.tlog import Ed25519Signer, TransparencyError

    try:
        signer = Ed25519Signer.generate(args.name)
    except TransparencyError:
        raise _Failed("the name must be non-empty, without spaces or '+'") from None
    write_secret(args.out, signer.skey + "\n")
    print(signer.verifier.vkey)
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from ohttp.aio.settings import parse_host_port
    from ohttp.aio.tlog_policy import witness_verifier
    from ohttp.aio.tlog_serve import create_log_app

    host, port = parse_host_port(args.listen, "listen")
    witnesses = [witness_verifier(vkey) for vkey in args.witness_key]
    if not (args.dir / "checkpoint").is_file():
        raise _Failed(f"{args.dir} holds no log (no checkpoint)")
    web.run_app(create_log_app(args.dir, witnesses), host=host, port=port, print=None)
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from ohttp.aio.tlog import check_consistent, log_verifier, open_saved_checkpoint

    log_key = log_verifier(args.log_key)
    log = _read_log(args.log, log_key)
    if args.state is not None and args.state.exists():
        check_consistent(open_saved_checkpoint(args.state.read_bytes(), log_key), log)
    bad = 0
    for index, statement in log.statements:
        if statement is None:
            bad += 1
            print(f"{index} not a key statement")
            continue
        print(f"{index} {_describe(statement)}")
    if bad:
        raise _Refused(f"{bad} entries are not key statements")
    if args.state is not None:
        from ohttp.aio.tlog import write_atomically

        write_atomically(args.state, log.note)
    print(f"verified: {log.checkpoint.origin}, size {log.checkpoint.size}", file=sys.stderr)
    return EXIT_OK


def _describe(statement: KeyStatement) -> str:
    from ohttp.tlog.statement import format_time

    config = statement.config
    return (
        f"key_id={config.key_id} kem={config.kem.name} "
        f"not-before={format_time(statement.not_before)} "
        f"not-after={format_time(statement.not_after)} release={statement.release or 'none'}"
    )


def _witness(args: argparse.Namespace) -> int:
    from ohttp.aio.tlog import log_verifier, write_atomically
    from ohttp.aio.tlog_dir import read_signer
    from ohttp.tlog import ForkError, RollbackError, consistency_proof, leaf_hash
    from ohttp.tlog.merkle import leaf_node_reader
    from ohttp.tlog.note import Note, parse_note
    from ohttp.tlog.witness import Cosigner, Witness

    seed = read_signer(args.key)
    cosigner = Cosigner(seed.name, seed.seed)
    log_key = log_verifier(args.log_key)
    state = args.state.read_bytes() if args.state.exists() else None
    witness = Witness(cosigner, log_key, log_key.name, state)
    log = _read_log(args.log, log_key)
    old_size = 0 if witness.checkpoint is None else witness.checkpoint.size
    leaves = leaf_node_reader([leaf_hash(entry) for entry in log.entries])
    try:
        proof = consistency_proof(leaves, min(old_size, log.checkpoint.size), log.checkpoint.size)
        signature = witness.cosign(log.note, proof, int(time.time()))
    except (ForkError, RollbackError) as exc:
        raise _Refused(str(exc)) from None
    assert witness.state is not None
    write_atomically(args.state, witness.state)
    cosigned = Note(parse_note(log.note).text, (signature,)).encode()
    _run(_publish(args.log, cosigned, cosigner.verifier))
    print(f"cosigned: {log.checkpoint.origin}, size {log.checkpoint.size}", file=sys.stderr)
    return EXIT_OK


async def _publish(location: str, cosigned: bytes, verifier: CosignatureVerifier) -> None:
    """Add the cosignature to the log: POST /add-cosignature, or merge into a directory."""
    import aiohttp

    from ohttp.aio.tlog_dir import add_cosignature
    from ohttp.aio.tlog_serve import COSIGNATURE_PATH

    if not location.startswith(("http://", "https://")):
        await asyncio.to_thread(add_cosignature, Path(location), cosigned, [verifier])
        return
    url = location.rstrip("/") + COSIGNATURE_PATH
    try:
        async with aiohttp.ClientSession() as session, session.post(url, data=cosigned) as answer:
            text = (await answer.text())[:200].strip()
            if answer.status != 200:
                raise _Failed(f"the log did not take the cosignature ({answer.status}: {text})")
    except (aiohttp.ClientError, OSError) as exc:
        raise _Failed("the log could not be reached to add the cosignature") from exc


def _read_log(location: str, log_key: Ed25519Verifier) -> VerifiedLog:
    from ohttp.aio.tlog import fetch_log, log_reader, with_session

    async def read(http: Callable[[], aiohttp.ClientSession]) -> VerifiedLog:
        return await fetch_log(log_reader(location, http), log_key)

    return _run(with_session(read))


def _run(coroutine: Awaitable[_T]) -> _T:
    async def wrapped() -> _T:
        return await coroutine

    return asyncio.run(wrapped())


def _fail(message: str, code: int) -> int:
    print(f"ohttp log: {message}", file=sys.stderr)
    return code
