"""Procedures, MedicationRequests and notes -> episodes of non-operative care.

A coded, dated Procedure is a visit; a course recorded as one Procedure with a period is
a course. Care named in a note is read by fhir_mappings.text: only care the note asserts as
done (present, or history: "s/p ESI") counts, never care planned, hedged or denied; with the
dates its sentence writes ("12 PT visits from 1/6/2025 to 3/28/2025", "8 weeks of PT ending
March 2025", "ESI on 2/3/2025") it is a dated episode like a coded one, else an undated mention,
which the rules show as evidence but never count toward a duration.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from terminology.conservative_care import care_kind_of_cpt, care_kinds_in_text
from terminology.phrases import compile_phrases
from terminology.systems import CPT

from .care_sources import SOURCE_TYPES, care_sources_of, medication_index
from .facts import CareEpisode, Evidence
from .text import document
from .text.rules import load_text_data
from .text.care import ProseCourse, course_in
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


_DONE = ("present", "historical")


_PLANS = load_text_data("care_plans.yaml")
# A cue, then at most two words, ending where the mention starts (searched up to it).
_PLANNED_BEFORE = re.compile(rf"{compile_phrases(_PLANS['before']).pattern}(?:[ \t]+[a-z][\w/-]*){{0,2}}[ \t]+\Z",
                             re.IGNORECASE)
# Where the mention ends: its dates or "on"/"for"/"was"/"is", then a cue.
_PLANNED_AFTER = re.compile(r"(?:[ \t,]+(?:on|for|in|was|is|were|has\s+been|been|[\d/.-]+))*"
                            rf"[ \t,]+{compile_phrases(_PLANS['after']).pattern}", re.IGNORECASE)


_DONE_IN_SENTENCE = compile_phrases(_PLANS["done"])


def _planned(folded: str, lo: int, start: int, end: int, hi: int) -> bool:
    """The care at [start, end) of the sentence [lo, hi) is referred, recommended, ordered or booked, not
    had, and the sentence does not say it was had (terminology/data/text/care_plans.yaml)."""
    if not (_PLANNED_BEFORE.search(folded, max(lo, start - 60), start) or _PLANNED_AFTER.match(folded, end, hi)):
        return False
    return not _DONE_IN_SENTENCE.search(folded, lo, hi)


@dataclass(frozen=True)
class _ProseCare:
    kind: str
    description: str
    quote: str
    course: ProseCourse | None
    assertion: str


@lru_cache(maxsize=4096)
def _asserted_care(text: str) -> tuple[_ProseCare, ...]:
    """Every care mention in text the text asserts as done, with the dates of its sentence, in order.
    Cached: charts repeat the same notes and medication names."""
    found = []
    mentions = care_kinds_in_text(text)
    read = document(text) if mentions else None
    for kind, match in mentions:
        assertion = read.assertion(match.start(), match.end())
        if assertion not in _DONE:
            continue
        lo, hi = read.sentence(match.start(), match.end())
        if kind != "medication" and _planned(read.folded, lo, match.start(), match.end(), hi):
            continue
        course = course_in(read.folded, lo, hi, match.span())
        snippet = _snippet(text, match.start(), match.end())
        description = f"{course.words}: “{snippet}”" if course else f"mentioned without dates: “{snippet}”"
        found.append(_ProseCare(kind, description, " ".join(text[lo:hi].split()), course, assertion))
    return tuple(found)


def _text_kind(texts) -> str | None:
    for text in texts:
        for care in _asserted_care(text):
            return care.kind
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
    episodes, seen = [], set()
    for source, text in narrative_sources(resource):
        for care in _asserted_care(text):
            course = care.course
            key = (care.kind, course.start, course.end) if course else None
            if key is not None and key in seen:
                continue        # "12 PT visits ... of physical therapy": one course named twice
            seen.add(key)
            evidence = Evidence(reference(resource), care.description, course.start if course else None,
                                quote=care.quote, source=source)
            if course is None:
                episodes.append(CareEpisode(care.kind, None, None, evidence, assertion=care.assertion))
            else:
                episodes.append(CareEpisode(care.kind, course.start, course.end, evidence, period=course.period,
                                            assertion=care.assertion, precision=course.precision))
    return episodes


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
