"""An ordered osteotomy needs a deformity that meets the threshold (rules/osteotomy.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts

from . import deformity
from .context import context_of
from .finding import MET, NOT_MET, Finding, point
from .spec import Profile

OSTEOTOMY_CLASSES = ("osteotomy_posterior", "osteotomy_three_column", "osteotomy_anterior")


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["osteotomy"]
    orders = tuple(o for o in facts.spine_orders if o.of_class(*OSTEOTOMY_CLASSES))
    if not orders:
        return []
    deformity_rule = profile.rules["deformity"]
    result = context_of(facts, profile).deformity
    # The thresholds belong to the deformity rule; show them with this rule's card.
    merged = type(rule)(rule.id, rule.title, rule.topic, rule.description, rule.applies_to,
                        deformity_rule.parameters, rule.sources + deformity_rule.sources, rule.profile)
    counted = result.reasons + result.shortfalls
    classes = frozenset(OSTEOTOMY_CLASSES)
    if result.meets:
        return [Finding(merged, MET, orders, result.evidence, counted, (), deformity.thresholds(deformity_rule),
                        classes=classes)]
    missing = [point("no-deformity-threshold")]
    if not result.shortfalls:
        missing.append(point("no-alignment-films"))
    return [Finding(merged, NOT_MET, orders, (), counted, tuple(missing), deformity.thresholds(deformity_rule),
                    classes=classes)]
