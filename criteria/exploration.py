"""Exploration of fusion (22830) beside another spine procedure is bundled (rules/exploration.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts

from .finding import NOTE, Finding, point
from .spec import Profile

OTHER_SPINE = {"fusion", "deformity_fusion", "decompression", "osteotomy_posterior", "osteotomy_three_column",
               "osteotomy_anterior", "instrumentation", "pelvic_fixation"}


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["exploration"]
    exploring = tuple(o for o in facts.spine_orders if o.of_class("exploration"))
    others = sorted({c for o in facts.spine_orders for c in o.classes} & OTHER_SPINE)
    if not exploring or not others:
        return []
    counted = (point("exploration-with", procedures=tuple(others)),)
    missing = (point("exploration-bundled"),)
    return [Finding(rule, NOTE, exploring, (), counted, missing, (), classes=frozenset({"exploration"}))]
