"""The private-processing backend: endpoints, summary quality, bad inputs, statelessness."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpClient

from gateway import processing
from gateway.processing import create_app
from gateway.processing import samples as _samples
from gateway.processing import text as _text
from tests.support import LOOPBACK, free_port

Client = TestClient[web.Request, web.Application]

# Every error body the app may send: fixed strings, so an error can never echo input.
KNOWN_ERRORS = {
    "body must be a JSON object",
    "body must be valid JSON",
    "messages must be a non-empty array",
    "too many messages",
    "conversation too long",
    "max_sentences must be an integer from 1 to 20",
    "each message must be an object",
    "each message needs a string sender and a string text",
    "sender must have 1 to 64 characters",
    "message text too long",
    "text must be a string",
    "text too long",
    "style must be concise, formal or friendly",
}
RULES = {
    "trailing_space", "double_space", "orphan_punctuation", "misplaced_comma",
    "space_after_punctuation", "repeated_word", "capitalisation", "space_before_punctuation",
    "proper_noun_capitalisation", "pronoun_i", "french_spacing", "repeated_punctuation",
    "final_punctuation", "redundant_phrase", "filler_word", "informal_word",
    "contraction_expansion", "contraction_use",
}


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_app())


def chat(pairs: tuple[tuple[str, str], ...], max_sentences: object = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"sender": s, "text": t} for s, t in pairs]}
    if max_sentences is not None:
        body["max_sentences"] = max_sentences
    return body


async def post_json(client: Client, path: str, body: object) -> tuple[int, Any]:
    response = await client.post(path, json=body)
    return response.status, await response.json()


def quoted_from(sender: str, sentence: str, conversation: tuple[tuple[str, str], ...]) -> bool:
    """Whether a summary sentence is taken from what ``sender`` wrote (bar a first letter)."""
    written = " ".join(text for who, text in conversation if who == sender)
    return sentence[1:] in written


# --- Summaries ----------------------------------------------------------------------------


async def test_english_chat_summary_reads_well(client: Client) -> None:
    status, body = await post_json(client, "/v1/summarize", _samples.summarize_payload(
        _samples.ENGLISH_CHAT, 4))
    assert status == 200
    assert body["language"] == "en"
    lines = body["summary"].split("\n")
    assert 2 <= len(lines) <= 4
    senders = {sender for sender, _ in _samples.ENGLISH_CHAT}
    for line in lines:
        sender, _, sentence = line.partition(": ")
        assert sender in senders
        assert quoted_from(sender, sentence.split(". ")[0], _samples.ENGLISH_CHAT)
    summary = body["summary"]
    # The decisions of the chat: the day and place, the time, the money for the present.
    assert "Saturday at Luigi's" in summary
    assert "7:30pm" in summary
    assert "$40" in summary
    # Chit-chat never makes it in.
    assert "lol" not in summary and "Wouldn't miss it" not in summary
    assert {"Saturday", "Luigi's"} <= set(body["highlights"])
    assert all(isinstance(h, str) and h for h in body["highlights"])


async def test_french_chat_summary_reads_well(client: Client) -> None:
    status, body = await post_json(client, "/v1/summarize", _samples.summarize_payload(
        _samples.FRENCH_CHAT, 4))
    assert status == 200
    assert body["language"] == "fr"
    summary = body["summary"]
    assert summary.startswith("Julie: Je déménage enfin le samedi 14 juin")
    assert "camion" in summary and "9h" in summary
    assert "mdr" not in summary
    assert "camion" in body["highlights"]


async def test_summary_keeps_chronological_order_and_attribution(client: Client) -> None:
    response = await client.post("/v1/summarize/stream", json=_samples.summarize_payload(
        _samples.ENGLISH_CHAT, 6))
    lines = [json.loads(line) for line in (await response.read()).splitlines()]
    picked = lines[:-1]
    assert len(picked) == 6
    texts = [text for _, text in _samples.ENGLISH_CHAT]
    positions = []
    for item in picked:
        first_sentence = item["sentence"].split(". ")[0]
        assert quoted_from(item["sender"], first_sentence, _samples.ENGLISH_CHAT)
        positions.append(next(i for i, t in enumerate(texts) if first_sentence[1:] in t))
    assert positions == sorted(positions)


@pytest.mark.parametrize("count", [1, 2, 3, 20])
async def test_max_sentences_is_an_upper_bound(client: Client, count: int) -> None:
    response = await client.post("/v1/summarize/stream", json=_samples.summarize_payload(
        _samples.FRENCH_CHAT, count))
    picked = (await response.read()).splitlines()[:-1]
    # The French chat has more than five informative passages but fewer than twenty.
    assert len(picked) == count if count < 5 else 5 < len(picked) < count


async def test_default_max_sentences(client: Client) -> None:
    body = _samples.summarize_payload(_samples.ENGLISH_CHAT)
    del body["max_sentences"]
    response = await client.post("/v1/summarize/stream", json=body)
    assert len((await response.read()).splitlines()) - 1 == processing.DEFAULT_MAX_SENTENCES


async def test_chat_of_only_reactions_gives_an_empty_summary(client: Client) -> None:
    status, body = await post_json(client, "/v1/summarize", chat(
        (("A", "lol"), ("B", "ok 👍"), ("C", ""), ("A", "haha"))))
    assert status == 200
    assert body == {"summary": "", "highlights": [], "language": body["language"]}


async def test_stream_matches_the_summary_and_ends_with_done(client: Client) -> None:
    payload = _samples.summarize_payload(_samples.FRENCH_CHAT, 4)
    _, whole = await post_json(client, "/v1/summarize", payload)
    response = await client.post("/v1/summarize/stream", json=payload)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    lines = [json.loads(line) for line in (await response.read()).splitlines()]
    assert lines[-1] == {"done": True, "language": "fr", "highlights": whole["highlights"]}
    rendered = _text.ChatSummary(
        tuple(_text.Picked(i["sender"], i["sentence"], n) for n, i in enumerate(lines[:-1])),
        (), "fr",
    ).render()
    assert rendered == whole["summary"]
    assert all(set(item) == {"sentence", "sender"} for item in lines[:-1])


async def test_stream_writes_each_sentence_as_its_own_chunk(client: Client) -> None:
    response = await client.post("/v1/summarize/stream", json=_samples.summarize_payload(
        _samples.ENGLISH_CHAT, 4))
    assert "Content-Length" not in response.headers
    assert response.headers.get("Transfer-Encoding") == "chunked"
    pieces: list[bytes] = []
    current = b""
    async for data, end_of_chunk in response.content.iter_chunks():
        current += data
        if end_of_chunk:
            pieces.append(current)
            current = b""
    pieces = [p for p in pieces if p]
    # One HTTP chunk per line: each was written (and flushed) on its own.
    assert len(pieces) == 5
    assert all(p.endswith(b"\n") and p.count(b"\n") == 1 for p in pieces)
    assert json.loads(pieces[-1])["done"] is True


# --- Rewrites -----------------------------------------------------------------------------


async def rewrite(client: Client, text: str, style: str) -> tuple[str, list[dict[str, str]]]:
    status, body = await post_json(client, "/v1/rewrite", {"text": text, "style": style})
    assert status == 200
    assert all(change["rule"] in RULES for change in body["changes"])
    return body["text"], body["changes"]


async def test_concise_removes_fillers_and_redundancy(client: Client) -> None:
    text, changes = await rewrite(
        client, "basically we need to  make a decision in order to finish the the plan", "concise"
    )
    assert text == "We need to decide to finish the plan."
    rules = {c["rule"] for c in changes}
    assert {"filler_word", "redundant_phrase", "double_space", "repeated_word",
            "capitalisation", "final_punctuation"} <= rules
    assert {"rule": "redundant_phrase", "before": "make a decision", "after": "decide"} in changes


async def test_concise_keeps_meaningful_very_and_really(client: Client) -> None:
    text, _ = await rewrite(client, "Thank you very much, I'm not really sure.", "concise")
    assert text == "Thank you very much, I'm not really sure."


async def test_formal_expands_contractions_and_informal_words(client: Client) -> None:
    text, changes = await rewrite(
        client, "i can't come tmrw, it's been a long week and we're gonna be late!!!", "formal"
    )
    assert text == (
        "I cannot come tmrw, it has been a long week and we are going to be late!"
    )
    assert {"rule": "contraction_expansion", "before": "can't", "after": "cannot"} in changes
    assert {"rule": "informal_word", "before": "gonna", "after": "going to"} in changes


async def test_friendly_uses_contractions_only_before_a_word(client: Client) -> None:
    text, changes = await rewrite(
        client, "I am sure we do not need it. That is what it is.", "friendly"
    )
    assert text == "I'm sure we don't need it. That's what it is."
    assert {"rule": "contraction_use", "before": "I am", "after": "I'm"} in changes


async def test_friendly_leaves_main_verbs_alone(client: Client) -> None:
    text, _ = await rewrite(
        client, "We have a car. We have not received it. Let us know.", "friendly"
    )
    assert text == "We have a car. We haven't received it. Let us know."


async def test_punctuation_and_capitalisation_fixes(client: Client) -> None:
    text, _ = await rewrite(
        client, "see you on monday ,ok ? the meeting is at 10:30. then lunch.See you", "formal"
    )
    assert text == "See you on Monday, ok? The meeting is at 10:30. Then lunch. See you."


async def test_abbreviations_urls_and_ellipsis_are_not_capitalised(client: Client) -> None:
    source = "We need e.g. a plan... maybe. see example.com and iPhone docs."
    text, _ = await rewrite(client, source, "concise")
    assert text == "We need e.g. a plan... maybe. See example.com and iPhone docs."


async def test_french_basics(client: Client) -> None:
    text, changes = await rewrite(
        client, "salut ,  en fait c'est pas grave. on se voit demain?", "concise"
    )
    assert text == "Salut, c'est pas grave. On se voit demain\u00a0?"
    assert {"rule": "filler_word", "before": "en fait", "after": ""} in changes
    formal, _ = await rewrite(client, "Bon, c'est pas grave, y a pas de souci.", "formal")
    assert "ce n'est pas grave" in formal


async def test_clean_text_is_left_alone(client: Client) -> None:
    clean = "The report is ready. Could you review it by Friday?"
    for style in ("concise", "formal", "friendly"):
        assert await rewrite(client, clean, style) == (clean, [])


async def test_rewrite_of_empty_text(client: Client) -> None:
    assert await rewrite(client, "", "formal") == ("", [])


# --- Bad input ----------------------------------------------------------------------------

SUMMARIZE_ERRORS: list[tuple[bytes, str]] = [
    (b"", "body must be valid JSON"),
    (b"{", "body must be valid JSON"),
    (b"\xff\xfe{}", "body must be valid JSON"),
    (b'{"messages": NaN}', "body must be valid JSON"),
    (b"[" * 50_000 + b"]" * 50_000, "body must be valid JSON"),
    (b'{"max_sentences": 1' + b"0" * 5000 + b"}", "body must be valid JSON"),
    (b"[]", "body must be a JSON object"),
    (b'"messages"', "body must be a JSON object"),
    (b"{}", "messages must be a non-empty array"),
    (b'{"messages": []}', "messages must be a non-empty array"),
    (b'{"messages": {"sender": "a", "text": "b"}}', "messages must be a non-empty array"),
    (b'{"messages": ["hello"]}', "each message must be an object"),
    (b'{"messages": [{"text": "hello"}]}', "each message needs a string sender and a string text"),
    (b'{"messages": [{"sender": "a"}]}', "each message needs a string sender and a string text"),
    (b'{"messages": [{"sender": 1, "text": "x"}]}',
     "each message needs a string sender and a string text"),
    (b'{"messages": [{"sender": "a", "text": null}]}',
     "each message needs a string sender and a string text"),
    (b'{"messages": [{"sender": " ", "text": "x"}]}', "sender must have 1 to 64 characters"),
    (json.dumps(chat((("a" * 65, "x"),))).encode(), "sender must have 1 to 64 characters"),
    (json.dumps(chat((("a", "x" * 4001),))).encode(), "message text too long"),
    (json.dumps(chat((("a", "x" * 4000),) * 26)).encode(), "conversation too long"),
    (json.dumps(chat((("a", "x"),) * 501)).encode(), "too many messages"),
]
SUMMARIZE_ERRORS += [
    (json.dumps(chat((("a", "x"),), bad)).encode(), "max_sentences must be an integer from 1 to 20")
    for bad in (0, 21, -1, True, "3", 2.5, [3])
]
SUMMARIZE_ERRORS.append((
    b'{"messages": [{"sender": "a", "text": "x"}], "max_sentences": null}',
    "max_sentences must be an integer from 1 to 20",
))
REWRITE_ERRORS: list[tuple[bytes, str]] = [
    (b"{", "body must be valid JSON"),
    (b'{"text": "x", "style": Infinity}', "body must be valid JSON"),
    (b"null", "body must be a JSON object"),
    (b'{"style": "formal"}', "text must be a string"),
    (b'{"text": ["x"], "style": "formal"}', "text must be a string"),
    (b'{"text": "x"}', "style must be concise, formal or friendly"),
    (b'{"text": "x", "style": "pirate"}', "style must be concise, formal or friendly"),
    (b'{"text": "x", "style": "FORMAL"}', "style must be concise, formal or friendly"),
    (json.dumps({"text": "x" * 20_001, "style": "formal"}).encode(), "text too long"),
]


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [("/v1/summarize", b, e) for b, e in SUMMARIZE_ERRORS]
    + [("/v1/summarize/stream", b, e) for b, e in SUMMARIZE_ERRORS[:12]]
    + [("/v1/rewrite", b, e) for b, e in REWRITE_ERRORS],
)
async def test_bad_input_is_a_400_with_a_fixed_message(
    client: Client, path: str, body: bytes, error: str
) -> None:
    response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert await response.json() == {"error": error}


@pytest.mark.parametrize("path", ["/v1/summarize", "/v1/summarize/stream", "/v1/rewrite"])
async def test_oversized_body_is_a_413(client: Client, path: str) -> None:
    body = b'{"text": "' + b"x" * processing.MAX_BODY_BYTES + b'", "style": "formal"}'
    response = await client.post(path, data=body)
    assert response.status == 413
    assert await response.json() == {"error": "request body too large"}


async def test_oversized_chunked_body_is_a_413(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'", "style": "formal"}'

    response = await client.post("/v1/rewrite", data=chunks())
    assert response.status == 413
    assert await response.json() == {"error": "request body too large"}


async def test_unknown_path_is_a_json_404(client: Client) -> None:
    response = await client.post("/v1/translate", json={})
    assert response.status == 404
    assert await response.json() == {"error": "not found"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_wrong_method_is_a_json_405(client: Client, method: str) -> None:
    response = await client.request(method, "/v1/summarize")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert await response.json() == {"error": "method not allowed"}


async def test_unexpected_failure_is_a_fixed_500_without_details(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The last resort only: the fuzz tests below show that no input reaches it.
    async def broken(_request: web.Request) -> web.Response:
        raise RuntimeError("secret-detail-4417")

    app = create_app()
    app.router.add_post("/broken", broken)
    client = await aiohttp_client(app)
    caplog.set_level(logging.DEBUG)
    response = await client.post("/broken", json={})
    assert response.status == 500
    assert await response.json() == {"error": "internal error"}
    assert "secret-detail-4417" not in caplog.text


async def test_lone_surrogates_and_odd_text_are_fine(client: Client) -> None:
    body = (b'{"messages": [{"sender": "\\ud800", "text": "x\\udfff yacht zebra wolf. '
            b'\\u0000 \\u200b"}], "max_sentences": 1}')
    response = await client.post("/v1/summarize", data=body)
    assert response.status == 200
    assert (await response.read()).startswith(b'{"summary": "\\ud800: x\\udfff yacht zebra')
    response = await client.post("/v1/summarize/stream", data=body)
    assert response.status == 200
    lines = [json.loads(line) for line in (await response.read()).splitlines()]
    assert lines[0] == {"sentence": "x\udfff yacht zebra wolf.", "sender": "\ud800"}
    assert lines[-1]["done"] is True
    draft = {"text": "\ud800 été", "style": "formal"}
    status, rewritten = await post_json(client, "/v1/rewrite", draft)
    assert (status, rewritten["text"]) == (200, "\ud800 été")


async def test_json_is_readable_utf8(client: Client) -> None:
    response = await client.post("/v1/summarize", json=_samples.summarize_payload(
        _samples.FRENCH_CHAT, 1))
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    raw = await response.read()
    assert "Léa: On se retrouve à 9h".encode() in raw and b"\\u" not in raw


# --- Fuzzing through a real server on 127.0.0.1 ----------------------------------------------


@pytest.fixture(scope="module")
def live_server() -> Iterator[tuple[str, int]]:
    """The app on a real socket, in a thread, so sync Hypothesis tests can call it."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(), access_log=None)
    port = free_port()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, LOOPBACK, port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield LOOPBACK, port
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def post_raw(server: tuple[str, int], path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


ANY_TEXT = st.text(st.characters(codec=None, categories=None, exclude_categories=()), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
WORDS = (
    "Saturday", "7:30pm", "$40", "9h", "le", "la", "de", "book", "table", "Luigi's", "camion",
    "we'll", "let's", "ok", "lol", ".", "!", "?", "…", "e.g.", "Dr.", "\n", "l'équipe", "don't",
    "it's", "gonna", "basically", "in order to", "the the", " ,", "", "  ", "😅", "14h", "rue",
)
CHAT_TEXT = st.lists(st.sampled_from(WORDS) | ANY_TEXT, max_size=30).map(" ".join)
MESSAGE = st.fixed_dictionaries(
    {"sender": st.text(max_size=70) | JSON_VALUES, "text": CHAT_TEXT | JSON_VALUES}
)
SUMMARIZE_BODY = st.fixed_dictionaries(
    {"messages": st.lists(MESSAGE | JSON_VALUES, max_size=12) | JSON_VALUES},
    optional={"max_sentences": st.integers(-3, 25) | JSON_VALUES},
)
REWRITE_BODY = st.fixed_dictionaries(
    {"text": CHAT_TEXT | JSON_VALUES},
    optional={"style": st.sampled_from(sorted(_text.STYLES)) | JSON_VALUES},
)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_answer(status: int, raw: bytes, path: str) -> None:
    assert status in (200, 400), status
    if status == 400:
        assert json.loads(raw)["error"] in KNOWN_ERRORS
    elif path == "/v1/summarize":
        body = json.loads(raw)
        assert set(body) == {"summary", "highlights", "language"}
        assert isinstance(body["summary"], str)
        assert all(isinstance(h, str) for h in body["highlights"])
    elif path == "/v1/summarize/stream":
        lines = [json.loads(line) for line in raw.splitlines()]
        assert lines[-1]["done"] is True
    else:
        body = json.loads(raw)
        assert isinstance(body["text"], str) and isinstance(body["changes"], list)


@FUZZ
@given(body=SUMMARIZE_BODY, stream=st.booleans())
def test_fuzz_summarize(live_server: tuple[str, int], body: Any, stream: bool) -> None:
    path = "/v1/summarize/stream" if stream else "/v1/summarize"
    status, raw = post_raw(live_server, path, json.dumps(body).encode())
    check_answer(status, raw, path)


@FUZZ
@given(body=REWRITE_BODY)
def test_fuzz_rewrite(live_server: tuple[str, int], body: Any) -> None:
    status, raw = post_raw(live_server, "/v1/rewrite", json.dumps(body).encode())
    check_answer(status, raw, "/v1/rewrite")


@FUZZ
@given(raw_body=st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
       path=st.sampled_from(["/v1/summarize", "/v1/summarize/stream", "/v1/rewrite"]))
def test_fuzz_raw_bodies(live_server: tuple[str, int], raw_body: bytes, path: str) -> None:
    status, raw = post_raw(live_server, path, raw_body)
    check_answer(status, raw, path)


# --- The text functions themselves ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    conversation=st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), CHAT_TEXT), min_size=1,
                          max_size=15),
    max_sentences=st.integers(1, 20),
)
def test_summary_invariants(conversation: list[tuple[str, str]], max_sentences: int) -> None:
    messages = [_text.ChatMessage(s, t) for s, t in conversation]
    summary = _text.summarize_chat(messages, max_sentences)
    assert len(summary.picked) <= max_sentences
    positions = [p.position for p in summary.picked]
    assert positions == sorted(set(positions))
    assert all(p.sender in {"A", "B", "C"} and p.sentence for p in summary.picked)
    assert len(summary.render().splitlines()) <= len(summary.picked)


