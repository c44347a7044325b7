"""Total non-operative care: first dated care record to the order, against the longest
requirement among the ordered procedures."""
from __future__ import annotations

from datetime import timedelta

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts

from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, WAIVED, Finding, point
from .spec import Profile, RuleSpec
from .waivers import waiver_points, waiving_flags

FUSION_CLASSES = {"fusion", "deformity_fusion", "osteotomy_posterior", "osteotomy_three_column", "osteotomy_anterior"}


def requirement(classes: frozenset[str], rule: RuleSpec) -> tuple[str, int, str, str]:
    """(procedure term, amount, unit, parameter) of the strictest requirement; 'decompression alone' only without fusion."""
    options = []
    if "si_fusion" in classes:
        options.append(("si_fusion", rule["si_fusion_months"] * 30, rule["si_fusion_months"], "months", "si_fusion_months"))
    if classes & FUSION_CLASSES:
        options.append(("fusion", rule["fusion_months"] * 30, rule["fusion_months"], "months", "fusion_months"))
    elif "decompression" in classes:
        options.append(("decompression_alone", rule["decompression_weeks"] * 7, rule["decompression_weeks"], "weeks", "decompression_weeks"))
    label, _, amount, unit, param = max(options, key=lambda o: o[1])
    return label, amount, unit, param


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["conservative_care"]
    orders = tuple(o for o in facts.spine_orders if o.classes & rule.applies_to)
    if not orders:
        return []
    classes = frozenset().union(*(o.classes for o in orders))
    label, amount, unit, param = requirement(classes, rule)
    as_of = facts.order_date()
    dated = sorted((c for c in facts.care if c.start and c.start <= as_of), key=lambda c: c.start)
    undated = [c for c in facts.care if not c.start]
    earliest = dated[0].start if dated else None
    due = add_months(earliest, amount) if earliest and unit == "months" else (earliest + timedelta(weeks=amount) if earliest else None)
    counted = [point("care-requirement", procedure=label, amount=amount, unit=unit, day=as_of)]
    if earliest:
        days = (as_of - earliest).days
        counted.append(point("care-first", dated[0].evidence, start=earliest, weeks=days // 7, months=days // 30))
        counted.append(point("care-kinds", kinds=tuple(sorted({c.kind for c in dated}))))
    if undated:
        counted.append(point("care-undated", *(c.evidence for c in undated[:1]), count=len(undated)))
    evidence = tuple(c.evidence for c in dated) + tuple(c.evidence for c in undated)
    if due and due <= as_of:
        return [Finding(rule, MET, orders, evidence, tuple(counted), (), (param,))]
    missing = ((point("care-none", amount=amount, unit=unit),) if not earliest else
               (point("care-too-short", amount=amount, unit=unit, due=due),))
    status = NEEDS_DOCUMENTATION if not earliest else NOT_MET
    flags = waiving_flags(facts, profile.rules["red_flags"])
    if flags:
        return [Finding(rule, WAIVED, orders, evidence + tuple(f.evidence for f in flags),
                        tuple(counted) + waiver_points(flags), missing, (param,))]
    return [Finding(rule, status, orders, evidence, tuple(counted), missing, (param,),
                    data={"required": f"{amount} {unit}", "requirement_for": label})]
