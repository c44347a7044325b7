"""HbA1c below the profile's limit for diabetics before elective fusion (rules/glycemic_control.yaml)."""
from __future__ import annotations

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts

from .clinical_facts import latest, of_kind, orders_for, stated_date
from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, Finding, point
from .spec import Profile

THRESHOLDS = ("max_hba1c_pct", "window_months", "required")


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["glycemic_control"]
    orders = orders_for(facts, rule)
    as_of = facts.order_date()
    diabetes = of_kind(facts, "diabetes", as_of=as_of) + [d for d in facts.diagnoses if d.valueset == "diabetes"]
    if not orders or not rule["required"] or not diabetes:
        return []
    since = add_months(as_of, -rule["window_months"])
    lab = latest(facts, "hba1c", as_of=as_of)
    drawn = stated_date(lab.evidence) if lab else None
    recent = lab if drawn and drawn >= since and lab.value is not None else None
    classes = frozenset(rule.applies_to)
    counted = [point("diabetes", diabetes[-1].evidence)]
    limit = rule["max_hba1c_pct"]
    if recent is None:
        # A value in a unit that cannot be read as percent (value None) is said with its unit.
        counted += [point("hba1c", lab.evidence, value=lab.value, unit=lab.unit, day=drawn)] if lab else []
        missing = point("hba1c-missing", since=since, months=rule["window_months"], limit=limit)
        if lab and drawn and drawn >= since:      # recent, but in a unit the limit cannot be compared with
            missing = point("hba1c-unit", lab.evidence, unit=lab.unit, day=drawn, limit=limit)
        return [Finding(rule, NEEDS_DOCUMENTATION, orders, (lab.evidence,) if lab else (), tuple(counted),
                        (missing,), THRESHOLDS,
                        classes=classes, data={"limit": limit})]
    counted.append(point("hba1c", recent.evidence, value=recent.value, day=drawn))
    if rule.met("max_hba1c_pct", recent.value):
        return [Finding(rule, MET, orders, (recent.evidence,), tuple(counted), (), THRESHOLDS, classes=classes)]
    return [Finding(rule, NOT_MET, orders, (recent.evidence,), tuple(counted),
                    (point("hba1c-high", recent.evidence, value=recent.value, limit=limit),), THRESHOLDS,
                    classes=classes, data={"limit": limit, "value": recent.value})]
