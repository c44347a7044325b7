"""A discectomy (63030, 63035, 63042, 63043) needs a disc herniation compressing a nerve root at each
level (rules/discectomy.yaml); decompression_levels judges the other decompressions by stenosis."""
from __future__ import annotations

from fhir_mappings.facts import Facts
from terminology.levels import format_interspaces

from .clinical_facts import of_kind
from .context import context_of
from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, Finding, point
from .fusion_levels import level_map
from .spec import Profile
from .topics import LEVELS_NOT_DOCUMENTED

THRESHOLDS = ("root_compression_required",)


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["discectomy"]
    context = context_of(facts, profile)
    herniations = of_kind(facts, "disc_herniation", as_of=facts.order_date())
    classes = frozenset({"decompression"})
    findings = []
    for order in facts.spine_orders:
        procs = context.discectomies(order)
        if not procs:
            continue
        ordered = tuple(sorted({s for p in procs for s in p.interspaces}))
        if not ordered:
            findings.append(Finding(rule, NEEDS_DOCUMENTATION, (order,), (), (),
                                    (point("levels-missing", procedure="discectomy"),), THRESHOLDS,
                                    topic=LEVELS_NOT_DOCUMENTED, classes=classes))
            continue
        lines, supported, evidence = [], [], []
        for space in ordered:
            here = [h for h in herniations if space in h.interspaces]
            ok = [h for h in here if h.root_compression or not rule["root_compression_required"]]
            evidence += [h.evidence for h in here]
            if ok:
                supported.append(space)
                why = tuple(point("herniation", h.evidence, roots=", ".join(h.roots), side=h.side) for h in ok)
                lines.append(point("level-supported", level=str(space), why=why))
            elif here:
                why = tuple(point("herniation-no-root", h.evidence) for h in here)
                lines.append(point("level-unsupported", level=str(space), why=why))
            else:
                lines.append(point("level-unsupported", level=str(space), why=(point("no-herniation-here"),)))
        unsupported = tuple(s for s in ordered if s not in supported)
        evidence = tuple(dict.fromkeys(evidence))
        levels = level_map(ordered, supported, unsupported)
        if not unsupported:
            findings.append(Finding(rule, MET, (order,), evidence, tuple(lines), (), THRESHOLDS, classes=classes,
                                    levels=levels))
            continue
        findings.append(Finding(rule, NOT_MET, (order,), evidence, tuple(lines),
                                (point("no-indication-at", levels=format_interspaces(unsupported), procedure="discectomy"),),
                                THRESHOLDS, classes=classes, levels=levels, data={
                                    "unsupported": format_interspaces(unsupported),
                                    "supported": format_interspaces(supported) or "none",
                                    "suggested_range": None, "ordered": format_interspaces(ordered),
                                    "procedure": "discectomy"}))
    return findings
