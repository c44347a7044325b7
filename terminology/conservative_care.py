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

import ahocorasick

from terminology.phrases import compile_phrases
from terminology.valuesets import PhraseGate


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
    """The one phrase compiler (terminology.phrases); abbreviations are matched case-sensitively."""
    return compile_phrases(phrases, case_sensitive=case_sensitive)


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


@cache
def care_gate() -> PhraseGate:
    """Which kinds' phrases could occur in a text (a cheap superset)."""
    kinds = _load("conservative_care.json")["kinds"]
    return PhraseGate({name: [p for p in spec["text"] if p] for name, spec in kinds.items()})


@cache
def _abbreviation_words() -> tuple[tuple[str, str], ...]:
    """(kind, word): a capital abbreviation matches only where its (longest) word is written as is."""
    kinds = _load("conservative_care.json")["kinds"]
    return tuple((name, max(a.upper().split(" "), key=len)) for name, spec in kinds.items()
                 for a in spec["abbreviations"] if a)


@cache
def _abbreviation_automaton():
    """Every abbreviation word, each with the kinds it stands for: one pass over a text finds them all."""
    automaton = ahocorasick.Automaton()
    kinds_of: dict[str, set[str]] = {}
    for name, word in _abbreviation_words():
        kinds_of.setdefault(word, set()).add(name)
    for word, kinds in kinds_of.items():
        automaton.add_word(word, frozenset(kinds))
    automaton.make_automaton()
    return automaton if kinds_of else None


def abbreviated_kinds(text: str) -> set[str]:
    """Kinds whose capital abbreviations could occur in text (a cheap superset: the word stands in it)."""
    automaton = _abbreviation_automaton()
    found: set[str] = set()
    if automaton is not None:
        for _, kinds in automaton.iter(text):
            found |= kinds
    return found


def care_kinds_in_text(text: str) -> list[tuple[str, re.Match]]:
    """(kind, match) for every mention of non-operative care in text, in order."""
    phrased = care_gate().candidates(text)
    abbreviated = abbreviated_kinds(text)
    if not phrased and not abbreviated:
        return []
    found = []
    for kind in care_kinds():
        if kind.pattern is not None and kind.name in phrased:
            found.extend((kind.name, m) for m in kind.pattern.finditer(text))
        if kind.abbreviation_pattern is not None and kind.name in abbreviated:
            found.extend((kind.name, m) for m in kind.abbreviation_pattern.finditer(text))
    found.sort(key=lambda item: item[1].start())
    return found


@cache
def _procedure_patterns() -> tuple[tuple[str, re.Pattern], ...]:
    classes = _load("procedure_text.json")["classes"]
    return tuple((cls, phrase_pattern(phrases)) for cls, phrases in classes.items())


@cache
def procedure_gate() -> PhraseGate:
    """Which procedure classes' phrases could occur in a text (a cheap superset)."""
    classes = _load("procedure_text.json")["classes"]
    return PhraseGate({cls: [p for p in phrases if p] for cls, phrases in classes.items()})


def procedure_classes_in_text(text: str) -> list[tuple[str, re.Match]]:
    """(procedure class, match) for every procedure phrase, longest phrase winning where two overlap."""
    candidates = procedure_gate().candidates(text)
    if not candidates:
        return []
    hits = []
    for cls, pattern in _procedure_patterns():
        if cls in candidates:
            hits.extend((cls, m) for m in pattern.finditer(text))
    hits.sort(key=lambda h: (h[1].start(), -(h[1].end() - h[1].start())))
    kept, last_end = [], -1
    for cls, match in hits:
        if match.start() >= last_end:
            kept.append((cls, match))
            last_end = match.end()
    return kept
