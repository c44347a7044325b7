"""Procedures, MedicationRequests and notes -> episodes of non-operative care.

A coded, dated Procedure is a visit; a course recorded as one Procedure with a period is
a course; care named only in a note ("tried PT") is an undated mention, which the rules
show as evidence but never count toward a duration.
"""
from __future__ import annotations

from functools import lru_cache

from terminology.conservative_care import care_kind_of_cpt, care_kinds_in_text
from terminology.systems import CPT

from .care_sources import SOURCE_TYPES, care_sources_of, medication_index
from .facts import CareEpisode, Evidence
from .negation import is_negated
from .resources import clinical_period, codings, concept_texts, narrative_sources, reference


def _snippet(text: str, start: int, end: int, width: int = 60) -> str:
    left, right = max(0, start - width), min(len(text), end + width)
    return ("…" if left else "") + " ".join(text[left:right].split()) + ("…" if right < len(text) else "")


def _coded_kind(resource: dict) -> str | None:
    for system, code in codings(resource, "code"):
        if system in (CPT, None):
            kind = care_kind_of_cpt(code)
            if kind:
                return kind
    return None


@lru_cache(maxsize=4096)
def _asserted_care(text: str) -> tuple[tuple[str, str, str], ...]:
    """(kind, evidence description, quoted words) of every care mention in text that is not negated,
    in order. Cached: charts repeat the same notes and medication names."""
    found = []
    for kind, match in care_kinds_in_text(text):
        if not is_negated(text, match.start(), match.end()):
            quote = _snippet(text, match.start(), match.end())
            found.append((kind, f"mentioned without dates: “{quote}”", quote))
    return tuple(found)


def _text_kind(texts) -> str | None:
    for text in texts:
        for kind, *_ in _asserted_care(text):
            return kind
    return None


def _episode_from_record(resource: dict) -> CareEpisode | None:
    """A Procedure that is itself the care."""
    kind = _coded_kind(resource)
    names = list(concept_texts(resource, "code"))
    kind = kind or _text_kind(names)
    if not kind:
        return None
    start, end = clinical_period(resource)
    is_period = bool(resource.get("performedPeriod")) and start != end
    label = names[0] if names else kind.replace("_", " ")
    return CareEpisode(kind, start, end, Evidence(reference(resource), label, start), period=is_period)


def _mentions(resource: dict) -> list[CareEpisode]:
    return [CareEpisode(kind, None, None, Evidence(reference(resource), description, quote=quote, source=source))
            for source, text in narrative_sources(resource) for kind, description, quote in _asserted_care(text)]


def care_of(resource: dict, medications: dict | None = None) -> list[CareEpisode]:
    """The care one resource documents: itself (a coded or named Procedure, a medication record, a
    therapy visit, a claim line, a form answer: care_sources), or the care its notes mention.
    medications: the chart's Medication resources by reference (care_sources.medication_index)."""
    rtype = resource.get("resourceType")
    if rtype in SOURCE_TYPES:
        found = care_sources_of(resource, medications)
        if found or rtype != "MedicationRequest":
            return found
    if rtype == "Procedure":
        episode = _episode_from_record(resource)
        if episode is not None:
            if episode.start is None:
                episode = CareEpisode(episode.kind, None, None, Evidence(
                    episode.evidence.reference, f"{episode.evidence.description}, no date recorded"))
            return [episode]
    if rtype in ("Procedure", "Condition", "Observation", "DiagnosticReport", "MedicationRequest", "DocumentReference"):
        return _mentions(resource)
    return []


def map_care(resources) -> tuple[CareEpisode, ...]:
    resources = list(resources)
    medications = medication_index(resources)
    return tuple(episode for resource in resources for episode in care_of(resource, medications))
