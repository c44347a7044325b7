"""Conditions and reports -> red flags that waive the conservative-care wait
(Aetna CPB 0743, BCBSA 7.01.141, MP-517: cauda equina, progressive motor deficit,
fracture, tumour, infection, myelopathy)."""
from __future__ import annotations

from terminology import valuesets

from .facts import Evidence, RedFlag
from .negation import asserted_valueset_mentions
from .text import document
from .resources import clinical_period, codings, concept_texts, is_inactive, narrative_texts, reference

RED_FLAG_SETS = ("cauda_equina", "progressive_motor_deficit", "spinal_fracture", "spinal_tumor",
                 "spinal_infection", "myelopathy")
_RED_FLAG_SETS = frozenset(RED_FLAG_SETS)


def _asserted_in_text(texts) -> list[tuple[str, str, str]]:
    """(red flag, the words naming it, the sentence read) of every red flag the texts assert as present."""
    found = []
    for text in texts:
        for name, start, end in asserted_valueset_mentions(text):
            if name in _RED_FLAG_SETS:
                lo, hi = document(text).sentence(start, end)
                found.append((name, text[start:end], " ".join(text[lo:hi].split())))
    return found


def red_flags_of(resource: dict) -> list[RedFlag]:
    """The red flags one resource asserts."""
    rtype = resource.get("resourceType")
    if rtype not in ("Condition", "Observation", "DiagnosticReport", "DocumentReference"):
        return []
    if rtype == "Condition" and is_inactive(resource):
        return []
    kinds: dict[str, tuple[str, str | None]] = {}
    if rtype == "Condition":
        for system, code in codings(resource, "code"):
            for name in valuesets.match_coding(system, code) & _RED_FLAG_SETS:
                kinds.setdefault(name, (f"{code} {next(concept_texts(resource, 'code'), '')}".strip(), None))
        for name, phrase, quote in _asserted_in_text(concept_texts(resource, "code")):
            kinds.setdefault(name, (phrase, quote))
    for name, phrase, quote in _asserted_in_text(narrative_texts(resource)):
        kinds.setdefault(name, (phrase, quote))
    if not kinds:
        return []
    start, _ = clinical_period(resource)
    return [RedFlag(name, Evidence(reference(resource), description, start, quote=quote))
            for name, (description, quote) in kinds.items()]


def map_red_flags(resources) -> tuple[RedFlag, ...]:
    return tuple(flag for resource in resources for flag in red_flags_of(resource))
