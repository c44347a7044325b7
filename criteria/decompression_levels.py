"""Every decompressed interspace needs stenosis there (rules/decompression_levels.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts
from terminology.levels import format_interspaces

from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, Finding, point
from .fusion_levels import level_map
from .context import context_of
from .level_index import grade_rank, qualifying_stenosis
from .spec import Profile
from .topics import LEVELS_NOT_DOCUMENTED


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["decompression_levels"]
    context = context_of(facts, profile)
    index = context.index
    thresholds = ("min_stenosis_severity", "ungraded_stenosis_counts")
    findings = []
    classes = frozenset({"decompression"})
    for order in facts.spine_orders:
        # A discectomy (63030, 63035, 63042, 63043) is judged by its own rule (discectomy.yaml).
        procs = tuple(p for p in order.of_class("decompression") if not context.is_discectomy(p))
        if not procs:
            continue
        ordered = tuple(sorted({s for p in procs for s in p.interspaces}))
        if not ordered:
            findings.append(Finding(rule, NEEDS_DOCUMENTATION, (order,), (), (),
                                    (point("levels-missing", procedure="decompression"),), thresholds,
                                    topic=LEVELS_NOT_DOCUMENTED, classes=classes))
            continue
        lines, supported, evidence = [], [], []
        for space in ordered:
            present = index.from_chart("stenosis", space)
            graded = [f for f in present if grade_rank(f.severity) is not None]
            ok = qualifying_stenosis(index, space, rule)
            evidence += [f.evidence for f in present]
            absent = index.absent("stenosis", space)
            if ok:
                supported.append(space)
                why = tuple(point("stenosis", f.evidence, grade=f.severity or "ungraded") for f in ok)
                lines.append(point("level-supported", level=str(space), why=why))
            elif graded:
                why = tuple(point("stenosis-low-grade", f.evidence, grade=f.severity,
                                  needed=rule["min_stenosis_severity"]) for f in graded)
                lines.append(point("level-unsupported", level=str(space), why=why))
            elif present:
                why = tuple(point("stenosis-ungraded", f.evidence, needed=rule["min_stenosis_severity"])
                            for f in present)
                lines.append(point("level-unsupported", level=str(space), why=why))
            elif absent:
                why = tuple(point("imaging-negative", f.evidence, finding="stenosis") for f in absent)
                lines.append(point("level-unsupported", level=str(space), why=why))
                evidence += [f.evidence for f in absent]
            else:
                lines.append(point("level-unsupported", level=str(space), why=(point("no-stenosis-here"),)))
        unsupported = tuple(s for s in ordered if s not in supported)
        evidence = tuple(dict.fromkeys(evidence))
        levels = level_map(ordered, supported, unsupported)
        if not unsupported:
            findings.append(Finding(rule, MET, (order,), evidence, tuple(lines), (), thresholds, classes=classes,
                                    levels=levels))
            continue
        findings.append(Finding(rule, NOT_MET, (order,), evidence, tuple(lines),
                                (point("no-indication-at", levels=format_interspaces(unsupported),
                                       procedure="decompression"),), thresholds, classes=classes, levels=levels,
                                data={
                                    "unsupported": format_interspaces(unsupported),
                                    "supported": format_interspaces(supported) or "none",
                                    "suggested_range": None, "ordered": format_interspaces(ordered),
                                    "procedure": "decompression"}))
    return findings
