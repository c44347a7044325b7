"""Whether a finding mentioned in free text is asserted, negated or merely hedged.

A small NegEx-style scope: a negation cue earlier in the same clause ("No significant
canal or foraminal stenosis at L2-3 and L3-4") or a post-cue right after the term
("cauda equina was ruled out") negates it. Clauses end at sentence punctuation and at
"but"/"however", so "no stenosis at L2-3 but severe stenosis at L4-5" negates only the first.
"""
from __future__ import annotations

import re
from functools import lru_cache

from terminology import valuesets

_CLAUSE_END = re.compile(r"[.;:!?\n]|\bbut\b|\bhowever\b|\balthough\b|\bexcept\b", re.IGNORECASE)
_PRE_CUES = re.compile(
    r"\b(?:no|not|without|denies|denied|negative for|free of|absence of|absent|"
    r"no evidence of|no sign of|no signs of|rule out|r/o|ruled out|resolved|unremarkable for|"
    r"neither|nor|non)\b",
    re.IGNORECASE,
)
_POST_CUES = re.compile(
    r"^\W{0,3}(?:\w+\W+){0,3}?(?:is |was |were |has been |have been )?"
    r"(?:ruled out|absent|not seen|not present|not identified|not demonstrated|negative|resolved|excluded)\b",
    re.IGNORECASE,
)


def clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = 0
    for match in _CLAUSE_END.finditer(text, 0, start):
        left = match.end()
    right_match = _CLAUSE_END.search(text, end)
    right = right_match.start() if right_match else len(text)
    return left, right


def is_negated(text: str, start: int, end: int) -> bool:
    left, right = clause_bounds(text, start, end)
    if _PRE_CUES.search(text, left, start):
        return True
    return bool(_POST_CUES.match(text[end:right]))


@lru_cache(maxsize=4096)
def asserted_valueset_mentions(text: str) -> tuple[tuple[str, int, int], ...]:
    """(value set, start, end) of every value-set phrase in text that is not negated, in
    valuesets.find_text order. Cached: red flags and diagnoses read the same code texts, and
    charts repeat the same problem names and notes."""
    return tuple((name, start, end) for name, start, end in valuesets.find_text(text)
                 if not is_negated(text, start, end))