@settings(max_examples=200, deadline=None)
@given(text=CHAT_TEXT, style=st.sampled_from(sorted(_text.STYLES)))
def test_rewrite_reports_real_changes(text: str, style: str) -> None:
    result = _text.rewrite(text, style)
    for change in result.changes:
        assert change.rule in RULES
        assert change.before != change.after


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Dr. Smith arrives at 7.30 tonight. Bring e.g. snacks!",
         ["Dr. Smith arrives at 7.30 tonight.", "Bring e.g. snacks!"]),
        ("Coucou ! Je déménage le 14 juin… Tu viens ?",
         ["Coucou !", "Je déménage le 14 juin…", "Tu viens ?"]),
        ("He said \"ok.\" Then left\nnew line", ["He said \"ok.\"", "Then left", "new line"]),
        ("no punctuation at all", ["no punctuation at all"]),
        ("  ", []),
    ],
)
def test_sentence_splitting(text: str, sentences: list[str]) -> None:
    assert _text.split_sentences(text) == sentences


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (" ".join(t for _, t in _samples.ENGLISH_CHAT), "en"),
        (" ".join(t for _, t in _samples.FRENCH_CHAT), "fr"),
        ("¿Dónde está la estación? Quiero ir a la playa con mis amigos.", "es"),
        ("Ich habe heute keine Zeit, aber morgen bin ich da.", "de"),
        ("👍 🎉", "und"),
        ("xyzzy plugh", "und"),
    ],
)
def test_language_detection(text: str, language: str) -> None:
    assert _text.detect_language(text) == language


