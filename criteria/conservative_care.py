"""Non-operative care as courses (care_courses): inside the recent window, continuous, long enough
for the indication, with the number of modalities the profile asks for (rules/conservative_care.yaml)."""
from __future__ import annotations

from datetime import timedelta

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts

from .care_courses import courses
from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, WAIVED, Finding, point
from .level_index import LevelIndex
from .spec import Profile, RuleSpec
from .waivers import assess_flags, by_waiver, waiver_points

FUSION_CLASSES = {"fusion", "deformity_fusion", "osteotomy_posterior", "osteotomy_three_column", "osteotomy_anterior"}
_REVISION = ("pseudarthrosis", "hardware_failure")
_SLIP_OR_MOTION = ("spondylolisthesis", "retrolisthesis", "instability") + _REVISION


def fusion_indication(facts: Facts) -> str:
    """revision: every fused level revises pseudarthrosis or hardware failure; discogenic: disc
    degeneration is diagnosed and no fused level shows a slip, motion or failed fusion; else fusion."""
    spaces = {s for o in facts.spine_orders for p in o.of_class("fusion", "deformity_fusion") for s in p.interspaces}
    if not spaces:
        return "fusion"
    index = LevelIndex(facts)
    if all(any(index.present(k, s) for k in _REVISION) for s in spaces):
        return "revision"
    if any(d.valueset == "disc_degeneration" for d in facts.diagnoses) and \
            not any(index.present(k, s) for k in _SLIP_OR_MOTION for s in spaces):
        return "discogenic"
    return "fusion"


_FUSION_REQUIREMENTS = {"fusion": "fusion_months", "revision": "revision_weeks", "discogenic": "discogenic_months"}


def requirement(classes: frozenset[str], rule: RuleSpec, indication: str = "fusion") -> tuple[str, int, str, str]:
    """(procedure term, amount, unit, parameter) of the strictest requirement; 'decompression alone' only without fusion."""
    options = []
    if "si_fusion" in classes:
        options.append(("si_fusion", "si_fusion_months"))
    if classes & FUSION_CLASSES:
        options.append((indication if indication != "fusion" else "fusion", _FUSION_REQUIREMENTS[indication]))
    elif "decompression" in classes:
        options.append(("decompression_alone", "decompression_weeks"))

    def days(option):
        p = rule.parameters[option[1]]
        return p.value * (7 if p.unit == "weeks" else 30)
    label, param = max(options, key=days)
    return label, rule[param], rule.parameters[param].unit, param


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["conservative_care"]
    orders = tuple(o for o in facts.spine_orders if o.classes & rule.applies_to)
    if not orders:
        return []
    return by_waiver(facts, profile, orders, lambda group: _evaluate(facts, profile, group))


def _evaluate(facts: Facts, profile: Profile, orders) -> list[Finding]:
    rule = profile.rules["conservative_care"]
    classes = frozenset().union(*(o.classes for o in orders))
    label, amount, unit, param = requirement(classes, rule, fusion_indication(facts))
    as_of = facts.order_date()
    window_start = add_months(as_of, -rule["window_months"])
    cover = {"medication": rule["medication_supply_days"], "injection": rule["injection_effect_days"]}
    found = courses(facts.care, as_of, window_start, rule["max_gap_days"], cover)
    dated = [c for c in facts.care if c.start and c.start <= as_of]
    undated = [c for c in facts.care if not c.start]
    best = max(found, key=lambda c: c.days(as_of), default=None)
    counted = [point("care-requirement", procedure=label, amount=amount, unit=unit, day=as_of),
               point("care-window", since=window_start, months=rule["window_months"])]
    for course in found:
        counted.append(point("care-course", *(r.evidence for r in course.records[:1]), start=course.start,
                             end=course.end(as_of), records=len(course.records), weeks=course.days(as_of) // 7,
                             kinds=course.kinds, ongoing=course.to_order))
    old = [c for c in dated if (c.end or c.start) < window_start]
    if old:
        counted.append(point("care-old", old[0].evidence, count=len(old), since=window_start))
    if undated:
        counted.append(point("care-undated", *(c.evidence for c in undated[:1]), count=len(undated)))
    kinds = tuple(sorted({k for c in found for k in c.kinds}))
    evidence = tuple(r.evidence for c in found for r in c.records) + tuple(c.evidence for c in undated)
    thresholds = (param, "window_months", "max_gap_days", "min_modalities")
    due = None
    if best is not None:
        due = add_months(best.start, amount) if unit == "months" else best.start + timedelta(weeks=amount)
    long_enough = due is not None and due <= best.end(as_of)
    missing = []
    if best is None:
        missing.append(point("care-none" if not dated else "care-not-recent", amount=amount, unit=unit,
                             since=window_start))
    elif not long_enough:
        missing.append(point("care-too-short", amount=amount, unit=unit, weeks=best.days(as_of) // 7))
    if best is not None and len(kinds) < rule["min_modalities"]:
        missing.append(point("care-modalities", count=len(kinds), needed=rule["min_modalities"], kinds=kinds))
    if not missing:
        return [Finding(rule, MET, orders, evidence, tuple(counted), (), thresholds)]
    status = NEEDS_DOCUMENTATION if not dated else NOT_MET
    flags, refused = assess_flags(facts, profile.rules["red_flags"], classes)
    if flags:
        return [Finding(rule, WAIVED, orders, evidence + tuple(f.evidence for f in flags),
                        tuple(counted) + waiver_points(flags), tuple(missing), thresholds)]
    # A documented flag that waives nothing is said with what is missing: why no waiver applied.
    return [Finding(rule, status, orders, evidence, tuple(counted), tuple(missing) + refused, thresholds,
                    data={"required": f"{amount} {unit}", "requirement_for": label})]
