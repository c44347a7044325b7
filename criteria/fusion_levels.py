"""Every fused interspace needs an indication at that level (rules/fusion_levels.yaml)."""
from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings.facts import Facts, Order
from terminology.levels import Interspace, LevelRange, format_interspaces

from . import deformity
from .context import context_of
from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, Finding, Point, point
from .level_index import LevelIndex, qualifying_stenosis
from .spec import Profile, RuleSpec
from .topics import LEVELS_NOT_DOCUMENTED

FUSION_CLASSES = ("fusion", "deformity_fusion")
# Instrumentation and bone graft are judged with the fusion they serve.
CLASSES = frozenset(FUSION_CLASSES + ("instrumentation", "graft"))


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


def level_reasons(space: Interspace, index: LevelIndex, rule: RuleSpec, deformity_region, prior_fused,
                  stenosis_rule: RuleSpec | None = None) -> tuple[list, list]:
    """Points for and against fusing one interspace. stenosis_rule: decompression_levels, whose grade
    decides whether stenosis at the level needs decompression (what a low-grade slip needs)."""
    reasons, gaps = [], []
    stenosis = qualifying_stenosis(index, space, stenosis_rule) if stenosis_rule else []
    with_stenosis = tuple(point("stenosis", f.evidence, grade=f.severity or "ungraded") for f in stenosis[:1])
    for fact in index.present("spondylolisthesis", space):
        grade = _grade(fact.severity)
        if grade < rule["min_listhesis_grade"]:
            gaps.append(point("listhesis-low-grade", fact.evidence, grade=fact.severity or "1",
                              needed=rule["min_listhesis_grade"]))
        elif grade >= rule["listhesis_alone_grade"]:
            reasons.append(point("listhesis", fact.evidence, grade=fact.severity or "1", graded=bool(fact.severity)))
        elif stenosis:
            reasons.append(point("listhesis-with-stenosis", fact.evidence, *(f.evidence for f in stenosis[:1]),
                                 grade=fact.severity or "1", graded=bool(fact.severity), why=with_stenosis))
        else:
            gaps.append(point("listhesis-without-stenosis", fact.evidence, grade=fact.severity or "1",
                              alone=rule["listhesis_alone_grade"]))
    retro = rule.parameters["retrolisthesis_mm"]
    for fact in index.present("retrolisthesis", space):
        values = dict(value=fact.value, threshold=retro.value, comparison=retro.comparison)
        if fact.value is None or not retro.met_by(fact.value):
            gaps.append(point("retrolisthesis-below", fact.evidence, **values))
        elif stenosis:
            reasons.append(point("retrolisthesis-with-stenosis", fact.evidence, why=with_stenosis, **values))
        else:
            gaps.append(point("retrolisthesis-without-stenosis", fact.evidence, **values))
    for fact in index.present("instability", space):
        reasons.append(point("instability", fact.evidence))
    for name, param in (("translation_flexion_extension", "translation_mm"),
                        ("angulation_flexion_extension", "angulation_deg")):
        for m in index.measured(name, space):
            p = rule.parameters[param]
            line = point("dynamic-motion", m.evidence, measure=name, value=m.value, unit=m.unit,
                         threshold=p.value, comparison=p.comparison)
            (reasons if m.value is not None and rule.met(param, m.value) else gaps).append(line)
    for kind in ("pseudarthrosis", "hardware_failure"):
        for fact in index.present(kind, space):
            reasons.append(point(kind.replace("_", "-"), fact.evidence))
    for fact in index.present("destabilizing_decompression", space):
        reasons.append(point("destabilizing-decompression", fact.evidence))
    if space in deformity_region:
        reasons.append(point("in-deformity"))
    elif deformity_region and space in prior_fused:
        reasons.append(point("prior-fusion-in-correction"))
    if not reasons:
        if index.present("stenosis", space):
            gaps.append(point("stenosis-alone", *(f.evidence for f in index.present("stenosis", space)[:1])))
        for kind in ("stenosis", "instability"):
            for fact in index.absent(kind, space):
                gaps.append(point("imaging-negative", fact.evidence, finding=kind))
        gaps = gaps or [point("no-indication")]
    return reasons, gaps


def support(order: Order, facts: Facts, profile: Profile, index: LevelIndex | None = None,
            assessment: deformity.DeformityAssessment | None = None) -> LevelSupport:
    rule = profile.rules["fusion_levels"]
    context = context_of(facts, profile)
    index = index or context.index
    assessment = assessment or context.deformity
    prior = index.spaces("prior_fusion")
    ordered = tuple(sorted({s for p in order.of_class(*FUSION_CLASSES) for s in p.interspaces}))
    reasons, gaps = {}, {}
    for space in ordered:
        reasons[space], gaps[space] = level_reasons(space, index, rule, assessment.region, prior,
                                                    profile.rules["decompression_levels"])
    return LevelSupport(ordered, reasons, gaps)


def suggested_range(supported, ordered) -> LevelRange | None:
    """The supported levels as one range, when they are contiguous and fewer than ordered."""
    if not supported or len(supported) == len(ordered):
        return None
    candidate = LevelRange.from_interspaces(supported)
    return candidate if len(candidate.interspaces()) == len(supported) else None


def describe(result: LevelSupport) -> list[Point]:
    """One point per ordered interspace: supported (with why) or not (with what the chart says)."""
    return [point("level-supported" if result.reasons[space] else "level-unsupported",
                  level=str(space), why=tuple(result.reasons[space] or result.gaps[space]))
            for space in result.ordered]


def level_map(ordered, supported, unsupported) -> dict:
    return {"ordered": tuple(map(str, ordered)), "supported": tuple(map(str, supported)),
            "unsupported": tuple(map(str, unsupported))}


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["fusion_levels"]
    context = context_of(facts, profile)
    index, shape = context.index, context.deformity
    findings = []
    for order in facts.spine_orders:
        if not order.of_class(*FUSION_CLASSES):
            continue
        result = support(order, facts, profile, index, shape)
        thresholds = ("min_listhesis_grade", "listhesis_alone_grade", "retrolisthesis_mm", "translation_mm",
                      "angulation_deg")
        if not result.ordered:
            findings.append(Finding(rule, NEEDS_DOCUMENTATION, (order,), (), (),
                                    (point("levels-missing", procedure="fusion"),), thresholds,
                                    topic=LEVELS_NOT_DOCUMENTED, classes=CLASSES))
            continue
        counted = tuple(describe(result)) + tuple(point("deformity-not-counted", why=p) for p in shape.shortfalls)
        evidence = tuple(dict.fromkeys(f.evidence for s in result.ordered for kind in
                                       ("spondylolisthesis", "retrolisthesis", "instability", "pseudarthrosis", "hardware_failure",
                                        "destabilizing_decompression", "stenosis") for f in index.present(kind, s)))
        levels = level_map(result.ordered, result.supported, result.unsupported)
        if not result.unsupported:
            findings.append(Finding(rule, MET, (order,), evidence, counted, (), thresholds, classes=CLASSES,
                                    levels=levels))
            continue
        suggestion = suggested_range(result.supported, result.ordered)
        findings.append(Finding(rule, NOT_MET, (order,), evidence, counted,
                                (point("no-indication-at", levels=format_interspaces(result.unsupported),
                                       procedure="fusion"),),
                                thresholds, classes=CLASSES, levels=levels, data={
                                    "unsupported": format_interspaces(result.unsupported),
                                    "supported": format_interspaces(result.supported) or "none",
                                    "suggested_range": str(suggestion) if suggestion else None,
                                    "ordered": format_interspaces(result.ordered),
                                    "procedure": "fusion"}))
    return findings
