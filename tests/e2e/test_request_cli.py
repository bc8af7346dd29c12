"""`ohttp request` as a subprocess against the real stack: output, -i, -v and exit codes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from gateway.processing.samples import FRENCH_CHAT, summarize_payload
from ohttp.cli import main
from ohttp.keys import GatewayKey, encode_key_configs
from tests.e2e.conftest import Stack
from tests.support import LOOPBACK, REPO, free_port

PROCESSING = "https://processing.internal"


def ohttp_request(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ohttp", "request", *args],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[bytes]) -> str:
    error = result.stderr.decode()
    assert error.startswith("ohttp request: ")
    assert error.count("\n") == 1
    assert "Traceback" not in error
    return error


def test_body_to_stdout(stack: Stack) -> None:
    payload = json.dumps(summarize_payload(FRENCH_CHAT, 2))
    result = ohttp_request(
        "--relay", stack.relay_url, "--json", payload, PROCESSING + "/v1/summarize"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["language"] == "fr"
    assert result.stderr == b""


def test_include_headers_and_data_binary(stack: Stack, tmp_path: Path) -> None:
    body_file = tmp_path / "body.bin"
    body_file.write_bytes(b"\x00\x01binary\xff")
    result = ohttp_request(
        "--relay", stack.echo_relay_url, "-i", "-X", "PATCH", "-H", "X-Note: hello there",
        "--data-binary", f"@{body_file}", "https://echo.internal/things",
    )
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\n\n")
    lines = head.decode().splitlines()
    assert lines[0] == "HTTP 200 OK"
    assert any(line.lower().startswith("content-type: application/json") for line in lines[1:])
    echoed = json.loads(body)
    assert echoed["method"] == "PATCH"
    assert ["x-note", "hello there"] in echoed["headers"]
    assert base64.b64decode(echoed["body_base64"]) == b"\x00\x01binary\xff"


def test_verbose_shows_what_each_party_sees(stack: Stack) -> None:
    result = ohttp_request("--relay", stack.echo_relay_url, "-v", "-d", "hi",
                           "https://echo.internal/v")
    assert result.returncode == 0, result.stderr
    trace = result.stderr.decode()
    relay_part, _, gateway_part = trace.partition("* the gateway")
    assert "* the relay sees a request from 127.0.0.1:" in relay_part
    assert ">   POST /echo" in relay_part
    assert ">   Content-Type: message/ohttp-req" in relay_part
    assert "bytes of ciphertext" in relay_part
    assert "hi" not in relay_part.replace("this host", "")  # no content on the relay's side
    assert "key id 1 (X25519, HKDF-SHA256, AES-128-GCM)" in gateway_part
    assert ">   POST https://echo.internal/v" in gateway_part
    assert "* the relay returns 200" in gateway_part


def test_keys_from_a_file(stack: Stack) -> None:
    result = ohttp_request("--relay", stack.echo_relay_url, "--keys", str(stack.key_file),
                           "https://echo.internal/")
    assert result.returncode == 0, result.stderr


def test_inner_error_status_exits_3(stack: Stack) -> None:
    result = ohttp_request("--relay", stack.relay_url, PROCESSING + "/no/such/path")
    assert result.returncode == 3
    assert "404" in assert_one_line_error(result)


def test_relay_unreachable_exits_4() -> None:
    result = ohttp_request("--relay", f"http://{LOOPBACK}:{free_port()}/", PROCESSING + "/")
    assert result.returncode == 4
    assert "could not" in assert_one_line_error(result)


# Local problems and key failures, in-process (same code path, no interpreter start-up).


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["request", *args])
    error = capsys.readouterr().err
    assert error.startswith("ohttp request: ")
    assert error.count("\n") == 1
    return code, error


def test_unusable_keys_exit_6(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "keys"
    garbage.write_bytes(b"nonsense")
    code, _ = run_in_process(capsys, "--relay", stack.relay_url, "--keys", str(garbage),
                             PROCESSING + "/")
    assert code == 6


def test_rejected_key_exits_5(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = tmp_path / "stranger.keys"
    stranger.write_bytes(encode_key_configs([GatewayKey.generate(9).config]))
    code, error = run_in_process(capsys, "--relay", stack.relay_url, "--keys", str(stranger),
                                 PROCESSING + "/")
    assert code == 5
    assert "key configuration" in error


@pytest.mark.parametrize(
    "args",
    [
        ("-H", "no colon", PROCESSING + "/"),
        ("--data-binary", "@/nonexistent/body", PROCESSING + "/"),
        ("/relative",),
    ],
)
def test_local_problems_exit_1(
    stack: Stack, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, _ = run_in_process(capsys, "--relay", stack.relay_url, *args)
    assert code == 1


def test_version_names_the_installed_release() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ohttp", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"ohttp {version('ohttp')}"


def test_an_unknown_option_gets_the_subcommand_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ohttp", "gateway", "--bogus"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("usage: ohttp gateway ")
    assert "unrecognized arguments: --bogus" in result.stderr


def test_utf8_header_values_pass_as_their_bytes(stack: Stack) -> None:
    """RFC 9110 §5.5: field values are octets; `-H 'x: ✓'` sends the UTF-8 bytes of ✓."""
    result = ohttp_request("--relay", stack.echo_relay_url, "-H", "X-Mark: café ✓",
                           "https://echo.internal/")
    assert result.returncode == 0, result.stderr
    echoed = dict(json.loads(result.stdout)["headers"])  # the echo shows each byte as a char
    assert echoed["x-mark"].encode("latin-1") == "café ✓".encode()
