"""Disabling pain or loss of function documented (rules/functional_impairment.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts

from .clinical_facts import latest, of_kind, orders_for
from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, Finding, point
from .spec import Profile

THRESHOLDS = ("min_odi_pct", "min_pain_nrs", "adl_limit_counts", "required")
SCORES = (("odi", "min_odi_pct"), ("pain", "min_pain_nrs"))


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["functional_impairment"]
    orders = orders_for(facts, rule)
    if not orders:
        return []
    as_of = facts.order_date()
    classes = frozenset(rule.applies_to)
    counted, reasons, evidence = [], [], []
    for kind, param in SCORES:
        score = latest(facts, kind, as_of=as_of)
        if score is None or score.value is None:
            continue
        p = rule.parameters[param]
        line = point("score", score.evidence, measure=kind, value=score.value, unit=score.unit,
                     threshold=p.value, comparison=p.comparison, day=score.evidence.day)
        counted.append(line)
        evidence.append(score.evidence)
        if p.met_by(score.value):
            reasons.append(line)
    adl = of_kind(facts, "adl_limit", as_of=as_of)
    if adl and rule["adl_limit_counts"]:
        reasons.append(point("adl-limit", adl[-1].evidence))
        counted.append(reasons[-1])
        evidence.append(adl[-1].evidence)
    if reasons:
        return [Finding(rule, MET, orders, tuple(evidence), tuple(counted), (), THRESHOLDS, classes=classes)]
    if counted:
        return [Finding(rule, NOT_MET, orders, tuple(evidence), tuple(counted), (point("function-below-threshold", why=tuple(counted)),),
                        THRESHOLDS, classes=classes)]
    if not rule["required"]:
        return []
    return [Finding(rule, NEEDS_DOCUMENTATION, orders, (), (), (point("function-not-documented"),), THRESHOLDS,
                    classes=classes)]
