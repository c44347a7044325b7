"""Facts -> findings: runs every criterion of the profile over the facts."""
from __future__ import annotations

from fhir_mappings.facts import Facts

from . import (clinical_correlation, conservative_care, decompression_levels, deformity, discectomy, exploration,
               functional_impairment, fusion_levels, glycemic_control, imaging_outdated, inpatient, nicotine_use,
               osteotomy, pelvic_fixation, pt_documentation, si_fusion)
from .context import context_of
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
    "discectomy": discectomy.evaluate,
    "nicotine_use": nicotine_use.evaluate,
    "glycemic_control": glycemic_control.evaluate,
    "functional_impairment": functional_impairment.evaluate,
    "clinical_correlation": clinical_correlation.evaluate,
    "imaging_outdated": imaging_outdated.evaluate,
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
    context_of(facts, profile)   # built once here; every criterion asks for the same one
    findings: list[Finding] = []
    for evaluate_rule in CRITERIA.values():
        findings.extend(evaluate_rule(facts, profile))
    return findings
