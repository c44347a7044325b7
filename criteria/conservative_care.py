"""Total non-operative care: first dated care record to the order, against the longest
requirement among the ordered procedures."""
from __future__ import annotations

from datetime import timedelta

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts

from .finding import MET, NOT_MET, WAIVED, Finding
from .spec import Profile, RuleSpec
from .waivers import waiver_lines, waiving_flags

FUSION_CLASSES = {"fusion", "deformity_fusion", "osteotomy_posterior", "osteotomy_three_column", "osteotomy_anterior"}


def requirement(classes: frozenset[str], rule: RuleSpec) -> tuple[str, int, str, str]:
    """(label, amount, unit, parameter) of the strictest requirement; 'decompression alone' only without fusion."""
    options = []
    if "si_fusion" in classes:
        options.append(("SI-joint fusion", rule["si_fusion_months"] * 30, rule["si_fusion_months"], "months", "si_fusion_months"))
    if classes & FUSION_CLASSES:
        options.append(("fusion", rule["fusion_months"] * 30, rule["fusion_months"], "months", "fusion_months"))
    elif "decompression" in classes:
        options.append(("decompression alone", rule["decompression_weeks"] * 7, rule["decompression_weeks"], "weeks", "decompression_weeks"))
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
    counted = [f"Requirement for {label}: at least {amount} {unit} of non-operative care before {as_of.isoformat()}"]
    if earliest:
        days = (as_of - earliest).days
        counted.append(f"First dated non-operative care {earliest.isoformat()}: {days // 7} week(s) "
                       f"({days // 30} month(s)) before the order")
        kinds = sorted({c.kind.replace('_', ' ') for c in dated})
        counted.append(f"Care documented: {', '.join(kinds)}")
    if undated:
        counted.append(f"{len(undated)} undated mention(s) of care (not counted)")
    evidence = tuple(c.evidence for c in dated) + tuple(c.evidence for c in undated)
    if due and due <= as_of:
        return [Finding(rule, MET, orders, evidence, tuple(counted), (), (param,))]
    missing = (("no dated non-operative care is documented",) if not earliest else
               (f"documented care reaches {amount} {unit} only on {due.isoformat()}",))
    flags = waiving_flags(facts, profile.rules["red_flags"])
    if flags:
        return [Finding(rule, WAIVED, orders, evidence + tuple(f.evidence for f in flags),
                        tuple(counted) + waiver_lines(flags), missing, (param,))]
    return [Finding(rule, NOT_MET, orders, evidence, tuple(counted), missing, (param,),
                    data={"required": f"{amount} {unit}", "requirement_for": label})]
