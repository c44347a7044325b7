"""Symptoms and neurological findings at the levels operated on (rules/clinical_correlation.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts
from terminology.levels import format_interspaces

from .clinical_facts import of_kind
from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, Finding, point
from .spec import Profile

# Coded problems that are symptoms (terminology value sets read by fhir_mappings.diagnoses).
CODED = {"radiculopathy": "radiculopathy", "stenosis_with_claudication": "neurogenic_claudication"}
LOCALISING = ("radiculopathy", "motor_deficit", "sensory_deficit", "reflex_change")


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["clinical_correlation"]
    as_of = facts.order_date()
    findings = []
    for order in facts.spine_orders:
        judged = [p for p in order.procedures if p.procedure_class in rule.applies_to]
        if not judged:
            continue
        fusion = any(p.procedure_class == "fusion" for p in judged)
        kinds = rule["fusion_symptoms"] if fusion else rule["decompression_symptoms"]
        ordered = tuple(sorted({s for p in judged for s in p.interspaces}))
        classes = frozenset(p.procedure_class for p in judged) | ({"instrumentation", "graft"} if fusion else set())
        symptoms = of_kind(facts, *kinds, as_of=as_of)
        coded = [(CODED[d.valueset], d) for d in facts.diagnoses if CODED.get(d.valueset) in kinds]
        at_levels, elsewhere, anywhere = [], [], []
        for s in symptoms:
            line = point("symptom", s.evidence, kind=s.kind, side=s.side, roots=", ".join(s.roots),
                         levels=format_interspaces(s.interspaces))
            if s.kind in LOCALISING and s.interspaces:
                (at_levels if set(s.interspaces) & set(ordered) else elsewhere).append(line)
            else:
                anywhere.append(line)
        read = {(s.kind, s.evidence.reference) for s in symptoms}     # a Condition's name is read as text too
        anywhere += [point("symptom", d.evidence, kind=kind, side=None, roots="", levels="") for kind, d in coded
                     if (kind, d.evidence.reference) not in read]
        counted = tuple(at_levels + anywhere + elsewhere)
        evidence = tuple(dict.fromkeys(p.evidence[0] for p in counted if p.evidence))
        data = {"ordered": format_interspaces(ordered) or "the ordered levels"}
        if at_levels or anywhere:
            findings.append(Finding(rule, MET, (order,), evidence, counted, (), ("required",), classes=classes))
        elif elsewhere:
            # Localising findings, none at the ordered levels: the picture points elsewhere.
            findings.append(Finding(rule, NOT_MET, (order,), evidence, counted,
                                    (point("symptoms-elsewhere", levels=data["ordered"]),), ("required",),
                                    classes=classes, data=data))
        elif rule["required"]:
            findings.append(Finding(rule, NEEDS_DOCUMENTATION, (order,), (), (),
                                    (point("symptoms-missing", levels=data["ordered"]),), ("required",),
                                    classes=classes, data=data))
    return findings
