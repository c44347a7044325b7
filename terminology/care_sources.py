"""Vocabulary of the places care is kept outside Procedures (data/care_sources.json) and the
ingredient classes of medication trials (data/medication_classes.json)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from terminology.systems import UnknownCodeSystem, resolve_system

from .conservative_care import phrase_pattern


def _load(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath("data", name).read_text("utf-8"))


def _canonical(system: str) -> str:
    try:
        return resolve_system(system)
    except UnknownCodeSystem:
        return system


@cache
def sources() -> dict:
    return _load("care_sources.json")


@dataclass(frozen=True)
class EncounterVocabulary:
    ambulatory: frozenset[str]
    statuses: frozenset[str]
    pt_codes: frozenset[tuple[str, str]]     # (canonical system, code)
    pt_phrases: re.Pattern
    pt_abbreviation: re.Pattern

    def names_pt(self, text: str) -> bool:
        return bool(self.pt_phrases.search(text) or self.pt_abbreviation.search(text))


@cache
def encounter_vocabulary() -> EncounterVocabulary:
    spec = sources()["encounter"]
    pt = spec["physical_therapy"]
    return EncounterVocabulary(
        ambulatory=frozenset(c.lower() for c in spec["ambulatory_classes"]),
        statuses=frozenset(spec["statuses"]),
        pt_codes=frozenset((_canonical(c["system"]), c["code"]) for c in pt["codes"]),
        pt_phrases=phrase_pattern(pt["text"]),
        # "PT" only in capitals: in lower case it is too often "patient".
        pt_abbreviation=phrase_pattern(["PT", "DPT"], case_sensitive=True),
    )


@cache
def claim_code_systems() -> frozenset[str]:
    return frozenset(_canonical(s) for s in sources()["claims"]["code_systems"])


@cache
def claim_medication_systems() -> frozenset[str]:
    return frozenset(_canonical(s) for s in sources()["claims"]["medication_systems"])


def questionnaire(name: str) -> dict:
    return sources()["questionnaires"][name]


@dataclass(frozen=True)
class MedicationClass:
    name: str
    title: str
    rxcuis: frozenset[str]
    pattern: re.Pattern


@cache
def medication_classes() -> tuple[MedicationClass, ...]:
    out = []
    for name, spec in _load("medication_classes.json")["classes"].items():
        names = list(spec["ingredients"]) + spec["brands"] + spec["words"]
        out.append(MedicationClass(name, spec["title"], frozenset(spec["ingredients"].values()), phrase_pattern(names)))
    return tuple(out)


def medication_class_of_rxcui(code: str) -> MedicationClass | None:
    return next((c for c in medication_classes() if code in c.rxcuis), None)


def medication_class_in_text(text: str) -> tuple[MedicationClass, re.Match] | None:
    """The first class whose ingredient, brand or class word the text names."""
    hits = [(c, m) for c in medication_classes() if (m := c.pattern.search(text))]
    return min(hits, key=lambda h: h[1].start(), default=None)
