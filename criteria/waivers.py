"""Documented red flags waive the conservative-care requirements (rules/red_flags.yaml), when they
deserve the name: asserted, recent, outside the excluded regions, a fracture acute and unstable, a
motor deficit graded; never for SI-joint fusion."""
from __future__ import annotations

from datetime import date

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts, RedFlag

from .finding import Point, point
from .spec import Profile, RuleSpec


def _why_not(flag: RedFlag, rule: RuleSpec, as_of: date, instability: bool) -> str | None:
    """Why a documented red flag does not waive the wait; None when it does."""
    day = flag.evidence.day
    if day is None:
        return "undated"
    if day > as_of or day < add_months(as_of, -rule["recency_months"]):
        return "not-recent"
    if flag.regions and flag.regions <= set(rule["excluded_regions"]):
        return "region"
    if flag.kind == "spinal_fracture":
        if "healed" in flag.qualifiers:
            return "healed"
        if day < add_months(as_of, -rule["fracture_acute_months"]):
            return "not-acute"
        if rule["fracture_needs_instability"] and not ("unstable" in flag.qualifiers or instability):
            return "stable"
    if flag.kind == "progressive_motor_deficit" and (flag.motor_grade is None or flag.motor_grade > rule["max_motor_grade"]):
        return "ungraded" if flag.motor_grade is None else "mild"
    return None


def assess_flags(facts: Facts, rule: RuleSpec, classes: frozenset[str]) -> tuple[tuple[RedFlag, ...], tuple[Point, ...]]:
    """(flags that waive, points for the flags that do not). SI-joint fusion is never waived: its
    criteria are diagnostic (blocks, tests), and no red flag stands in for them."""
    if "si_fusion" in classes:
        return (), ()
    kinds = set(rule["waiving_flags"])
    as_of = facts.order_date()
    instability = any(f.kind == "instability" and f.present for f in facts.level_facts)
    waiving, refused = [], []
    for flag in (f for f in facts.red_flags if f.kind in kinds):
        why = _why_not(flag, rule, as_of, instability)
        if why is None:
            waiving.append(flag)
        else:
            refused.append(point(f"red-flag-{why}", flag.evidence, flag=flag.kind,
                                 months=rule["recency_months"], acute=rule["fracture_acute_months"],
                                 grade=flag.motor_grade, max_grade=rule["max_motor_grade"],
                                 regions=tuple(sorted(flag.regions))))
    return tuple(waiving), tuple(refused)


def waiving_flags(facts: Facts, rule: RuleSpec, classes: frozenset[str] = frozenset()) -> tuple[RedFlag, ...]:
    return assess_flags(facts, rule, classes)[0]


def waiver_points(flags) -> tuple[Point, ...]:
    return tuple(point("red-flag", flag.evidence, flag=flag.kind) for flag in flags)


def by_waiver(facts: Facts, profile: Profile, orders, evaluate_group) -> list:
    """evaluate_group over the orders as one group, or over the SI-joint fusions apart when a red flag
    waives the other orders' wait (it never waives theirs)."""
    si = tuple(o for o in orders if "si_fusion" in o.classes)
    if si and len(si) < len(orders) and waiving_flags(facts, profile.rules["red_flags"]):
        return evaluate_group(tuple(o for o in orders if o not in si)) + evaluate_group(si)
    return evaluate_group(orders)
