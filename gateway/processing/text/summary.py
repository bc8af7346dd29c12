"""Chat summaries: the sentences that carry a conversation, and its highlights."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.processing.text import data
from gateway.processing.text.words import (
    SPACES,
    TOKEN,
    detect_language,
    drop_elision,
    split_sentences,
    tidy_quote,
)

__all__ = ["ChatAnalysis", "ChatMessage", "ChatSummary", "Picked", "summarize_chat"]

_QUESTION_END = re.compile(r"\?[^\w?]*$")  # [^?]: linear on "?-?-?-..."
_TIME_OR_DATE = re.compile(
    r"(?<![\w.])(?:\d{1,2}(?::\d{2})?\s?(?:am|pm)|\d{1,2}(?::\d{2}|h\d{0,2})"
    r"|\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?)"
    r"(?![\w])",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_ALL_STOP_WORDS: Final = frozenset().union(*data.STOP_WORDS.values())


def _term(token: str, stop_words: frozenset[str]) -> str | None:
    """The content term for a token, or None for stop words and chat noise."""
    token = drop_elision(token)
    if token in stop_words or token in data.CHAT_NOISE or len(token) < 2:
        return None
    if token.endswith("'s"):
        token = token[:-2]
    if token.isalpha() and len(token) > 4 and token[-1] == "s" and token[-2] != "s":
        token = token[:-1]  # light plural folding: tables/table, cartons/carton
    return token


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a group chat."""

    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class Picked:
    """One passage chosen for a summary (a sentence, or a short lead-in and its sentence)."""

    sender: str
    sentence: str
    position: int  # chronological index of the passage in the conversation


@dataclass(frozen=True, slots=True)
class _Piece:
    """One sentence with its content terms and the features that make it informative."""

    text: str
    terms: frozenset[str]
    pairs: frozenset[str]  # adjacent content terms ("pottery class"), kept if repeated
    surface: tuple[tuple[str, str], ...]  # (term, as written), for highlights
    dated: bool
    numeric: bool
    decision: bool
    question: bool

    @property
    def is_noise(self) -> bool:  # "Perfect.", "lol", "What time?"
        return len(self.terms) < 2 and not (self.dated or self.numeric or self.decision)

    @property
    def is_lead_in(self) -> bool:  # "Let's say 7:30pm." or a question that the next line details
        return self.question or len(self.terms) < 3


@dataclass(frozen=True, slots=True)
class _Passage:
    """The unit a summary quotes: one sentence, or a lead-in joined to the sentence after it."""

    position: int
    sender: str
    pieces: tuple[_Piece, ...]

    @property
    def text(self) -> str:
        return " ".join(p.text for p in self.pieces)

    def has(self, feature: str) -> bool:
        return any(getattr(p, feature) for p in self.pieces)


@dataclass(frozen=True, slots=True)
class ChatSummary:
    """An extractive summary: chosen passages in chronological order, key terms, language."""

    picked: tuple[Picked, ...]
    highlights: tuple[str, ...]
    language: str

    def render(self) -> str:
        """One line per speaker turn: consecutive passages of one sender share a line."""
        lines: list[str] = []
        previous: str | None = None
        for pick in self.picked:
            if pick.sender == previous:
                lines[-1] += " " + pick.sentence
            else:
                lines.append(f"{pick.sender}: {pick.sentence}")
            previous = pick.sender
        return "\n".join(lines)


