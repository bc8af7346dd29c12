"""Rule-based rewrites: concise, formal or friendly, with the list of changes made."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.processing.text import data
from gateway.processing.text.words import SPACES, detect_language, word_before

__all__ = ["STYLES", "Change", "Rewrite", "rewrite"]

STYLES: Final[frozenset[str]] = frozenset({"concise", "formal", "friendly"})


@dataclass(frozen=True, slots=True)
class Change:
    """One edit made by a rewrite rule."""

    rule: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A rewritten text, the edits in the order the rules made them, the detected language."""

    text: str
    changes: tuple[Change, ...]
    language: str


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    replace: Callable[[re.Match[str]], str]


def _apply(rule: _Rule, text: str, changes: list[Change]) -> str:
    def substitute(match: re.Match[str]) -> str:
        before, after = match.group(0), rule.replace(match)
        if after != before:
            changes.append(_reported(rule.name, before, after))
        return after

    return rule.pattern.sub(substitute, text)


def _reported(rule: str, before: str, after: str) -> Change:
    """A change as shown to the user: without the blanks both sides share ("gonna " -> ...)."""
    while before.strip() and after and before[-1] == after[-1] and before[-1] in " \t":
        before, after = before[:-1], after[:-1]
    if not after and before.strip():
        before = before.strip()
    word = before.lstrip(" \t\n.!?")  # ". it" -> ". It" is reported as "it" -> "It"
    cut = len(before) - len(word)
    if cut and any(c.isalpha() for c in word) and after[:cut] == before[:cut]:
        before, after = word, after[cut:]
    return Change(rule, before, after)


def _match_case(source: str, replacement: str) -> str:
    if not replacement or not source[:1].isupper():
        return replacement
    if len(source) > 1 and source.isupper() and " " not in replacement:
        return replacement.upper()
    return replacement[0].upper() + replacement[1:]


def _phrase_pattern(phrase: str) -> str:
    words = (re.escape(w).replace("'", "['\u2019]") for w in phrase.split())
    return r"\s+".join(words)


def _normal_key(text: str) -> str:
    return SPACES.sub(" ", text.lower().replace("\u2019", "'"))


def _table_rule(
    name: str, table: Sequence[tuple[str, str]], *, before_word: bool = False
) -> _Rule:
    """Whole-phrase replacements; removals also take the following blanks and comma."""
    mapping = {_normal_key(k): v for k, v in table}
    alternation = "|".join(_phrase_pattern(k) for k in sorted(mapping, key=len, reverse=True))
    # before_word: only when another word follows ("it is late", not "what it is.").
    tail = r"(?=[ \t]+[^\W_])" if before_word else r"(?![\w'\u2019-])"
    pattern = re.compile(rf"(?<![\w'\u2019-])(?:{alternation}){tail}(?:(?<=[\w'\u2019]),?[ \t]*)?",
                         re.IGNORECASE)

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        core = found.rstrip(", \t")
        replacement = mapping[_normal_key(core)]
        if not replacement:
            return ""
        return _match_case(core, replacement) + found[len(core) :]

    return _Rule(name, pattern, replace)


def _filler_rule(fillers: Sequence[str]) -> _Rule:
    plain = sorted((f for f in fillers if not f.endswith(",")), key=len, reverse=True)
    with_comma = sorted((f[:-1] for f in fillers if f.endswith(",")), key=len, reverse=True)
    alternation = "|".join(
        [rf"(?:{_phrase_pattern(f)})(?![\w'\u2019-]),?" for f in plain]
        + [rf"(?:{_phrase_pattern(f)}),(?!\S)" for f in with_comma]
    )
    # Keep "very much", "not really": dropping the filler there changes the meaning.
    pattern = re.compile(
        rf"(?<![\w'\u2019-])(?<!not )(?:{alternation})(?!\s+much\b)[ \t]*", re.IGNORECASE
    )
    return _Rule("filler_word", pattern, lambda _match: "")


def _contraction_expansion() -> _Rule:
    base = _table_rule("contraction_expansion", data.CONTRACTIONS)
    perfect = re.compile(r"\s+(?:been|got|had|better)\b", re.IGNORECASE)

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        core = found.rstrip(", \t")
        key = _normal_key(core)
        # "it's been" is "it has been"; "I'd better" is "I had better".
        if key.endswith(("'s", "'d")) and perfect.match(match.string, match.start() + len(core)):
            verb = "has" if key.endswith("'s") else "had"
            subject = "I" if key == "i'd" else core[:-2]
            return f"{subject} {verb}{found[len(core):]}"
        return base.replace(match)

    return _Rule(base.name, base.pattern, replace)


def _contraction_use() -> _Rule:
    # Not "let us" (let us know) nor "we have" (we have a car): no contraction there.
    reverse = [
        (long, short)
        for short, long in data.CONTRACTIONS
        if long.lower() != "let us" and not short.endswith("'ve")
    ]
    return _table_rule("contraction_use", reverse, before_word=True)


