"""An ordered osteotomy needs a deformity that meets the threshold (rules/osteotomy.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts
from terminology.levels import format_interspaces

from . import deformity
from .context import context_of
from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, Finding, point
from .spec import Profile

OSTEOTOMY_CLASSES = ("osteotomy_posterior", "osteotomy_three_column", "osteotomy_anterior")


def _outside(orders, region) -> tuple[str, ...]:
    """Osteotomy levels outside the region of the deformity that meets a threshold (a thoracic curve
    supports no lumbar osteotomy). An osteotomy written without levels cannot be placed (_unplaced)."""
    inside = {v.index for s in region for v in (s.upper, s.lower)}
    return tuple(str(level) for o in orders for p in o.of_class(*OSTEOTOMY_CLASSES) for level in p.levels
                 if any(v.index not in inside for v in level.vertebrae()))


def _unplaced(orders) -> bool:
    """An ordered osteotomy with no level written (order text, body site or note)."""
    return any(not p.levels for o in orders for p in o.of_class(*OSTEOTOMY_CLASSES))


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
    outside = _outside(orders, result.region) if result.meets else ()
    if outside:
        region = format_interspaces(sorted(result.region)) or "none"
        missing = (point("osteotomy-outside-deformity", levels=", ".join(outside), region=region),)
        return [Finding(merged, NOT_MET, orders, result.evidence, counted, missing,
                        deformity.thresholds(deformity_rule), classes=classes)]
    if result.meets and _unplaced(orders):
        # Whether it lies in the deformity cannot be checked: never "met" unchecked (the contract).
        region = format_interspaces(sorted(result.region)) or "none"
        return [Finding(merged, NEEDS_DOCUMENTATION, orders, result.evidence, counted,
                        (point("osteotomy-level-missing", region=region),), deformity.thresholds(deformity_rule),
                        classes=classes)]
    if result.meets:
        return [Finding(merged, MET, orders, result.evidence, counted, (), deformity.thresholds(deformity_rule),
                        classes=classes)]
    missing = [point("no-deformity-threshold")]
    if not result.shortfalls:
        missing.append(point("no-alignment-films"))
    return [Finding(merged, NOT_MET, orders, (), counted, tuple(missing), deformity.thresholds(deformity_rule),
                    classes=classes)]
