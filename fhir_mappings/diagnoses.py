"""Conditions -> Diagnoses: one per (value set, Condition) the problem list asserts.

A Condition counts when it is neither refuted nor inactive/resolved, by a verified coding in
a value set (coded=True) or by its name (code.text or a coding's display) naming the value
set without negation (coded=False). Notes never make a diagnosis: "no scoliosis" in a note
is a finding (level_facts), not a problem; draft orders are never read here.
"""
from __future__ import annotations

from terminology import valuesets

from .facts import Diagnosis, Evidence
from .negation import is_negated
from .resources import clinical_period, codings, concept_texts, is_inactive, is_refuted, reference


def _coded(resource: dict, label: str) -> dict[str, str]:
    """Value set -> description, for every verified coding of the Condition's code."""
    found: dict[str, str] = {}
    for system, code in codings(resource, "code"):
        if system is None:
            continue
        for name in sorted(valuesets.match_coding(system, code)):
            found.setdefault(name, f"{code} {label}".strip())
    return found


def _named(resource: dict) -> dict[str, str]:
    """Value set -> the words that name it in the Condition's code text or displays."""
    found: dict[str, str] = {}
    for text in dict.fromkeys(concept_texts(resource, "code")):
        for name, start, end in valuesets.find_text(text):
            if not is_negated(text, start, end):
                found.setdefault(name, f"“{' '.join(text.split())}”")
    return found


def map_diagnoses(resources) -> tuple[Diagnosis, ...]:
    diagnoses = []
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("resourceType") != "Condition":
            continue
        if is_refuted(resource) or is_inactive(resource):
            continue
        label = next(iter(concept_texts(resource, "code")), "")
        onset = clinical_period(resource)[0]
        coded = _coded(resource, label)
        named = {name: text for name, text in _named(resource).items() if name not in coded}
        for name, description in coded.items():
            diagnoses.append(Diagnosis(name, Evidence(reference(resource), description, onset), onset, coded=True))
        for name, description in named.items():
            diagnoses.append(Diagnosis(name, Evidence(reference(resource), description, onset), onset, coded=False))
    return tuple(diagnoses)
