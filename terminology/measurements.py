"""Measurement concepts (alignment angles, dynamic instability, SI tests, pain and ODI scores).

Text matching is deliberately conservative for ambiguous abbreviations: "PT" is far more often
physical therapy than pelvic tilt, so abbreviations count only when a number in the measurement's
unit follows them ("PT 25°", not "PT 2x/week").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

from terminology.systems import LOINC, UnknownCodeSystem, resolve_system
from terminology.valuesets import PhraseGate, compile_phrases, normalize_text

__all__ = [
    "Measurement", "Phrase", "SiTest", "UnknownMeasurement", "all_names", "find_si_tests", "get", "match_coding",
    "match_si_tests", "match_text", "si_test_gate",
]


class UnknownMeasurement(KeyError):
    """No measurement concept has this name."""


@dataclass(frozen=True)
class Phrase:
    text: str
    abbreviation: bool = False
    requires_number: bool = False


@dataclass(frozen=True)
class SiTest:
    key: str
    role: str  # "provocation" counts toward the >= 3 positive tests; "localization" (Fortin) is a separate criterion
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class Measurement:
    name: str
    title: str
    unit: str
    loinc: frozenset[str]
    phrases: tuple[Phrase, ...]
    value_range: tuple[float | None, float | None] | None = None
    tests: tuple[SiTest, ...] = ()


_NUMBER: Final = r"[+\-\u2212]?\d+(?:\.\d+)?(?:\s*(?:-|to)\s*\d+(?:\.\d+)?)?"
_UNITS: Final = {
    "deg": r"\s*(?:°|º|˚|deg(?:ree)?s?(?![a-z]))",
    "cm": r"\s*(?:cm|centimet(?:er|re)s?)(?![a-z])",
    "mm": r"\s*(?:mm|millimet(?:er|re)s?)(?![a-z])",
    "%": r"\s*(?:%|percent(?![a-z])|per\s+cent(?![a-z]))",
    "score": r"\s*(?:/\s*10|out\s+of\s+10)(?![0-9])",
    "count": r"(?![0-9.a-z])",
}
# Filler allowed between a name and its value: "PT: 25°", "PI of 51 degrees", "SVA measures +10 cm".
_GAP: Final = r"[\s:=~≈(]*(?:(?:of|is|was|measures|measured|measuring|approximately|approx\.?|about|at)[\s:=~≈(]+)?"
_WINDOW: Final = 40


@dataclass(frozen=True)
class _Matcher:
    measurement: str
    phrase: Phrase
    pattern: re.Pattern[str]
    after: re.Pattern[str] | None  # value must follow the phrase
    before: re.Pattern[str] | None  # or, for requires_number, may precede it ("75% relief")

    def hits(self, text: str) -> int | None:
        """Start of the first acceptable occurrence, or None."""
        for m in self.pattern.finditer(text):
            if self.after is None:
                return m.start()
            if self.after.match(text, m.end(), m.end() + _WINDOW):
                return m.start()
            if self.before is not None and self.before.search(text[max(0, m.start() - _WINDOW) : m.start()]):
                return m.start()
        return None


def _matcher(name: str, unit: str, phrase: Phrase) -> _Matcher:
    pattern = compile_phrases([phrase.text])
    if pattern is None:
        raise ValueError(f"{name}: empty phrase")
    value = _NUMBER + _UNITS[unit]
    after = re.compile(_GAP + value, re.IGNORECASE) if phrase.abbreviation or phrase.requires_number else None
    # Up to two words between value and phrase: "12 mm dynamic translation", "80% pain relief".
    before_pattern = value + r"(?:[^\w\n]+[a-z\-]+){0,2}[^\w\n]+$"
    before = re.compile(before_pattern, re.IGNORECASE) if phrase.requires_number and not phrase.abbreviation else None
    return _Matcher(name, phrase, pattern, after, before)


def _measurement(raw: Mapping[str, Any]) -> Measurement:
    if raw["unit"] not in _UNITS:
        raise ValueError(f"{raw['name']}: unknown unit {raw['unit']!r}")
    rng = raw.get("value_range")
    return Measurement(
        name=raw["name"],
        title=raw["title"],
        unit=raw["unit"],
        loinc=frozenset(entry["code"] for entry in raw.get("loinc", [])),
        phrases=tuple(
            Phrase(t["phrase"].lower(), bool(t.get("abbreviation")), bool(t.get("requires_number"))) for t in raw["text"]
        ),
        value_range=(rng[0], rng[1]) if rng else None,
        tests=tuple(SiTest(t["key"], t["role"], tuple(s.lower() for s in t["text"])) for t in raw.get("tests", [])),
    )


@dataclass(frozen=True)
class _Index:
    by_name: Mapping[str, Measurement]
    loinc: Mapping[str, str]
    matchers: tuple[_Matcher, ...]
    tests: Mapping[str, re.Pattern[str]]


@cache
def _index() -> _Index:
    text = resources.files("terminology").joinpath("data", "measurements.json").read_text(encoding="utf-8")
    items = [_measurement(raw) for raw in json.loads(text)["measurements"]]
    by_name = {m.name: m for m in items}
    loinc: dict[str, str] = {}
    for m in items:
        for code in m.loinc:
            if loinc.setdefault(code, m.name) != m.name:
                raise ValueError(f"LOINC {code} is listed under two measurements")
    matchers = [_matcher(m.name, m.unit, p) for m in items for p in m.phrases]
    # SI test names are unambiguous evidence that provocative testing is being reported.
    matchers += [_matcher(m.name, m.unit, Phrase(s)) for m in items for t in m.tests for s in t.phrases]
    tests = {t.key: compile_phrases(t.phrases) for m in items for t in m.tests}
    return _Index(by_name, loinc, tuple(matchers), {k: v for k, v in tests.items() if v is not None})


def all_names() -> frozenset[str]:
    return frozenset(_index().by_name)


def get(name: str) -> Measurement:
    try:
        return _index().by_name[name]
    except KeyError:
        raise UnknownMeasurement(name) from None


def match_coding(system: str, code: str) -> str | None:
    try:
        if resolve_system(system) != LOINC:
            return None
    except UnknownCodeSystem:
        return None
    return _index().loinc.get(code.strip())


def match_text(text: str) -> str | None:
    """The measurement named in the text; the longest matching phrase wins, then the earliest."""
    folded = normalize_text(text)
    best: tuple[int, int, str] | None = None
    for matcher in _index().matchers:
        start = matcher.hits(folded)
        if start is None:
            continue
        key = (len(matcher.phrase.text), -start, matcher.measurement)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def match_si_tests(text: str) -> frozenset[str]:
    """Keys of the SI provocative/localization tests named in the text (positive or not: the caller decides)."""
    folded = normalize_text(text)
    return frozenset(key for key, pattern in _index().tests.items() if pattern.search(folded))


@cache
def _si_test_phrases() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(test key, phrases) per test; a phrase ending in "test" also matches its plural ("compression tests")."""
    return tuple((t.key, tuple(list(t.phrases) + [p + "s" for p in t.phrases if p.endswith("test")]))
                 for m in _index().by_name.values() for t in m.tests)


