"""Pelvic fixation needs a supported construct to the sacrum that is long, corrects a
deformity, or revises L5-S1 (rules/pelvic_fixation.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts
from terminology.levels import Interspace, format_interspaces

from . import deformity, fusion_levels
from .finding import MET, NOT_MET, Finding
from .level_index import LevelIndex
from .spec import Profile

L5_S1 = Interspace.parse("L5-S1")


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["pelvic_fixation"]
    orders = tuple(o for o in facts.spine_orders if o.of_class("pelvic_fixation"))
    if not orders:
        return []
    index = LevelIndex(facts)
    shape = deformity.assess(facts, profile.rules["deformity"])
    construct = set()
    for order in facts.spine_orders:
        if order.of_class(*fusion_levels.FUSION_CLASSES):
            construct.update(fusion_levels.support(order, facts, profile, index, shape).supported)
    revision = index.present("pseudarthrosis", L5_S1) + index.present("hardware_failure", L5_S1)
    counted = [f"Supported fusion construct: {format_interspaces(construct) or 'none'}"]
    reasons = []
    if L5_S1 in construct:
        if shape.meets:
            reasons.append("the construct to the sacrum corrects a deformity that meets the threshold")
        if len(construct) >= rule["long_construct_interspaces"]:
            reasons.append(f"long construct of {len(construct)} interspaces to the sacrum")
        if revision:
            reasons.append("revision of pseudarthrosis or hardware failure at L5-S1")
    counted += reasons + [f"Deformity not counted: {line}" for line in shape.shortfalls]
    evidence = shape.evidence + tuple(f.evidence for f in revision)
    if reasons:
        return [Finding(rule, MET, orders, evidence, tuple(counted), (), ("long_construct_interspaces",))]
    missing = []
    if L5_S1 not in construct:
        missing.append("no supported fusion construct reaches the sacrum")
    else:
        missing.append(f"the supported construct ({len(construct)} interspaces) is shorter than "
                       f"{rule['long_construct_interspaces']}, corrects no documented deformity, and revises nothing at L5-S1")
    return [Finding(rule, NOT_MET, orders, evidence, tuple(counted), tuple(missing), ("long_construct_interspaces",))]
