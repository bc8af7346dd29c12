"""Tokens, sentences and language: what summaries and rewrites both read text with."""

from __future__ import annotations

import re
from collections import Counter
from typing import Final

from gateway.processing.text import data

__all__ = [
    "LEADING_MARKER",
    "SPACES",
    "TOKEN",
    "UNDETERMINED",
    "detect_language",
    "drop_elision",
    "split_sentences",
    "tidy_quote",
    "tokens",
    "word_before",
]

UNDETERMINED: Final = "und"  # BCP 47 "undetermined language"

TOKEN = re.compile(
    r"[$€£]?\d+(?:[.,:h]\d+)*(?:\s?(?:am|pm)|h|€|%|k)?(?![^\W_])"  # 7:30pm, $40, 9h30, 12%
    r"|[^\W\d_]+(?:['\u2019][^\W\d_]+)*(?:-[^\W\d_]+)*"  # words, l'équipe, don't, après-midi
    r"|\d+[^\W_]*",  # 12th, 4e
    re.IGNORECASE,
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”»)\]]*(?=\s|$)|\n+")
_WORD_BEFORE = re.compile(r"([^\W\d_][\w.]*)$")
LEADING_MARKER = re.compile(
    r"^(?:(?:"
    + "|".join(re.escape(m) for m in sorted(data.LEADING_MARKERS, key=len, reverse=True))
    + r")(?![^\W_])[\s,.!:…-]*){1,2}",
    re.IGNORECASE,
)
SPACES = re.compile(r"\s+")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens with typographic apostrophes normalised."""
    return [t.lower().replace("\u2019", "'") for t in TOKEN.findall(text)]


def drop_elision(token: str) -> str:
    head, sep, tail = token.partition("'")
    return tail if sep and head in data.ELISIONS and tail else token


def detect_language(text: str) -> str:
    """ISO 639-1 code of the language whose stop words cover most tokens, or "und"."""
    words = Counter(tokens(text))
    if not words:
        return UNDETERMINED
    hits = {
        lang: sum(n for word, n in words.items() if word in stop_words)
        for lang, stop_words in data.STOP_WORDS.items()
    }
    # Elided articles and pronouns (l'équipe, j'ai) are French.
    hits["fr"] += sum(n for word, n in words.items() if word.partition("'")[0] in data.ELISIONS
                      and "'" in word)
    best = max(hits, key=lambda lang: hits[lang])
    if hits[best] < 2 and hits[best] / words.total() < 0.2:
        return UNDETERMINED
    return best


def split_sentences(text: str) -> list[str]:
    """Sentences of one message: split after . ! ? … and at line breaks, not after abbreviations."""
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if _ends_with_abbreviation(text, match):
            continue
        piece = text[start : match.end()].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _ends_with_abbreviation(text: str, match: re.Match[str]) -> bool:
    if match.group(0) != ".":
        return False
    before = word_before(text, match.start())
    if before is None:
        return False
    word = before.group(1)
    return word.lower() in data.ABBREVIATIONS or (len(word) == 1 and word.isupper())


def word_before(text: str, end: int) -> re.Match[str] | None:
    # A bounded window keeps this linear: searching from 0 would rescan the whole prefix.
    return _WORD_BEFORE.search(text, max(0, end - 32), end)


def tidy_quote(sentence: str) -> str:
    """A sentence as quoted in a summary: one-line, without a leading "ok so" / "du coup"."""
    sentence = SPACES.sub(" ", sentence).strip()
    trimmed = LEADING_MARKER.sub("", sentence, count=1)
    if trimmed != sentence and len(trimmed.split()) >= 3:
        sentence = trimmed[0].upper() + trimmed[1:]
    return sentence