@cache
def _si_test_spans() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """One pattern per test."""
    patterns = []
    for key, phrases in _si_test_phrases():
        pattern = compile_phrases(phrases)
        if pattern is not None:
            patterns.append((key, pattern))
    return tuple(patterns)


@cache
def si_test_gate() -> PhraseGate:
    """Which SI tests could be named in a text (a cheap superset of find_si_tests)."""
    groups: dict[str, list[str]] = {}
    for key, phrases in _si_test_phrases():
        groups.setdefault(key, []).extend(phrases)
    return PhraseGate(groups)


def find_si_tests(text: str) -> list[tuple[str, int, int]]:
    """(test key, start, end) of every SI test named in the text, in order, offsets into `text`.
    Where two tests' phrases overlap the longer wins. Positive or not is the caller's to read."""
    candidates = si_test_gate().candidates(text)
    if not candidates:
        return []
    folded = normalize_text(text)
    hits = sorted(((key, m.start(), m.end()) for key, pattern in _si_test_spans() if key in candidates
                   for m in pattern.finditer(folded)),
                  key=lambda h: (h[1], -(h[2] - h[1])))
    kept: list[tuple[str, int, int]] = []
    for hit in hits:
        if not kept or hit[1] >= kept[-1][2]:
            kept.append(hit)
    return kept