class ChatAnalysis:
    """Scores every passage of a conversation; picks passages and highlights on demand."""

    def __init__(self, messages: Sequence[ChatMessage]) -> None:
        self.language = detect_language(" ".join(m.text for m in messages))
        self._passages = _parse_chat(messages, self.language)
        pair_counts = Counter(pair for p in self._passages for pair in _pairs(p))
        repeated = {pair for pair, n in pair_counts.items() if n > 1}
        self._terms = [
            frozenset().union(*(piece.terms for piece in p.pieces)) | (_pairs(p) & repeated)
            for p in self._passages
        ]
        self._weights = _term_weights(self._passages, self._terms)
        self._scores = _score_passages(self._passages, self._terms, self._weights)

    def selected(self, max_sentences: int) -> Iterator[Picked]:
        """The best non-redundant passages, yielded in chronological order."""
        chosen: list[int] = []
        per_sender: Counter[str] = Counter()
        candidates = [i for i, score in enumerate(self._scores) if score > 0]

        def value(index: int) -> float:  # let more people speak
            return self._scores[index] * 0.8 ** per_sender[self._passages[index].sender]

        while candidates and len(chosen) < max_sentences:
            # Maximal marginal relevance: skip near-duplicates of what is already chosen...
            best = max(candidates, key=value)
            # ...and of two near-duplicates ("on se retrouve à 9h ?" / "oui, 9h"), quote the
            # fuller one unless it is clearly worse.
            fuller = [
                i
                for i in candidates
                if len(self._terms[i]) > len(self._terms[best])
                and _jaccard(self._terms[i], self._terms[best]) >= 0.5
                and value(i) >= 0.85 * value(best)
            ]
            best = max(fuller, key=value, default=best)
            candidates.remove(best)
            if all(_jaccard(self._terms[best], self._terms[i]) < 0.5 for i in chosen):
                chosen.append(best)
                per_sender[self._passages[best].sender] += 1
        for index in sorted(chosen):
            passage = self._passages[index]
            yield Picked(passage.sender, tidy_quote(passage.text), passage.position)

    def highlights(self, picked: Sequence[Picked], limit: int = 6) -> list[str]:
        """Key terms: repeated or shared by several senders, and dates/amounts of the summary."""
        in_summary = {p.position for p in picked}
        bonus: dict[str, float] = defaultdict(float)
        for index, terms in enumerate(self._terms):
            if index in in_summary:
                for term in terms:
                    bonus[term] = max(bonus[term], _highlight_bonus(term))
        top = max(self._weights.values(), default=1.0)
        ranked = sorted(
            (t for t, w in self._weights.items() if w > 1 or bonus[t] >= 0.4),
            key=lambda t: -(self._weights[t] / top + bonus[t] + 0.3 * (" " in t)),
        )
        chosen: list[str] = []
        for term in ranked:
            if not any(term in other.split() or other in term.split() for other in chosen):
                chosen.append(term)
            if len(chosen) == limit:
                break
        spellings = self._spellings(set(chosen))
        return [_display_form(spellings[t]) for t in chosen]

    def _spellings(self, wanted: set[str]) -> dict[str, Counter[str]]:
        spellings: dict[str, Counter[str]] = defaultdict(Counter)
        for passage in self._passages:
            for piece in passage.pieces:
                for (term, written), (next_term, next_written) in zip(
                    piece.surface, (*piece.surface[1:], ("", "")), strict=False
                ):
                    if term in wanted:
                        spellings[term][written] += 1
                    if f"{term} {next_term}" in wanted:
                        spellings[f"{term} {next_term}"][f"{written} {next_written}"] += 1
        return spellings


def summarize_chat(messages: Sequence[ChatMessage], max_sentences: int) -> ChatSummary:
    """Extractive summary of a group chat with at most ``max_sentences`` passages."""
    analysis = ChatAnalysis(messages)
    picked = tuple(analysis.selected(max_sentences))
    return ChatSummary(picked, tuple(analysis.highlights(picked)), analysis.language)


def _pairs(passage: _Passage) -> frozenset[str]:
    return frozenset().union(*(piece.pairs for piece in passage.pieces))


def _highlight_bonus(term: str) -> float:
    if _is_datelike(term):
        return 0.5
    return 0.4 if any(c.isdigit() for c in term) else 0.2


def _phrases(phrases: Iterable[str]) -> re.Pattern[str]:
    """Any of the phrases, as whole words, in a text of lower-cased tokens joined by spaces."""
    alternation = "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))
    return re.compile(rf"(?<![\w'-])(?:{alternation})(?![\w'-])")


_DECISION: Final = {lang: _phrases(group) for lang, group in data.DECISION_MARKERS.items()}
_ANY_DECISION: Final = _phrases(m for group in data.DECISION_MARKERS.values() for m in group)


def _parse_chat(messages: Sequence[ChatMessage], language: str) -> list[_Passage]:
    stop_words = data.STOP_WORDS.get(language, _ALL_STOP_WORDS) | data.WEAK_WORDS
    markers = _DECISION.get(language, _ANY_DECISION)
    passages: list[_Passage] = []
    for message in messages:
        sender = SPACES.sub(" ", message.sender).strip()
        pieces = [_analyse(text, stop_words, markers) for text in split_sentences(message.text)]
        for group in _group_pieces([p for p in pieces if not p.is_noise]):
            passages.append(_Passage(len(passages), sender, group))
    return passages


def _group_pieces(pieces: Sequence[_Piece]) -> Iterator[tuple[_Piece, ...]]:
    """Join a lead-in to the next sentence of the same message, at most two per passage."""
    index = 0
    while index < len(pieces):
        if pieces[index].is_lead_in and index + 1 < len(pieces):
            yield (pieces[index], pieces[index + 1])
            index += 2
        else:
            yield (pieces[index],)
            index += 1


