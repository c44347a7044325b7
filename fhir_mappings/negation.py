"""Whether a mention in free text is asserted: a thin front over the reader (fhir_mappings.text),
kept for callers that only ask "negated?" or want the asserted value-set mentions."""
from __future__ import annotations

from functools import lru_cache

from terminology import valuesets

from .text import assertion_of, clause_bounds, document

__all__ = ["asserted_valueset_mentions", "clause_bounds", "is_negated", "valueset_mentions"]


def is_negated(text: str, start: int, end: int) -> bool:
    return assertion_of(text, start, end) == "negated"


@lru_cache(maxsize=4096)
def valueset_mentions(text: str) -> tuple[tuple[str, int, int, str], ...]:
    """(value set, start, end, assertion) of every value-set phrase in text, in valuesets.find_text order.
    Cached: red flags and diagnoses read the same code texts, and charts repeat notes."""
    hits = valuesets.find_text(text)
    if not hits:
        return ()
    read = document(text)
    return tuple((name, start, end, read.assertion(start, end)) for name, start, end in hits)


@lru_cache(maxsize=4096)
def asserted_valueset_mentions(text: str) -> tuple[tuple[str, int, int], ...]:
    """(value set, start, end) of every value-set phrase the text asserts as present: not negated,
    hedged, planned, historical, a relative's, or counselling."""
    return tuple((name, start, end) for name, start, end, assertion in valueset_mentions(text) if assertion == "present")
