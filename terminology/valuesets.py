"""Runtime access to the curated value sets (codes and text phrases).

Reads data/valuesets.json and the generated data/valuesets.expanded.json once; no ICD library
is imported here, so code matching is a dictionary lookup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from terminology.phrases import compile_phrases
from terminology.systems import ICD10CM, SNOMED, UnknownCodeSystem, resolve_system

__all__ = [
    "PhraseGate",
    "UnknownValueSet",
    "ValueSet",
    "ValueSetDataError",
    "all_names",
    "compile_phrases",
    "find_text",
    "get",
    "match_coding",
    "match_text",
    "normalize_icd10cm",
    "normalize_text",
    "phrase_tokens",
    "text_tokens",
    "unverified_snomed_matches",
]


class UnknownValueSet(KeyError):
    """No value set has this name."""


class ValueSetDataError(RuntimeError):
    """The curated file and its generated expansion disagree; rerun terminology.build_valuesets."""


@dataclass(frozen=True)
class ValueSet:
    name: str
    title: str
    description: str
    icd10cm: frozenset[str]
    icd10cm_roots: tuple[str, ...]
    # Unverified SNOMED ids may only corroborate text evidence, so they are kept apart.
    snomed_verified: frozenset[str]
    snomed_unverified: frozenset[str]
    text: tuple[str, ...]
    negative_text: tuple[str, ...] = ()


_UNICODE_PUNCT = str.maketrans({"\u2018": "'", "\u2019": "'", "\u2010": "-", "\u2011": "-", "\u2013": "-", "\u2014": "-"})


def normalize_text(text: str) -> str:
    """Fold typographic quotes and dashes. Same length as the input (patterns ignore case
    instead of lower-casing, which can change length), so match offsets index the original text."""
    return text.translate(_UNICODE_PUNCT)


def normalize_icd10cm(code: str) -> str:
    """'m4316 ' -> 'M43.16'; already dotted codes only lose whitespace and case."""
    compact = "".join(code.split()).upper()
    if "." not in compact and len(compact) > 3:
        compact = f"{compact[:3]}.{compact[3:]}"
    return compact


# --- cheap pre-filter: which phrase groups could match a text at all --------------------------------
#
# Every phrase pattern here is bounded by (?<![a-z0-9]) ... (?![a-z0-9]) under re.IGNORECASE and
# matches its words literally, so a text can only match a phrase if each run of letters/digits in
# the phrase stands in the text as a whole token of such characters (the characters that border a
# blanked negative phrase are themselves non-alphanumeric: the negative pattern is bounded the same
# way). A token is a run of what [a-z0-9] matches under re.IGNORECASE: ASCII letters and digits and
# four non-ASCII letters that case-fold onto ASCII ones; tests/test_facts_prefilter.py re-derives
# that set from the re module over all of Unicode.
_TOKEN = re.compile(r"[a-z0-9]+", re.IGNORECASE)
_TOKEN_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


@lru_cache(maxsize=4096)
def text_tokens(text: str) -> frozenset[str]:
    """The lower-cased ASCII word tokens of text, as the phrase patterns' word bounds see them.
    Cached: every mapper asks for the tokens of the same note."""
    if text.isascii():
        return frozenset(_TOKEN.findall(text.lower()))
    return frozenset(token.translate(_TOKEN_FOLD).lower() for token in _TOKEN.findall(text))


def phrase_tokens(phrase: str) -> frozenset[str]:
    """The phrase's ASCII tokens, lower-cased: tokens of every text its pattern matches, whether the
    pattern was built from the phrase as written or lower-cased. (A token holding a non-ASCII
    letter is left out: lower-casing may split it.)"""
    return frozenset(token.lower() for token in _TOKEN.findall(phrase) if token.isascii())


class PhraseGate:
    """Which groups of phrases could match a text: those with a phrase all of whose tokens are
    tokens of the text.

    A superset test, never a match: a group it rules out cannot match, a group it lets through
    may still not. groups: group -> phrases; anchors: group -> single words, for groups that also
    match hand-written regexes (every match of those holds one of the words as a whole token).
    A phrase without an ASCII token makes its group never ruled out."""

    def __init__(self, groups: Mapping[Any, Iterable[str]], anchors: Mapping[Any, Iterable[str]] | None = None):
        needs: list[tuple[frozenset[str], Any]] = []
        always: set = set()
        for group, phrases in groups.items():
            for phrase in phrases:
                tokens = phrase_tokens(phrase)
                if tokens:
                    needs.append((tokens, group))
                else:
                    always.add(group)
        for group, words in (anchors or {}).items():
            needs.extend((frozenset([word.lower()]), group) for word in words)
        # Indexed by the longest (most telling) token of each phrase.
        by_key: dict[str, list[tuple[frozenset[str], Any]]] = {}
        for tokens, group in dict.fromkeys(needs):
            by_key.setdefault(max(sorted(tokens), key=len), []).append((tokens, group))
        self._by_key = {key: tuple(entries) for key, entries in by_key.items()}
        self._keys = frozenset(by_key)
        self._always = frozenset(always)
        self.groups = frozenset(groups) | frozenset(anchors or ())

    def candidates(self, text: str) -> frozenset:
        """The groups that could match text."""
        tokens = text_tokens(text)
        if self._keys.isdisjoint(tokens):
            return self._always
        found = set(self._always)
        for key in self._keys.intersection(tokens):
            for needed, group in self._by_key[key]:
                if group not in found and needed <= tokens:
                    found.add(group)
        return frozenset(found)

    def could_match(self, text: str) -> bool:
        """Whether any group could match text."""
        if self._always:
            return True
        tokens = text_tokens(text)
        if self._keys.isdisjoint(tokens):
            return False
        return any(needed <= tokens for key in self._keys.intersection(tokens) for needed, _ in self._by_key[key])


@dataclass(frozen=True)
class _Index:
    by_name: Mapping[str, ValueSet]
    icd10cm: Mapping[str, frozenset[str]]
    snomed_verified: Mapping[str, frozenset[str]]
    snomed_unverified: Mapping[str, frozenset[str]]
    patterns: Mapping[str, tuple[re.Pattern[str] | None, re.Pattern[str] | None]]
    gate: PhraseGate    # which value sets' positive phrases could occur in a text


def _read_json(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("terminology").joinpath("data", name).read_text(encoding="utf-8"))
    return doc


def _invert(pairs: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for code, name in pairs:
        out.setdefault(code, set()).add(name)
    return {code: frozenset(names) for code, names in out.items()}


def _build_value_set(raw: Mapping[str, Any], expanded: Mapping[str, list[str]]) -> ValueSet:
    name = raw["name"]
    roots = tuple(normalize_icd10cm(r["code"]) for r in raw.get("icd10cm_roots", []))
    if name not in expanded:
        raise ValueSetDataError(f"{name} has no expansion")
    codes = frozenset(expanded[name])
    if not set(roots) <= codes:
        raise ValueSetDataError(f"{name}: roots {sorted(set(roots) - codes)} missing from the expansion")
    snomed = raw.get("snomed", [])
    return ValueSet(
        name=name,
        title=raw["title"],
        description=raw["description"],
        icd10cm=codes,
        icd10cm_roots=roots,
        snomed_verified=frozenset(s["code"] for s in snomed if s["verified"] is True),
        snomed_unverified=frozenset(s["code"] for s in snomed if s["verified"] is not True),
        text=tuple(raw["text"]),
        negative_text=tuple(raw.get("negative_text", ())),
    )


@cache
def _index() -> _Index:
    curated = _read_json("valuesets.json")["valuesets"]
    expanded = _read_json("valuesets.expanded.json")["valuesets"]
    sets = [_build_value_set(raw, expanded) for raw in curated]
    by_name = {vs.name: vs for vs in sets}
    if len(by_name) != len(sets) or set(expanded) != set(by_name):
        raise ValueSetDataError("value-set names are duplicated or differ from the expansion")
    return _Index(
        by_name=by_name,
        icd10cm=_invert((code, vs.name) for vs in sets for code in vs.icd10cm),
        snomed_verified=_invert((code, vs.name) for vs in sets for code in vs.snomed_verified),
        snomed_unverified=_invert((code, vs.name) for vs in sets for code in vs.snomed_unverified),
        patterns={vs.name: (compile_phrases(vs.text), compile_phrases(vs.negative_text)) for vs in sets},
        gate=PhraseGate({vs.name: vs.text for vs in sets}),
    )


def all_names() -> frozenset[str]:
    return frozenset(_index().by_name)


def get(name: str) -> ValueSet:
    try:
        return _index().by_name[name]
    except KeyError:
        raise UnknownValueSet(name) from None


def match_coding(system_uri: str, code: str) -> frozenset[str]:
    """Names of value sets containing the coding. Unverified SNOMED ids never count here."""
    try:
        system = resolve_system(system_uri)
    except UnknownCodeSystem:
        return frozenset()
    index = _index()
    if system == ICD10CM:
        return index.icd10cm.get(normalize_icd10cm(code), frozenset())
    if system == SNOMED:
        return index.snomed_verified.get(code.strip(), frozenset())
    return frozenset()


def unverified_snomed_matches(code: str) -> frozenset[str]:
    """Value sets listing this SNOMED id as unverified: evidence only when text also matches."""
    return _index().snomed_unverified.get(code.strip(), frozenset())


def find_text(text: str) -> list[tuple[str, int, int]]:
    """Every phrase occurrence as (value-set name, start, end) offsets into `text`, ordered by
    position, so callers can check negation around each mention."""
    index = _index()
    candidates = index.gate.candidates(text)
    if not candidates:
        return []
    folded = normalize_text(text)
    found: list[tuple[str, int, int]] = []
    for name, (positive, negative) in index.patterns.items():
        if positive is None or name not in candidates:
            continue
        # Blank out e.g. "aortic stenosis" so that its "stenosis" cannot match on its own;
        # same-length blanks keep the offsets valid.
        searched = negative.sub(lambda m: " " * len(m.group()), folded) if negative else folded
        found.extend((name, m.start(), m.end()) for m in positive.finditer(searched))
    return sorted(found, key=lambda hit: (hit[1], hit[2], hit[0]))


def match_text(text: str) -> frozenset[str]:
    """Names of value sets with a phrase in the text. Negation and history are the caller's job."""
    return frozenset(name for name, _, _ in find_text(text))
