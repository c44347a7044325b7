"""Conditions and reports -> red flags that waive the conservative-care wait
(Aetna CPB 0743, BCBSA 7.01.141, MP-517: cauda equina, progressive motor deficit,
fracture, tumour, infection, myelopathy)."""
from __future__ import annotations

from terminology import valuesets

from .facts import Evidence, RedFlag
from .negation import is_negated
from .resources import clinical_period, codings, concept_texts, is_inactive, narrative_texts, reference

RED_FLAG_SETS = ("cauda_equina", "progressive_motor_deficit", "spinal_fracture", "spinal_tumor",
                 "spinal_infection", "myelopathy")


def _asserted_in_text(texts) -> list[tuple[str, str]]:
    found = []
    for text in texts:
        for name, start, end in valuesets.find_text(text):
            if name in RED_FLAG_SETS and not is_negated(text, start, end):
                found.append((name, text[start:end]))
    return found


def map_red_flags(resources) -> tuple[RedFlag, ...]:
    flags = []
    for resource in resources:
        rtype = resource.get("resourceType")
        if rtype not in ("Condition", "Observation", "DiagnosticReport"):
            continue
        if rtype == "Condition" and is_inactive(resource):
            continue
        start, _ = clinical_period(resource)
        kinds: dict[str, str] = {}
        if rtype == "Condition":
            for system, code in codings(resource, "code"):
                for name in valuesets.match_coding(system, code) & set(RED_FLAG_SETS):
                    kinds.setdefault(name, f"{code} {next(concept_texts(resource, 'code'), '')}".strip())
            for name, phrase in _asserted_in_text(concept_texts(resource, "code")):
                kinds.setdefault(name, phrase)
        for name, phrase in _asserted_in_text(narrative_texts(resource)):
            kinds.setdefault(name, phrase)
        for name, description in kinds.items():
            flags.append(RedFlag(name, Evidence(reference(resource), description, start)))
    return tuple(flags)
