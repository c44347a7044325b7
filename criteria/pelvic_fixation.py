"""Pelvic fixation needs a supported construct to the sacrum that is long, corrects a
deformity, or revises L5-S1 (rules/pelvic_fixation.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts
from terminology.levels import Interspace, format_interspaces

from . import fusion_levels
from .finding import MET, NOT_MET, Finding, point
from .context import context_of
from .spec import Profile

L5_S1 = Interspace.parse("L5-S1")


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["pelvic_fixation"]
    orders = tuple(o for o in facts.spine_orders if o.of_class("pelvic_fixation"))
    if not orders:
        return []
    context = context_of(facts, profile)
    index, shape = context.index, context.deformity
    construct = set()
    for order in facts.spine_orders:
        if order.of_class(*fusion_levels.FUSION_CLASSES):
            construct.update(fusion_levels.support(order, facts, profile, index, shape).supported)
    revision = index.present("pseudarthrosis", L5_S1) + index.present("hardware_failure", L5_S1)
    counted = [point("construct", levels=format_interspaces(construct) or "none")]
    reasons = []
    if L5_S1 in construct:
        if shape.meets and L5_S1 in shape.region:
            # A deformity whose correction reaches the sacrum: a thoracic curve or kyphosis does not.
            reasons.append(point("pelvic-for-deformity"))
        if len(construct) >= rule["long_construct_interspaces"]:
            reasons.append(point("pelvic-long-construct", count=len(construct)))
        if revision:
            reasons.append(point("pelvic-revision", *(f.evidence for f in revision)))
    counted += reasons + [point("deformity-not-counted", why=p) for p in shape.shortfalls]
    evidence = shape.evidence + tuple(f.evidence for f in revision)
    classes = frozenset({"pelvic_fixation"})
    if reasons:
        return [Finding(rule, MET, orders, evidence, tuple(counted), (), ("long_construct_interspaces",),
                        classes=classes)]
    if L5_S1 not in construct:
        missing = [point("pelvic-no-sacral-construct")]
    else:
        missing = [point("pelvic-short-construct", count=len(construct), needed=rule["long_construct_interspaces"])]
    return [Finding(rule, NOT_MET, orders, evidence, tuple(counted), tuple(missing), ("long_construct_interspaces",),
                    classes=classes, data={"construct": format_interspaces(construct) or "none"})]
