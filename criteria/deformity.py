"""Deformity that meets the correction threshold (rules/deformity.yaml): measurements,
a coded flat-back diagnosis, and the region a correction may span."""
from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings.facts import Evidence, Facts
from terminology.levels import Interspace, LevelRange, Vertebra

from .finding import INDICATED, Finding
from .spec import Profile, RuleSpec

# measurement name -> (threshold parameter, plane, words)
CHECKS = (
    ("pi_ll_mismatch", "pi_ll_mismatch_deg", "sagittal", "PI-LL mismatch"),
    ("sagittal_vertical_axis", "sva_cm", "sagittal", "SVA"),
    ("pelvic_tilt", "pelvic_tilt_deg", "sagittal", "pelvic tilt"),
    ("cobb_angle", "cobb_deg", "coronal", "Cobb angle"),
    ("thoracic_kyphosis", "thoracic_kyphosis_deg", "sagittal", "thoracic kyphosis"),
)
LUMBAR = LevelRange(Vertebra.parse("T12"), Vertebra.parse("S1"))


@dataclass(frozen=True)
class DeformityAssessment:
    meets: bool
    reasons: tuple[str, ...]          # what met a threshold, with the number and the evidence
    shortfalls: tuple[str, ...]       # deformity documented but below threshold or unmeasured
    evidence: tuple[Evidence, ...]
    region: frozenset[Interspace]     # interspaces a correction may span
    headline: str                     # the first reason, short, for a summary


def _fmt(value: float) -> str:
    return f"{value:g}"


def assess(facts: Facts, rule: RuleSpec) -> DeformityAssessment:
    reasons, shortfalls, evidence, region = [], [], [], set()
    headline = ""
    sagittal_region = LevelRange(Vertebra.parse(rule["sagittal_upper_level"]), Vertebra.parse("S1")).interspaces()
    for name, param, plane, words in CHECKS:
        for m in (m for m in facts.measurements if m.name == name and m.value is not None):
            p = rule.parameters[param]
            line = f"{words} {_fmt(m.value)} {m.unit} ({p.describe()}) — {m.evidence.render()}"
            if p.met_by(m.value):
                reasons.append(line)
                headline = headline or f"{words} {_fmt(m.value)}{'°' if m.unit == 'deg' else ' ' + m.unit}"
                evidence.append(m.evidence)
                if plane == "sagittal":
                    region.update(sagittal_region)
                else:
                    spaces = [s for lvl in m.levels for s in lvl.interspaces()]
                    region.update(spaces or LUMBAR.interspaces())
            else:
                shortfalls.append(f"{line}: below the threshold")
    if rule["flat_back_diagnosis"]:
        for d in (d for d in facts.diagnoses if d.valueset == "flat_back"):
            reasons.append(f"Flat-back diagnosis — {d.evidence.render()}")
            headline = headline or "flat-back syndrome"
            evidence.append(d.evidence)
            region.update(sagittal_region)
    for fact in (f for f in facts.level_facts if f.kind == "deformity" and f.present):
        if fact.severity == "subtle":
            shortfalls.append(f"Described as minor, not a significant deformity — {fact.evidence.render()}")
        elif not reasons:
            shortfalls.append(f"Deformity described without a measurement that meets a threshold — {fact.evidence.render()}")
    return DeformityAssessment(bool(reasons), tuple(reasons), tuple(shortfalls), tuple(evidence), frozenset(region), headline)


def thresholds(rule: RuleSpec) -> tuple[str, ...]:
    return tuple(rule.parameters)


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    """osteotomy-indicated whenever a spine order is signed and the deformity meets a threshold."""
    rule = profile.rules["deformity"]
    result = assess(facts, rule)
    if not result.meets:
        return []
    return [Finding(rule, INDICATED, facts.spine_orders, result.evidence, result.reasons, (), thresholds(rule),
                    data={"measure": result.headline})]
