"""An inpatient stay requested with the order (rules/inpatient.yaml)."""
from __future__ import annotations

import re

from fhir_mappings.facts import Facts, Order
from fhir_mappings.negation import is_negated
from fhir_mappings.text.rules import load_text_data
from terminology.phrases import compile_phrases

from . import deformity, fusion_levels
from .finding import MET, NOT_MET, Finding, point
from .spec import Profile

_WORDS = load_text_data("order_words.yaml")
_INPATIENT = compile_phrases(_WORDS["inpatient"])
_ANTERIOR = compile_phrases(_WORDS["anterior_approach"])
_POSTERIOR = compile_phrases(_WORDS["posterior_approach"])
ANTERIOR_CPT = {"22558", "+22585", "22585"}


def order_texts(order: Order) -> list[str]:
    r = order.resource
    texts = [order.label]
    for field in ("orderDetail", "locationCode", "category", "bodySite"):
        for concept in r.get(field) or ():
            if isinstance(concept, dict) and isinstance(concept.get("text"), str):
                texts.append(concept["text"])
    texts += [n["text"] for n in r.get("note") or () if isinstance(n, dict) and isinstance(n.get("text"), str)]
    return texts


def requests_inpatient(order: Order) -> bool:
    return any(not is_negated(t, m.start(), m.end()) for t in order_texts(order) for m in _INPATIENT.finditer(t))


def _approaches(orders) -> set[str]:
    found = set()
    for order in orders:
        for proc in order.of_class("fusion", "deformity_fusion"):
            found.add("anterior" if set(proc.codes) & ANTERIOR_CPT else "posterior" if proc.codes else "")
        text = " ".join(order_texts(order))
        found |= {"anterior"} if _ANTERIOR.search(text) else set()
        found |= {"posterior"} if _POSTERIOR.search(text) and order.of_class("fusion", "deformity_fusion") else set()
    return found - {""}


_ASA = re.compile(_WORDS["asa_class"], re.IGNORECASE)
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}


def asa_class(orders) -> int | None:
    """The highest ASA physical status written on the orders."""
    found = [m["asa"].upper() for o in orders for t in order_texts(o) for m in _ASA.finditer(t)]
    values = [int(v) if v.isdigit() else _ROMAN[v] for v in found]
    return max(values, default=None)


def _patient_reasons(facts: Facts, rule) -> list:
    """Age, ASA class and comorbidities that support a stay whatever the procedure (S26)."""
    reasons = []
    age = facts.age()
    if age is not None and age >= rule["age_years"]:
        reasons.append(point("inpatient-age", age=age, threshold=rule["age_years"]))
    asa = asa_class(facts.spine_orders)
    if asa is not None and asa >= rule["asa_class"]:
        reasons.append(point("inpatient-asa", asa=asa, threshold=rule["asa_class"]))
    for d in facts.diagnoses:
        if d.valueset in rule["comorbidities"] and not any(p.values.get("comorbidity") == d.valueset for p in reasons):
            reasons.append(point("inpatient-comorbidity", d.evidence, comorbidity=d.valueset))
    return reasons


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["inpatient"]
    asking = tuple(o for o in facts.spine_orders if requests_inpatient(o))
    if not asking:
        return []
    if any(not p.interspaces for o in facts.spine_orders for p in o.of_class(*fusion_levels.FUSION_CLASSES)):
        return []   # a fusion without levels cannot be counted: levels-not-documented says so (seed 002)
    # Only what is supported counts: an unsupported level or osteotomy is no reason to stay.
    shape = deformity.assess(facts, profile.rules["deformity"])
    fused = {s for o in facts.spine_orders if o.of_class(*fusion_levels.FUSION_CLASSES)
             for s in fusion_levels.support(o, facts, profile, assessment=shape).supported}
    reasons = []
    if len(fused) >= rule["multilevel_interspaces"]:
        reasons.append(point("inpatient-multilevel", count=len(fused)))
    if shape.meets and any(o.of_class("osteotomy_posterior", "osteotomy_three_column", "osteotomy_anterior")
                           for o in facts.spine_orders):
        reasons.append(point("inpatient-osteotomy"))
    if fused and {"anterior", "posterior"} <= _approaches(facts.spine_orders):
        reasons.append(point("inpatient-combined-approach"))
    reasons += _patient_reasons(facts, rule)
    counted = tuple(reasons) or (point("inpatient-simple"),)
    thresholds = ("multilevel_interspaces", "age_years", "asa_class", "comorbidities")
    evidence = tuple(e for p in reasons for e in p.evidence)
    if reasons:
        return [Finding(rule, MET, asking, evidence, counted, (), thresholds)]
    return [Finding(rule, NOT_MET, asking, (), counted, (point("inpatient-ambulatory"),), thresholds)]