def _analyse(text: str, stop_words: frozenset[str], markers: re.Pattern[str]) -> _Piece:
    surface: list[tuple[str, str]] = []
    pairs: set[str] = set()
    previous: str | None = None
    lowered: list[str] = []
    for written in TOKEN.findall(text):
        token = written.lower().replace("\u2019", "'")
        lowered.append(token)
        term = _term(token, stop_words)
        if term is not None:
            surface.append((term, drop_elision(written.replace("\u2019", "'"))))
            if previous is not None:
                pairs.add(f"{previous} {term}")
        previous = term
    terms = frozenset(term for term, _ in surface)
    return _Piece(
        text=text,
        terms=terms,
        pairs=frozenset(pairs),
        surface=tuple(surface),
        dated=any(_is_datelike(t) for t in terms) or _TIME_OR_DATE.search(text) is not None,
        numeric=_DIGIT.search(text) is not None,
        decision=markers.search(" ".join(lowered)) is not None,
        question=_QUESTION_END.search(text) is not None,
    )


def _is_datelike(term: str) -> bool:
    return term in data.WEEKDAYS_AND_MONTHS or _TIME_OR_DATE.fullmatch(term) is not None


def _term_weights(
    passages: Sequence[_Passage], terms: Sequence[frozenset[str]]
) -> dict[str, float]:
    """Frequency of each term, boosted when several people use it (a shared topic)."""
    counts: Counter[str] = Counter()
    senders: dict[str, set[str]] = defaultdict(set)
    for passage, passage_terms in zip(passages, terms, strict=True):
        counts.update(passage_terms)
        for term in passage_terms:
            senders[term].add(passage.sender.casefold())
    return {term: n * (1 + 0.5 * (len(senders[term]) - 1)) for term, n in counts.items()}


# Above this many passages the quadratic graph is skipped; term weights alone rank them.
_TEXTRANK_LIMIT: Final = 200


def _score_passages(
    passages: Sequence[_Passage], terms: Sequence[frozenset[str]], weights: dict[str, float]
) -> list[float]:
    information = [_information(t, weights) for t in terms]
    centrality = _textrank(terms) if len(passages) <= _TEXTRANK_LIMIT else information
    info_top = max(information, default=0.0) or 1.0
    central_top = max(centrality, default=0.0) or 1.0
    scores: list[float] = []
    for passage, passage_terms, info, central in zip(
        passages, terms, information, centrality, strict=True
    ):
        score = 0.55 * info / info_top + 0.45 * central / central_top
        score += 0.25 * passage.has("dated") + 0.15 * passage.has("numeric")
        score += 0.3 * passage.has("decision")
        if passage.pieces[-1].question:
            # An open question matters; an answered one is worth less than its answer.
            score = score * 0.9 if _answered(passage, passages, terms) else score + 0.2
        if passage.position == 0:
            score += 0.5  # the opening message usually sets the topic
        if len(passage_terms) < 3:
            score *= 0.5 if len(passage_terms) < 2 else 0.8  # short reactions rarely inform
        if len(passage.text.split()) > 40:
            score *= 0.8  # walls of text read badly in a summary
        scores.append(score if passage_terms else 0.0)
    return scores


def _answered(
    question: _Passage, passages: Sequence[_Passage], terms: Sequence[frozenset[str]]
) -> bool:
    """Whether someone else replied within the next few passages, on the same terms."""
    asked = terms[question.position]
    later = range(question.position + 1, min(question.position + 6, len(passages)))
    return any(
        passages[i].sender != question.sender and asked & terms[i] for i in later
    )


def _information(terms: frozenset[str], weights: dict[str, float]) -> float:
    if not terms:
        return 0.0
    return sum(weights[t] for t in terms) / math.sqrt(len(terms))


def _textrank(term_sets: Sequence[frozenset[str]], damping: float = 0.85) -> list[float]:
    """TextRank (Mihalcea & Tarau 2004): PageRank over sentence-overlap similarity."""
    count = len(term_sets)
    edges: list[dict[int, float]] = [{} for _ in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            common = len(term_sets[i] & term_sets[j])
            if common:
                norm = math.log(len(term_sets[i]) + 1) + math.log(len(term_sets[j]) + 1)
                edges[i][j] = edges[j][i] = common / norm
    out_weight = [sum(e.values()) for e in edges]
    # incoming[i]: (j, share of j's rank that flows to i)
    incoming = [[(j, w / out_weight[j]) for j, w in edges[i].items()] for i in range(count)]
    rank = [1.0] * count
    for _ in range(50):
        previous = rank
        rank = [
            (1 - damping) + damping * sum(previous[j] * share for j, share in incoming[i])
            for i in range(count)
        ]
        if max((abs(a - b) for a, b in zip(rank, previous, strict=True)), default=0) < 1e-4:
            break
    return rank


def _jaccard(left: frozenset[str], right: frozenset[str]) -> float:
    union = len(left | right)
    return len(left & right) / union if union else 1.0


def _display_form(written: Counter[str]) -> str:
    """The most common spelling of a term; capitalised forms win ties (names, places)."""
    return max(written.items(), key=lambda item: (item[1], item[0][:1].isupper()))[0]
