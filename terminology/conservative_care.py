"""Which codes and phrases mean physical therapy, injections, medication trials or other
non-operative care, and which phrases name a spine procedure class.

Matching is a set lookup (codes) or one compiled regex per kind (text), built once.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class CareKind:
    name: str
    title: str
    cpt: frozenset[str]
    snomed_unverified: frozenset[str]
    pattern: re.Pattern | None
    abbreviation_pattern: re.Pattern | None


def _load(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath("data", name).read_text("utf-8"))


def phrase_pattern(phrases, *, case_sensitive: bool = False) -> re.Pattern | None:
    """One alternation, longest phrase first, bounded so 'pt' never matches inside 'opt'."""
    phrases = sorted({p for p in phrases if p}, key=len, reverse=True)
    if not phrases:
        return None
    body = "|".join(re.escape(p).replace(r"\ ", r"[\s\-]+") for p in phrases)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])", 0 if case_sensitive else re.IGNORECASE)


@cache
def care_kinds() -> tuple[CareKind, ...]:
    kinds = []
    for name, spec in _load("conservative_care.json")["kinds"].items():
        kinds.append(CareKind(
            name=name,
            title=spec["title"],
            cpt=frozenset(c["code"] for c in spec["cpt"]),
            snomed_unverified=frozenset(c["code"] for c in spec["snomed"] if not c["verified"]),
            pattern=phrase_pattern(spec["text"]),
            # Abbreviations such as "PT" are matched only in capitals: "pt" in lower case is
            # too often "patient" in clinical notes.
            abbreviation_pattern=phrase_pattern([a.upper() for a in spec["abbreviations"]], case_sensitive=True),
        ))
    return tuple(kinds)


def care_kind_of_cpt(code: str) -> str | None:
    code = code.strip().lstrip("+")
    for kind in care_kinds():
        if code in kind.cpt:
            return kind.name
    return None


def care_kinds_in_text(text: str) -> list[tuple[str, re.Match]]:
    """(kind, match) for every mention of non-operative care in text, in order."""
    found = []
    for kind in care_kinds():
        for pattern in (kind.pattern, kind.abbreviation_pattern):
            if pattern is not None:
                found.extend((kind.name, m) for m in pattern.finditer(text))
    found.sort(key=lambda item: item[1].start())
    return found


@cache
def _procedure_patterns() -> tuple[tuple[str, re.Pattern], ...]:
    classes = _load("procedure_text.json")["classes"]
    return tuple((cls, phrase_pattern(phrases)) for cls, phrases in classes.items())


def procedure_classes_in_text(text: str) -> list[tuple[str, re.Match]]:
    """(procedure class, match) for every procedure phrase, longest phrase winning where two overlap."""
    hits = []
    for cls, pattern in _procedure_patterns():
        hits.extend((cls, m) for m in pattern.finditer(text))
    hits.sort(key=lambda h: (h[1].start(), -(h[1].end() - h[1].start())))
    kept, last_end = [], -1
    for cls, match in hits:
        if match.start() >= last_end:
            kept.append((cls, match))
            last_end = match.end()
    return kept
