"""Every decompressed interspace needs stenosis there (rules/decompression_levels.yaml)."""
from __future__ import annotations

from fhir_mappings.facts import Facts

from .context import context_of
from .finding import Finding, point
from .level_index import grade_rank, qualifying_stenosis
from .per_level import judge_order
from .spec import Profile

THRESHOLDS = ("min_stenosis_severity", "ungraded_stenosis_counts")


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["decompression_levels"]
    context = context_of(facts, profile)
    index = context.index

    def judge(space):
        present = index.from_chart("stenosis", space)
        graded = [f for f in present if grade_rank(f.severity) is not None]
        ok = qualifying_stenosis(index, space, rule)
        read = [f.evidence for f in present]
        if ok:
            why = tuple(point("stenosis", f.evidence, grade=f.severity or "ungraded") for f in ok)
            return True, point("level-supported", level=str(space), why=why), read
        if graded:
            why = tuple(point("stenosis-low-grade", f.evidence, grade=f.severity, needed=rule["min_stenosis_severity"])
                        for f in graded)
            return False, point("level-unsupported", level=str(space), why=why), read
        if present:
            why = tuple(point("stenosis-ungraded", f.evidence, needed=rule["min_stenosis_severity"]) for f in present)
            return False, point("level-unsupported", level=str(space), why=why), read
        absent = index.absent("stenosis", space)
        if absent:
            why = tuple(point("imaging-negative", f.evidence, finding="stenosis") for f in absent)
            return False, point("level-unsupported", level=str(space), why=why), read + [f.evidence for f in absent]
        return False, point("level-unsupported", level=str(space), why=(point("no-stenosis-here"),)), read

    findings = []
    for order in facts.spine_orders:
        # A discectomy (63030, 63035, 63042, 63043) is judged by its own rule (discectomy.yaml).
        procs = tuple(p for p in order.of_class("decompression") if not context.is_discectomy(p))
        if procs:
            findings.append(judge_order(rule, order, procs, "decompression", THRESHOLDS, judge))
    return findings
