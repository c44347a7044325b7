"""Every decompressed interspace needs stenosis there (rules/decompression_levels.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts
from terminology.levels import format_interspaces

from .finding import MET, NOT_MET, Finding
from .level_index import STENOSIS_GRADES, LevelIndex, grade_rank, quote
from .spec import Profile
from .topics import LEVELS_NOT_DOCUMENTED


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["decompression_levels"]
    minimum = STENOSIS_GRADES.index(rule["min_stenosis_severity"])
    index = LevelIndex(facts)
    thresholds = ("min_stenosis_severity", "ungraded_stenosis_counts")
    findings = []
    for order in facts.spine_orders:
        procs = order.of_class("decompression")
        if not procs:
            continue
        ordered = tuple(sorted({s for p in procs for s in p.interspaces}))
        if not ordered:
            findings.append(Finding(rule, NOT_MET, (order,), (), (),
                                    ("the decompression order names no levels; document the levels and the imaging "
                                     "that shows stenosis at each",), thresholds, topic=LEVELS_NOT_DOCUMENTED))
            continue
        lines, supported, evidence = [], [], []
        for space in ordered:
            present = index.present("stenosis", space)
            graded = [f for f in present if grade_rank(f.severity) is not None]
            ok = [f for f in graded if grade_rank(f.severity) >= minimum]
            ok += [f for f in present if f.severity is None and rule["ungraded_stenosis_counts"]]
            evidence += [f.evidence for f in present]
            if ok:
                supported.append(space)
                lines.append(f"{space}: supported — " + "; ".join(
                    f"{f.severity or 'ungraded'} stenosis — {quote(f)}" for f in ok))
            elif graded:
                lines.append(f"{space}: stenosis graded below {rule['min_stenosis_severity']} — " +
                             "; ".join(quote(f) for f in graded))
            elif index.absent("stenosis", space):
                lines.append(f"{space}: imaging documents no significant stenosis — " +
                             "; ".join(quote(f) for f in index.absent("stenosis", space)))
                evidence += [f.evidence for f in index.absent("stenosis", space)]
            else:
                lines.append(f"{space}: no stenosis documented at this level")
        unsupported = tuple(s for s in ordered if s not in supported)
        evidence = tuple(dict.fromkeys(evidence))
        if not unsupported:
            findings.append(Finding(rule, MET, (order,), evidence, tuple(lines), (), thresholds))
            continue
        findings.append(Finding(rule, NOT_MET, (order,), evidence, tuple(lines),
                                (f"no documented stenosis at {format_interspaces(unsupported)}",), thresholds, data={
                                    "unsupported": format_interspaces(unsupported),
                                    "supported": format_interspaces(supported) or "none",
                                    "suggested_range": None, "ordered": format_interspaces(ordered),
                                    "procedure": "decompression"}))
    return findings
