"""An inpatient stay requested with the order (rules/inpatient.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts, Order
from fhir_mappings.negation import is_negated
from fhir_mappings.text.rules import load_text_data
from terminology.phrases import compile_phrases

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


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["inpatient"]
    asking = tuple(o for o in facts.spine_orders if requests_inpatient(o))
    if not asking:
        return []
    fused = {s for o in facts.spine_orders for p in o.of_class("fusion", "deformity_fusion") for s in p.interspaces}
    reasons = []
    if len(fused) >= rule["multilevel_interspaces"]:
        reasons.append(point("inpatient-multilevel", count=len(fused)))
    if any(o.of_class("osteotomy_posterior", "osteotomy_three_column", "osteotomy_anterior") for o in facts.spine_orders):
        reasons.append(point("inpatient-osteotomy"))
    if {"anterior", "posterior"} <= _approaches(facts.spine_orders):
        reasons.append(point("inpatient-combined-approach"))
    counted = tuple(reasons) or (point("inpatient-simple"),)
    if reasons:
        return [Finding(rule, MET, asking, (), counted, (), ("multilevel_interspaces",))]
    return [Finding(rule, NOT_MET, asking, (), counted, (point("inpatient-ambulatory"),), ("multilevel_interspaces",))]
