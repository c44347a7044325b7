"""Exploration of fusion (22830) beside another spine procedure is bundled (rules/exploration.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts

from .finding import NOTE, Finding
from .spec import Profile

OTHER_SPINE = {"fusion", "deformity_fusion", "decompression", "osteotomy_posterior", "osteotomy_three_column",
               "osteotomy_anterior", "instrumentation", "pelvic_fixation"}


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["exploration"]
    exploring = tuple(o for o in facts.spine_orders if o.of_class("exploration"))
    others = sorted({c for o in facts.spine_orders for c in o.classes} & OTHER_SPINE)
    if not exploring or not others:
        return []
    counted = (f"Exploration ordered with: {', '.join(c.replace('_', ' ') for c in others)}",)
    missing = ("exploration of fusion is incidental to the other spine procedures in the same region and not "
               "separately reportable unless it is done at a distinct level",)
    return [Finding(rule, NOTE, exploring, (), counted, missing, ())]
