"""Every fused interspace needs an indication at that level (rules/fusion_levels.yaml)."""
from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings.facts import Facts, Order
from terminology.levels import Interspace, LevelRange, format_interspaces

from . import deformity
from .finding import MET, NOT_MET, Finding
from .level_index import LevelIndex, quote
from .spec import Profile, RuleSpec
from .topics import LEVELS_NOT_DOCUMENTED

FUSION_CLASSES = ("fusion", "deformity_fusion")


@dataclass(frozen=True)
class LevelSupport:
    ordered: tuple[Interspace, ...]
    reasons: dict                      # interspace -> list of supporting reasons
    gaps: dict                         # interspace -> why it is not supported

    @property
    def supported(self) -> tuple[Interspace, ...]:
        return tuple(s for s in self.ordered if self.reasons[s])

    @property
    def unsupported(self) -> tuple[Interspace, ...]:
        return tuple(s for s in self.ordered if not self.reasons[s])


def _grade(severity: str | None) -> int:
    # An ungraded listhesis is at least grade 1: it meets "any grade" but not "grade 2 or more".
    return int(severity) if severity and severity.isdigit() else 1


def level_reasons(space: Interspace, index: LevelIndex, rule: RuleSpec, deformity_region, prior_fused) -> tuple[list, list]:
    reasons, gaps = [], []
    for fact in index.present("spondylolisthesis", space):
        if _grade(fact.severity) >= rule["min_listhesis_grade"]:
            reasons.append(f"spondylolisthesis grade {fact.severity or '1 (ungraded)'} — {quote(fact)}")
        else:
            gaps.append(f"spondylolisthesis grade {fact.severity or 'ungraded'} is below grade {rule['min_listhesis_grade']} — {quote(fact)}")
    for fact in index.present("instability", space):
        reasons.append(f"instability — {quote(fact)}")
    for name, param, words in (("translation_flexion_extension", "translation_mm", "translation"),
                               ("angulation_flexion_extension", "angulation_deg", "angulation")):
        for m in index.measured(name, space):
            line = f"{words} {m.value:g} {m.unit} on dynamic films ({rule.parameters[param].describe()}) — {m.evidence.render()}"
            (reasons if m.value is not None and rule.met(param, m.value) else gaps).append(line)
    for kind in ("pseudarthrosis", "hardware_failure"):
        for fact in index.present(kind, space):
            reasons.append(f"{kind.replace('_', ' ')} — {quote(fact)}")
    for fact in index.present("destabilizing_decompression", space):
        reasons.append(f"planned decompression destabilises the level — {quote(fact)}")
    if space in deformity_region:
        reasons.append("within the deformity being corrected")
    elif deformity_region and space in prior_fused:
        reasons.append("prior fusion spanned by the deformity correction")
    if not reasons:
        if index.present("stenosis", space):
            gaps.append("stenosis alone does not support fusion")
        for kind in ("stenosis", "instability"):
            for fact in index.absent(kind, space):
                gaps.append(f"imaging documents no {kind} here — {quote(fact)}")
        gaps = gaps or ["no instability, listhesis, deformity, pseudarthrosis or hardware failure documented here"]
    return reasons, gaps


def support(order: Order, facts: Facts, profile: Profile, index: LevelIndex | None = None,
            assessment: deformity.DeformityAssessment | None = None) -> LevelSupport:
    rule = profile.rules["fusion_levels"]
    index = index or LevelIndex(facts)
    assessment = assessment or deformity.assess(facts, profile.rules["deformity"])
    prior = index.spaces("prior_fusion")
    ordered = tuple(sorted({s for p in order.of_class(*FUSION_CLASSES) for s in p.interspaces}))
    reasons, gaps = {}, {}
    for space in ordered:
        reasons[space], gaps[space] = level_reasons(space, index, rule, assessment.region, prior)
    return LevelSupport(ordered, reasons, gaps)


def suggested_range(supported, ordered) -> LevelRange | None:
    """The supported levels as one range, when they are contiguous and fewer than ordered."""
    if not supported or len(supported) == len(ordered):
        return None
    candidate = LevelRange.from_interspaces(supported)
    return candidate if len(candidate.interspaces()) == len(supported) else None


def describe(result: LevelSupport) -> list[str]:
    lines = []
    for space in result.ordered:
        if result.reasons[space]:
            lines.append(f"{space}: supported — " + "; ".join(result.reasons[space]))
        else:
            lines.append(f"{space}: no documented indication — " + "; ".join(result.gaps[space]))
    return lines


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["fusion_levels"]
    index = LevelIndex(facts)
    shape = deformity.assess(facts, profile.rules["deformity"])
    findings = []
    for order in facts.spine_orders:
        if not order.of_class(*FUSION_CLASSES):
            continue
        result = support(order, facts, profile, index, shape)
        thresholds = ("min_listhesis_grade", "translation_mm", "angulation_deg")
        if not result.ordered:
            findings.append(Finding(rule, NOT_MET, (order,), (), (),
                                    ("the fusion order names no levels, so no level can be checked",), thresholds,
                                    topic=LEVELS_NOT_DOCUMENTED))
            continue
        lines = tuple(describe(result)) + tuple(f"Deformity not counted: {line}" for line in shape.shortfalls)
        evidence = tuple(dict.fromkeys(f.evidence for s in result.ordered for kind in
                                       ("spondylolisthesis", "instability", "pseudarthrosis", "hardware_failure",
                                        "destabilizing_decompression", "stenosis") for f in index.present(kind, s)))
        if not result.unsupported:
            findings.append(Finding(rule, MET, (order,), evidence, lines, (), thresholds))
            continue
        suggestion = suggested_range(result.supported, result.ordered)
        findings.append(Finding(rule, NOT_MET, (order,), evidence, lines,
                                (f"no documented indication at {format_interspaces(result.unsupported)}",),
                                thresholds, data={
                                    "unsupported": format_interspaces(result.unsupported),
                                    "supported": format_interspaces(result.supported) or "none",
                                    "suggested_range": str(suggestion) if suggestion else None,
                                    "ordered": format_interspaces(result.ordered),
                                    "procedure": "fusion"}))
    return findings
