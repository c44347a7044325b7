"""Deformity that meets the correction threshold (rules/deformity.yaml): measurements,
a coded flat-back diagnosis, and the region a correction may span."""
from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings.facts import Evidence, Facts
from terminology.levels import Interspace, LevelRange, Vertebra

from .context import context_of
from .finding import INDICATED, Finding, Point, point
from .spec import COMPARISONS, Profile, RuleSpec

# measurement name -> (threshold parameter, plane): the plane says which region a correction may span
# (sagittal: sagittal_upper_level to S1; coronal: the curve's levels; thoracic: thoracic_region only).
CHECKS = (
    ("pi_ll_mismatch", "pi_ll_mismatch_deg", "sagittal"),
    ("sagittal_vertical_axis", "sva_cm", "sagittal"),
    ("pelvic_tilt", "pelvic_tilt_deg", "sagittal"),
    ("cobb_angle", "cobb_deg", "coronal"),
    ("thoracic_kyphosis", "thoracic_kyphosis_deg", "thoracic"),
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


def pi_ll_threshold(facts: Facts, rule: RuleSpec) -> tuple[float, int | None]:
    """(PI-LL threshold, age it was adjusted for): with age-adjusted targets, the SRS-Schwab '+' width
    is measured from the patient's age-group target (Lafage 2016) instead of from zero."""
    base = rule["pi_ll_mismatch_deg"]
    age = facts.age()
    if not rule["age_adjusted_pi_ll"] or age is None:
        return base, None
    target = max((t for start, t in rule["age_pi_ll_targets"] if age >= start), default=0)
    return max(base, target + base), age


def _functional_impairment(facts: Facts, rule: RuleSpec) -> list:
    """ODI or pain at the profile's level (Aetna: a curve over 50 degrees with functional impairment)."""
    found = [m for m in facts.measurements if m.value is not None and (
        (m.name == "odi" and m.value >= rule["impairment_odi"]) or
        (m.name == "pain_score" and m.value >= rule["impairment_pain"]))]
    return found


def assess(facts: Facts, rule: RuleSpec) -> DeformityAssessment:
    reasons, shortfalls, evidence, region = [], [], [], set()
    sagittal_region = LevelRange(Vertebra.parse(rule["sagittal_upper_level"]), Vertebra.parse("S1")).interspaces()
    pi_ll, age = pi_ll_threshold(facts, rule)
    impairment = _functional_impairment(facts, rule)
    for name, param, plane in CHECKS:
        for m in (m for m in facts.measurements if m.name == name and m.value is not None):
            p = rule.parameters[param]
            threshold = pi_ll if name == "pi_ll_mismatch" else p.value
            line = point("deformity-measure", m.evidence, measure=name, value=m.value, unit=m.unit,
                         threshold=threshold, comparison=p.comparison, age=age if name == "pi_ll_mismatch" else None)
            met = p.met_by(m.value) if threshold == p.value else COMPARISONS[p.comparison](m.value, threshold)
            if met and name == "cobb_angle" and rule["cobb_needs_impairment"] and not impairment:
                shortfalls.append(point("deformity-no-impairment", m.evidence, **line.values,
                                        odi=rule["impairment_odi"], pain=rule["impairment_pain"]))
                continue
            if met:
                reasons.append(line)
                evidence.append(m.evidence)
                if plane == "sagittal":
                    region.update(sagittal_region)
                elif plane == "thoracic":
                    region.update(LevelRange.parse(rule["thoracic_region"]).interspaces())
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
