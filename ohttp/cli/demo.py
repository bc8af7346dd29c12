"""``ohttp demo``: a relay and a gateway on this machine, sample requests, who saw what.

Generates a fresh key in a temporary directory, starts ``ohttp gateway`` (private-processing
backend) and ``ohttp relay`` as subprocesses on free loopback ports, sends two group chats (French
and English) for a summary, the English one again for a streamed summary (chunked OHTTP, printed
line by line as it arrives) and a draft for a rewrite through the relay, and prints the results
and a table of what each party saw, measured in this run. Every process it starts is stopped by
PID, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from ohttp.aio.client import Client, ClientError, Exchange, InnerResponse
from ohttp.aio.keyfile import save_key_file
from ohttp.aio.wallet import TokenSource
from ohttp.cli.tokens import DemoIssuer, demo_token_source, write_demo_issuer
from ohttp.keys import GatewayKey

LOOPBACK: Final = "127.0.0.1"
PROCESSING: Final = "https://processing.internal"
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 5.0
_WIDTH: Final = 78


class DemoError(Exception):
    """A step of the demo failed; the message is one line for the user."""


@dataclass
class _Service:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log_tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip().splitlines()
            return "\n".join(f"    {line}" for line in text[-lines:])
        return ""


@dataclass
class _Run:
    """What the demo measured: every outer exchange, and what the parties left behind."""

    exchanges: list[Exchange] = field(default_factory=list)
    response_bytes: int = 0
    files_written: int = 0
    content_in_logs: int = 0
    tokens_fetched: int = 0


def configure(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand."""
    demo = subparsers.add_parser(
        "demo",
        help="run a gateway and a relay locally and send sample requests through them",
        description="Generate keys, start a gateway and a relay on free loopback ports, send "
        "sample conversations through them and show who saw what.",
    )
    demo.set_defaults(handler=lambda _: run_demo())


def run_demo() -> int:
    """Handler of ``ohttp demo``: 0 when every step worked, 1 with a one-line reason otherwise."""
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _check_dependencies()
        with tempfile.TemporaryDirectory(prefix="ohttp-demo-") as directory:
            _demo(Path(directory))
    except DemoError as exc:
        print(f"ohttp demo: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"\nDone in {time.monotonic() - started:.1f} s.")
    return 0


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind through the `finally` blocks so the child processes are stopped too.
    raise SystemExit(128 + signum)


def _check_dependencies() -> None:
    for module in ("aiohttp", "gateway.cli", "relay.cli", "gateway.processing.samples"):
        try:
            __import__(module)
        except ImportError as exc:
            raise DemoError(f"missing dependency: {exc.name or module} (run `make demo`)") from None


def _demo(directory: Path) -> None:
    key = GatewayKey.generate(1)
    key_file = directory / "gateway-keys.json"
    save_key_file(key_file, [key])
    workdir = directory / "gateway-cwd"  # the gateway's working directory: must stay empty
    workdir.mkdir()
    logs = directory / "logs"
    logs.mkdir()
    suite = key.config.suites[0]
    issuer_files = write_demo_issuer(directory)
    _section("Setup")
    _row(
        "keys",
        f"a fresh {key.config.kem.name} key, id {key.key_id} "
        f"({_name(suite.kdf.name)}, {_name(suite.aead.name)}), in {directory}",
    )
    with _services(key_file, workdir, logs, issuer_files) as (gateway, relay, issuer):
        _row(
            "gateway",
            f"{gateway.url}  pid {gateway.process.pid}  backend: "
            "private processing at processing.internal",
        )
        _row("relay", f"{relay.url}  pid {relay.process.pid}  forwards to the gateway")
        _row("issuer", f"{issuer.url}  pid {issuer.process.pid}  tokens (Privacy Pass)")
        tokens = demo_token_source(issuer.url, issuer_files)
        measured = asyncio.run(_send_samples(relay.url + "/", tokens))
    print(
        f"\nStopped the relay (pid {relay.process.pid}), the gateway "
        f"(pid {gateway.process.pid}) and the issuer (pid {issuer.process.pid})."
    )
    # Measured after the processes exited, so their logs are complete.
    measured.files_written = sum(1 for path in workdir.rglob("*") if path.is_file())
    measured.content_in_logs = _count_in_logs(logs, _distinctive_phrases())
    _print_who_saw_what(measured)


@contextlib.contextmanager
def _services(
    key_file: Path, workdir: Path, logs: Path, issuer_files: DemoIssuer
) -> Iterator[tuple[_Service, _Service, _Service]]:
    gateway_port, relay_port, issuer_port = _free_port(), _free_port(), _free_port()
    started: list[_Service] = []
    try:
        issuer = _start(
            "issuer",
            issuer_files.args(f"{LOOPBACK}:{issuer_port}"),
            port=issuer_port, workdir=workdir, logs=logs, started=started,
        )  # fmt: skip
        _wait_healthy(issuer)  # the gateway fetches its keys on the first request
        gateway = _start(
            "gateway",
            ["gateway", "--keys", str(key_file), "--listen", f"{LOOPBACK}:{gateway_port}",
             *issuer_files.gateway_args(issuer.url)],
            port=gateway_port,
            workdir=workdir,
            logs=logs,
            started=started,
        )
        relay = _start(
            "relay",
            [
                "relay",
                "--listen",
                f"{LOOPBACK}:{relay_port}",
                "--gateway",
                f"{gateway.url}/.well-known/ohttp-gateway",
            ],
            port=relay_port,
            workdir=workdir,
            logs=logs,
            started=started,
        )
        for service in started:
            _wait_healthy(service)
        yield gateway, relay, issuer
    finally:
        for service in reversed(started):
            _stop(service.process)


def _start(
    name: str,
    args: Sequence[str],
    *,
    port: int,
    workdir: Path,
    logs: Path,
    started: list[_Service],
) -> _Service:
    log_path = logs / f"{name}.log"
    # The package may run from a checkout that is not installed: children find it the same way.
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    with log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "ohttp", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                env={**os.environ, "PYTHONPATH": path},
            )
        except OSError as exc:
            raise DemoError(f"cannot start the {name}: {exc.strerror}") from None
    service = _Service(name, process, port, log_path)
    started.append(service)
    return service


