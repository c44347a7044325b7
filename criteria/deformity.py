"""Deformity that meets the correction threshold (rules/deformity.yaml): measurements,
a coded flat-back diagnosis, and the region a correction may span."""
from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings.facts import Evidence, Facts
from terminology.levels import Interspace, LevelRange, Vertebra

from .context import context_of
from .finding import INDICATED, Finding, Point, point
from .spec import Profile, RuleSpec

# measurement name -> (threshold parameter, plane)
CHECKS = (
    ("pi_ll_mismatch", "pi_ll_mismatch_deg", "sagittal"),
    ("sagittal_vertical_axis", "sva_cm", "sagittal"),
    ("pelvic_tilt", "pelvic_tilt_deg", "sagittal"),
    ("cobb_angle", "cobb_deg", "coronal"),
    ("thoracic_kyphosis", "thoracic_kyphosis_deg", "sagittal"),
)
LUMBAR = LevelRange(Vertebra.parse("T12"), Vertebra.parse("S1"))


@dataclass(frozen=True)
class DeformityAssessment:
    meets: bool
    reasons: tuple[Point, ...]        # what met a threshold, with the number and the evidence
    shortfalls: tuple[Point, ...]     # deformity documented but below threshold or unmeasured
    evidence: tuple[Evidence, ...]
    region: frozenset[Interspace]     # interspaces a correction may span
    headline: Point | None            # the first reason, for a summary


def assess(facts: Facts, rule: RuleSpec) -> DeformityAssessment:
    reasons, shortfalls, evidence, region = [], [], [], set()
    sagittal_region = LevelRange(Vertebra.parse(rule["sagittal_upper_level"]), Vertebra.parse("S1")).interspaces()
    for name, param, plane in CHECKS:
        for m in (m for m in facts.measurements if m.name == name and m.value is not None):
            p = rule.parameters[param]
            line = point("deformity-measure", m.evidence, measure=name, value=m.value, unit=m.unit,
                         threshold=p.value, comparison=p.comparison)
            if p.met_by(m.value):
                reasons.append(line)
                evidence.append(m.evidence)
                if plane == "sagittal":
                    region.update(sagittal_region)
                else:
                    spaces = [s for lvl in m.levels for s in lvl.interspaces()]
                    region.update(spaces or LUMBAR.interspaces())
            else:
                shortfalls.append(point("deformity-below-threshold", m.evidence, **line.values))
    if rule["flat_back_diagnosis"]:
        for d in (d for d in facts.diagnoses if d.valueset == "flat_back"):
            reasons.append(point("flat-back-diagnosis", d.evidence))
            evidence.append(d.evidence)
            region.update(sagittal_region)
    for fact in (f for f in facts.level_facts if f.kind == "deformity" and f.present):
        if fact.severity == "subtle":
            shortfalls.append(point("deformity-subtle", fact.evidence))
        elif not reasons:
            shortfalls.append(point("deformity-unmeasured", fact.evidence))
    return DeformityAssessment(bool(reasons), tuple(reasons), tuple(shortfalls), tuple(evidence), frozenset(region),
                               reasons[0] if reasons else None)


def thresholds(rule: RuleSpec) -> tuple[str, ...]:
    return tuple(rule.parameters)


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    """osteotomy-indicated whenever a spine order is signed and the deformity meets a threshold."""
    rule = profile.rules["deformity"]
    result = context_of(facts, profile).deformity
    if not result.meets:
        return []
    return [Finding(rule, INDICATED, facts.spine_orders, result.evidence, result.reasons, (), thresholds(rule),
                    data={"measure": result.headline}, classes=frozenset())]
