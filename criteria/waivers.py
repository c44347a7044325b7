"""Documented red flags waive the conservative-care requirements (rules/red_flags.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts, RedFlag

from .finding import Point, point
from .spec import RuleSpec


def waiving_flags(facts: Facts, rule: RuleSpec) -> tuple[RedFlag, ...]:
    waiving = set(rule["waiving_flags"])
    return tuple(flag for flag in facts.red_flags if flag.kind in waiving)


def waiver_points(flags) -> tuple[Point, ...]:
    return tuple(point("red-flag", flag.evidence, flag=flag.kind) for flag in flags)