def _wait_healthy(service: _Service) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    url = f"{service.url}/healthz"
    while time.monotonic() < deadline:
        code = service.process.poll()
        if code is not None:
            raise DemoError(
                f"the {service.name} exited during start-up with code {code} "
                f"(is port {service.port} in use?); its last log lines:\n{service.log_tail()}"
            )
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=1) as response,  # noqa: S310 (loopback)
        ):
            if response.status == 200:
                return
        time.sleep(0.05)
    raise DemoError(f"the {service.name} did not become healthy within {_START_TIMEOUT:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(_STOP_TIMEOUT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# The requests ---------------------------------------------------------------------------


async def _send_samples(relay_url: str, tokens: TokenSource) -> _Run:
    from gateway.processing.samples import (
        ENGLISH_CHAT,
        ENGLISH_DRAFT,
        FRENCH_CHAT,
        summarize_payload,
    )

    measured = _Run()
    try:  # one batch ahead of the requests: issuance apart from spending
        measured.tokens_fetched = await tokens.refill()
    except ClientError as exc:
        raise DemoError(f"fetching tokens from the issuer failed: {exc}") from None
    _row("tokens", f"{measured.tokens_fetched} fetched for the demo account; the gateway "
         "takes one per request")  # fmt: skip
    async with Client(relay_url, observer=measured.exchanges.append, tokens=tokens) as client:
        for title, chat in (
            ("a French group chat", FRENCH_CHAT),
            ("an English group chat", ENGLISH_CHAT),
        ):
            response = await _call(client, "/v1/summarize", summarize_payload(chat, 3))
            _print_summary(f"Summary of {title} ({len(chat)} messages)", response.json())
        await _stream_summary(client, summarize_payload(ENGLISH_CHAT, 3))
        draft = {"text": ENGLISH_DRAFT, "style": "formal"}
        response = await _call(client, "/v1/rewrite", draft)
        _print_rewrite(ENGLISH_DRAFT, response.json())
    measured.response_bytes = sum(exchange.response_bytes for exchange in measured.exchanges)
    return measured


async def _call(client: Client, path: str, payload: dict[str, Any]) -> InnerResponse:
    try:
        response = await client.request("POST", PROCESSING + path, json=payload)
    except ClientError as exc:
        raise DemoError(f"POST {path} through the relay failed: {exc}") from None
    if not response.ok:
        raise DemoError(f"POST {path} answered {response.status} {response.reason}")
    return response


async def _stream_summary(client: Client, payload: dict[str, Any]) -> None:
    """The summary again, as chunked OHTTP: each sentence printed when its chunk arrives."""
    _section("Streamed summary of the English chat (chunked OHTTP, as it arrives)")
    path = "/v1/summarize/stream"
    started = time.monotonic()
    try:
        async with client.stream("POST", PROCESSING + path, json=payload) as response:
            if not response.ok:
                raise DemoError(f"POST {path} answered {response.status} {response.reason}")
            pending = b""
            async for chunk in response:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    _print_stream_line(line, time.monotonic() - started)
    except ClientError as exc:
        raise DemoError(f"POST {path} through the relay failed: {exc}") from None


def _print_stream_line(line: bytes, elapsed: float) -> None:
    if not line.strip():
        return
    try:
        item = json.loads(line)
    except ValueError:
        raise DemoError("the streamed summary is not NDJSON") from None
    stamp = f"  +{elapsed * 1000:5.0f} ms "
    if isinstance(item, dict) and item.get("done"):
        highlights = ", ".join(str(h) for h in item.get("highlights") or [])
        print(f"{stamp}done (language {item.get('language', '?')}; highlights: {highlights})")
    elif isinstance(item, dict):
        text = f"{item.get('sender', '?')}: {item.get('sentence', '')}"
        print(textwrap.fill(text, _WIDTH, initial_indent=stamp, subsequent_indent=" " * 12))
    sys.stdout.flush()  # shown as it arrives, also when stdout is a pipe


# Printing -------------------------------------------------------------------------------


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, _WIDTH - len(title) - 4))