def _capitalise(match: re.Match[str]) -> str:
    prefix, word = match.group(1), match.group(2)
    start = match.start()
    if prefix.startswith(".") and start > 0 and match.string[start - 1] == ".":
        return match.group(0)  # after an ellipsis the sentence goes on
    before = word_before(match.string, start)
    if prefix.startswith(".") and before and before.group(1).lower() in data.ABBREVIATIONS:
        return match.group(0)
    dotted = re.match(r"\.\w", match.string[match.end() : match.end() + 2]) is not None
    if not word[0].islower() or any(c.isupper() or c.isdigit() for c in word) or dotted:
        return match.group(0)  # iPhone, e.g., a code or a URL
    return prefix + word[0].upper() + word[1:]


def _rule(name: str, pattern: str, replace: str | Callable[[re.Match[str]], str],
          flags: int = 0) -> _Rule:
    compiled = re.compile(pattern, flags)
    if isinstance(replace, str):
        template = replace
        return _Rule(name, compiled, lambda match: match.expand(template))
    return _Rule(name, compiled, replace)


_COMMON_RULES: Final = (
    _rule("trailing_space", r"(?<![ \t])[ \t]+(?=\n|$)", ""),
    _rule("double_space", r"(?<=\S)[ \t]{2,}(?=\S)", " "),
    _rule("orphan_punctuation", r"(?<=\w)[ \t]*,[ \t]*(?=[.!?;:,])|^[ \t]*[,;][ \t]*", ""),
    _rule("misplaced_comma", r"(?<=\w)[ \t]+([,;])(?=[^\W\d_])", r"\1 "),  # "ok ,so"
    _rule("space_after_punctuation", r"(?<=[^\W\d_])([,;])(?=[^\W\d_])", r"\1 "),
    _rule("space_after_punctuation", r"(?<=[a-z]{2})([.!?])(?=[A-Z][a-z])", r"\1 "),
    _rule("repeated_word", r"(?<![\w'\u2019-])([^\W\d_]+)(?:\s+\1)+(?![\w'\u2019-])",
          lambda m: m.group(0) if m.group(1).lower() in data.ALLOWED_REPEATS else m.group(1),
          re.IGNORECASE),
    _rule(
        "capitalisation", r"(^[ \t]*|[.!?][ \t]+|\n[ \t]*)([^\W\d_][\w'\u2019@/-]*)", _capitalise
    ),
)
_ENGLISH_RULES: Final = (
    _rule("space_before_punctuation", r"(?<=\w)[ \t]+(?=[,.;:!?](?![\w)(]))", ""),
    _rule(
        "proper_noun_capitalisation",
        r"(?<![\w'\u2019-])(?:"
        + "|".join(sorted(data.ENGLISH_CALENDAR_NAMES))
        + r")(?![\w'\u2019-])",
        lambda m: m.group(0).capitalize(),
    ),
    _rule("pronoun_i", r"(?<![\w'\u2019.-])i(?=['\u2019](?:m|ve|ll|d)\b|[^\w'\u2019.-]|$)", "I"),
)
_FRENCH_RULES: Final = (
    _rule("space_before_punctuation", r"(?<=\w)[ \t]+(?=[,.](?!\w))", ""),
    # French typography: a no-break space before ; : ! ? (not in 10:30 or https://).
    _rule("french_spacing", r"(?<=[\w»)])([;!?]|:(?![\d/]))", "\u00a0\\1"),
)
_REPEATED_PUNCTUATION: Final = _rule(
    "repeated_punctuation", r"([!?])\1+|(?<=\.\.\.)\.+|(?<=\w)(\.)\.(?!\.)", r"\1\2"
)
_FINAL_PUNCTUATION: Final = _rule("final_punctuation", r"(?<=[^\W_])[ \t]*\Z", ".")

_STYLE_RULES: Final[dict[tuple[str, str], tuple[_Rule, ...]]] = {
    ("concise", "en"): (
        _table_rule("redundant_phrase", data.REDUNDANT_PHRASES["en"]),
        _filler_rule(data.FILLER_WORDS["en"]),
        _REPEATED_PUNCTUATION,
    ),
    ("concise", "fr"): (
        _table_rule("redundant_phrase", data.REDUNDANT_PHRASES["fr"]),
        _filler_rule(data.FILLER_WORDS["fr"]),
        _REPEATED_PUNCTUATION,
    ),
    ("formal", "en"): (
        _table_rule("informal_word", data.INFORMAL_WORDS["en"]),
        _contraction_expansion(),
        _REPEATED_PUNCTUATION,
    ),
    ("formal", "fr"): (
        _table_rule("informal_word", data.INFORMAL_WORDS["fr"]),
        _REPEATED_PUNCTUATION,
    ),
    ("friendly", "en"): (_contraction_use(),),
    ("friendly", "fr"): (),
}


def rewrite(text: str, style: str) -> Rewrite:
    """Rule-based writing help; every change is reported with the rule that made it."""
    language = detect_language(text)
    rule_language = "fr" if language == "fr" else "en"
    changes: list[Change] = []
    rules = (
        *_STYLE_RULES[(style, rule_language)],
        *(_FRENCH_RULES if rule_language == "fr" else _ENGLISH_RULES),
        *_COMMON_RULES,
    )
    for rule in rules:
        text = _apply(rule, text, changes)
    if style != "friendly" and len(text.split()) >= 3:
        text = _apply(_FINAL_PUNCTUATION, text, changes)
    return Rewrite(text, tuple(changes), language)
