"""Conditions -> Diagnoses: one per (value set, Condition) the problem list asserts.

A Condition counts when it is neither refuted nor inactive/resolved, by a verified coding in
a value set (coded=True) or by its name (code.text or a coding's display) naming the value
set as present (coded=False; fhir_mappings.text: not negated, hedged, planned, historical, a
relative's or counselling: "History of vertebral fracture" names no fracture now). Notes never make a diagnosis: "no scoliosis" in a note
is a finding (level_facts), not a problem; draft orders are never read here.
"""
from __future__ import annotations

from terminology import valuesets

from .facts import Diagnosis, Evidence
from .negation import asserted_valueset_mentions
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
        for name, _, _ in asserted_valueset_mentions(text):
            found.setdefault(name, f"“{' '.join(text.split())}”")
    return found


def diagnoses_of(resource) -> list[Diagnosis]:
    """The diagnoses one resource asserts (only an active, unrefuted Condition asserts any)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Condition":
        return []
    if is_refuted(resource) or is_inactive(resource):
        return []
    label = next(iter(concept_texts(resource, "code")), "")
    coded = _coded(resource, label)
    named = {name: text for name, text in _named(resource).items() if name not in coded}
    if not coded and not named:
        return []
    onset = clinical_period(resource)[0]
    diagnoses = []
    for name, description in coded.items():
        diagnoses.append(Diagnosis(name, Evidence(reference(resource), description, onset), onset, coded=True))
    for name, description in named.items():
        evidence = Evidence(reference(resource), description, onset, quote=description.strip("“”"))
        diagnoses.append(Diagnosis(name, evidence, onset, coded=False))
    return diagnoses


def map_diagnoses(resources) -> tuple[Diagnosis, ...]:
    return tuple(diagnosis for resource in resources for diagnosis in diagnoses_of(resource))