# --- Statelessness ----------------------------------------------------------------------------


def files_changed_since(start: float, roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        for directory, _dirs, names in os.walk(root):
            for name in names:
                path = Path(directory, name)
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if path.is_file() and not path.is_symlink() and info.st_mtime >= start:
                    yield path


def strings_in(value: object, depth: int = 0) -> Iterator[str]:
    """Every string reachable from a module global (containers and dataclass fields)."""
    if depth > 6:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key, depth + 1)
            yield from strings_in(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings_in(item, depth + 1)
    elif isinstance(value, re.Pattern):
        yield value.pattern


async def test_nothing_is_kept_logged_or_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = f"zebra-quartz-7781-{secrets.token_hex(6)}"
    start = time.time() - 1  # mtime granularity
    caplog.set_level(logging.DEBUG)  # root: every logger propagates here
    app = create_app()
    runner = web.AppRunner(app)  # default access log on: it must not see content either
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        await send_secret_everywhere(LOOPBACK, port, secret)
    finally:
        await runner.cleanup()

    assert caplog.records, "the log capture saw nothing; the check below would be empty"
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in repr(record.__dict__)
    encoded = secret.encode()
    roots = [Path.cwd(), Path(tempfile.gettempdir())]
    for path in files_changed_since(start, roots):
        try:
            content = path.read_bytes()
        except OSError:
            continue
        assert encoded not in content, path
    assert len(app) == 0  # no state stored on the application
    modules = [m for n, m in sorted(sys.modules.items()) if n.startswith("gateway.processing")]
    assert processing in modules and _text in modules and len(modules) >= 8
    for module in modules:
        for name, value in vars(module).items():
            assert all(secret not in s for s in strings_in(value)), name
            assert not hasattr(value, "cache_info"), name  # no functools cache on content
    assert all(secret not in repr(key) for key in getattr(re, "_cache", {}))


async def send_secret_everywhere(host: str, port: int, secret: str) -> None:
    import aiohttp

    conversation = (
        ("Alice", f"The code is {secret}, keep it for Saturday at 9h."),
        (secret, f"Got it: {secret}. I'll book the table for 7 tomorrow."),
        ("Chloé", f"Je note {secret} pour samedi, on se retrouve à 9h ?"),
    )
    base = f"http://{host}:{port}"
    async with aiohttp.ClientSession() as session:
        for path in ("/v1/summarize", "/v1/summarize/stream"):
            async with session.post(base + path, json=chat(conversation, 3)) as response:
                assert response.status == 200
                assert secret in (await response.text())  # it was really processed
        for style in sorted(_text.STYLES):
            draft = {"text": f"basically i can't share {secret}  now", "style": style}
            async with session.post(base + "/v1/rewrite", json=draft) as response:
                assert response.status == 200
        bad_bodies = [
            f'{{"messages": "{secret}"'.encode(),
            json.dumps({"text": secret, "style": secret}).encode(),
            json.dumps(chat(((secret, "x" * 4001),))).encode(),
            secret.encode() * 30_000,  # 413
        ]
        for body in bad_bodies:
            async with session.post(base + "/v1/summarize", data=body) as response:
                assert response.status in (400, 413)
                assert secret not in await response.text()
