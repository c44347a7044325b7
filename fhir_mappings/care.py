"""Procedures, MedicationRequests and notes -> episodes of non-operative care.

A coded, dated Procedure is a visit; a course recorded as one Procedure with a period is
a course; care named only in a note ("tried PT") is an undated mention, which the rules
show as evidence but never count toward a duration.
"""
from __future__ import annotations

from terminology.conservative_care import care_kind_of_cpt, care_kinds_in_text
from terminology.systems import CPT

from .facts import CareEpisode, Evidence
from .negation import is_negated
from .resources import clinical_period, codings, concept_texts, narrative_texts, reference


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


def _text_kind(texts) -> str | None:
    for text in texts:
        for kind, match in care_kinds_in_text(text):
            if not is_negated(text, match.start(), match.end()):
                return kind
    return None


def _episode_from_record(resource: dict) -> CareEpisode | None:
    """A Procedure or MedicationRequest that is itself the care."""
    fields = ("code",) if resource["resourceType"] == "Procedure" else ("medicationCodeableConcept",)
    kind = _coded_kind(resource) if resource["resourceType"] == "Procedure" else None
    names = list(concept_texts(resource, *fields))
    if resource["resourceType"] == "MedicationRequest":
        display = (resource.get("medicationReference") or {}).get("display")
        if isinstance(display, str):
            names.append(display)
        kind = _text_kind(names) and "medication"
    kind = kind or _text_kind(names)
    if not kind:
        return None
    start, end = clinical_period(resource)
    is_period = bool(resource.get("performedPeriod")) and start != end
    label = names[0] if names else kind.replace("_", " ")
    return CareEpisode(kind, start, end, Evidence(reference(resource), label, start), period=is_period)


def _mentions(resource: dict) -> list[CareEpisode]:
    episodes = []
    for text in narrative_texts(resource):
        for kind, match in care_kinds_in_text(text):
            if is_negated(text, match.start(), match.end()):
                continue
            evidence = Evidence(reference(resource), f"mentioned without dates: “{_snippet(text, match.start(), match.end())}”")
            episodes.append(CareEpisode(kind, None, None, evidence))
    return episodes


def map_care(resources) -> tuple[CareEpisode, ...]:
    episodes = []
    for resource in resources:
        rtype = resource.get("resourceType")
        if rtype in ("Procedure", "MedicationRequest"):
            episode = _episode_from_record(resource)
            if episode is not None:
                if episode.start is None:
                    episode = CareEpisode(episode.kind, None, None, Evidence(
                        episode.evidence.reference, f"{episode.evidence.description}, no date recorded"))
                episodes.append(episode)
                continue
        if rtype in ("Procedure", "Condition", "Observation", "DiagnosticReport", "MedicationRequest"):
            episodes.extend(_mentions(resource))
    return tuple(episodes)