def _row(label: str, text: str) -> None:
    print(f"  {label:<9} {text}")


def _wrapped(text: str, indent: str = "    ") -> str:
    """Each line of ``text`` filled to the width, its own line breaks kept."""
    return "\n".join(
        textwrap.fill(line, _WIDTH, initial_indent=indent, subsequent_indent=" " * len(indent))
        for line in text.splitlines() or [""]
    )


def _print_summary(title: str, result: Any) -> None:
    _section(title)
    if not isinstance(result, dict):
        print(_wrapped(str(result)))
        return
    print(f"  language: {result.get('language', '?')}")
    print("  summary:")
    print(_wrapped(str(result.get("summary", ""))))
    highlights = result.get("highlights") or []
    if highlights:
        print("  highlights:")
        print(_wrapped(", ".join(str(item) for item in highlights)))


def _print_rewrite(draft: str, result: Any) -> None:
    _section("Rewrite of a draft (formal)")
    document = result if isinstance(result, dict) else {"text": result}
    print("  before:")
    print(_wrapped(draft))
    print("  after:")
    print(_wrapped(str(document.get("text", ""))))
    changes = document.get("changes") or []
    if changes:
        print("  changes:")
        for change in changes:
            print(_wrapped(_describe_change(change), "    - "))


def _describe_change(change: Any) -> str:
    if isinstance(change, dict) and "before" in change and "after" in change:
        return f"{change.get('rule', 'edit')}: {change['before']!r} -> {change['after']!r}"
    return str(change)


def _print_who_saw_what(measured: _Run) -> None:
    exchanges = measured.exchanges
    count = len(exchanges)
    ciphertext = sum(exchange.request_bytes for exchange in exchanges)
    plaintext = sum(exchange.inner_request_bytes for exchange in exchanges)
    content = sum(len(exchange.inner_request.content) for exchange in exchanges)
    addresses = sorted({exchange.local_address or LOOPBACK for exchange in exchanges})
    header_names = sorted({name for exchange in exchanges for name, _ in exchange.request_headers})
    key_ids = sorted({exchange.key_id for exchange in exchanges})
    _section("Who saw what (measured in this run)")
    table = [
        ("party", "saw"),
        (
            "relay",
            f"the client's address ({', '.join(addresses)}); {count} requests of "
            f"{ciphertext} bytes of ciphertext in total and {measured.response_bytes} "
            f"bytes back; header fields: {', '.join(header_names)}; no content",
        ),
        (
            "gateway",
            f"{count} requests decrypted with key id "
            f"{', '.join(map(str, key_ids))}: {plaintext} bytes of Binary HTTP "
            f"({content} bytes of content); connections from the relay's address only",
        ),
        (
            "issuer",
            f"the demo account and {measured.tokens_fetched} blinded token requests, all at "
            "once before the first request; not which requests the tokens paid for",
        ),
        (
            "backend",
            f"answered {count} requests and kept nothing: files written "
            f"{measured.files_written}, sample text in the logs "
            f"{measured.content_in_logs} times",
        ),
    ]
    for party, text in table:
        lines = textwrap.wrap(text, _WIDTH - 12) or [""]
        print(f"  {party:<9} {lines[0]}")
        for line in lines[1:]:
            print(f"  {'':<9} {line}")


def _distinctive_phrases() -> tuple[str, ...]:
    from gateway.processing.samples import ENGLISH_CHAT, ENGLISH_DRAFT, FRENCH_CHAT

    return (FRENCH_CHAT[-4][1], ENGLISH_CHAT[6][1], ENGLISH_DRAFT[:40])


def _count_in_logs(logs: Path, phrases: Sequence[str]) -> int:
    text = "".join(path.read_text(errors="replace") for path in sorted(logs.glob("*.log")))
    return sum(text.count(phrase) for phrase in phrases)


def _name(enum_name: str) -> str:
    return enum_name.replace("_", "-")
