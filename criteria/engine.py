"""Facts -> findings: runs every criterion of the profile over the facts."""
from __future__ import annotations

from fhir_mappings.facts import Facts

from . import (conservative_care, decompression_levels, deformity, exploration, fusion_levels, inpatient, osteotomy,
               pelvic_fixation, pt_documentation, si_fusion)
from .finding import Finding
from .spec import DEFAULT_PROFILE, Profile, load_profile

# One evaluate() per rule file that carries a topic; checked against the data at start-up.
CRITERIA = {
    "pt_documentation": pt_documentation.evaluate,
    "conservative_care": conservative_care.evaluate,
    "fusion_levels": fusion_levels.evaluate,
    "decompression_levels": decompression_levels.evaluate,
    "deformity": deformity.evaluate,
    "osteotomy": osteotomy.evaluate,
    "si_fusion": si_fusion.evaluate,
    "pelvic_fixation": pelvic_fixation.evaluate,
    "exploration": exploration.evaluate,
    "inpatient": inpatient.evaluate,
}


def check_registry(profile: Profile) -> None:
    with_topic = {rule_id for rule_id, rule in profile.rules.items() if rule.topic}
    if with_topic != set(CRITERIA):
        raise RuntimeError(f"rules without code: {sorted(with_topic - set(CRITERIA))}; "
                           f"code without rules: {sorted(set(CRITERIA) - with_topic)}")


def evaluate(facts: Facts, profile_id: str = DEFAULT_PROFILE) -> list[Finding]:
    profile = load_profile(profile_id)
    if not facts.spine_orders:
        return []
    findings: list[Finding] = []
    for evaluate_rule in CRITERIA.values():
        findings.extend(evaluate_rule(facts, profile))
    return findings
