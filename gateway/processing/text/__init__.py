"""Text processing for the private-processing backend: chat summaries and rule-based rewrites.

Pure functions over the input only: no I/O, no logging, and no module-level state that
depends on content (the only module-level objects are compiled patterns built from the
fixed word lists in ``data``). ``words`` reads text (tokens, sentences, language),
``summary`` summarizes chats, ``rewrite`` rewrites drafts.
"""

from __future__ import annotations

from gateway.processing.text.rewrite import STYLES, Change, Rewrite, rewrite
from gateway.processing.text.summary import (
    ChatAnalysis,
    ChatMessage,
    ChatSummary,
    Picked,
    summarize_chat,
)
from gateway.processing.text.words import detect_language, split_sentences, tokens

__all__ = [
    "STYLES",
    "ChatAnalysis",
    "ChatMessage",
    "ChatSummary",
    "Change",
    "Picked",
    "Rewrite",
    "detect_language",
    "rewrite",
    "split_sentences",
    "summarize_chat",
    "tokens",
]
