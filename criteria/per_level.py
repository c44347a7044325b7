"""The per-order, per-interspace scaffold shared by the level rules of a decompression (stenosis) and a
discectomy (herniation): the interspaces ordered, one line per interspace from the rule's own judge,
then MET, NOT_MET with the unsupported levels, or NEEDS_DOCUMENTATION when the order names no level."""
from __future__ import annotations

from typing import Callable, Iterable

from fhir_mappings.facts import Evidence, Order
from terminology.levels import Interspace, format_interspaces

from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, Finding, Point, point
from .fusion_levels import level_map
from .topics import LEVELS_NOT_DOCUMENTED

CLASSES = frozenset({"decompression"})

# A rule's judgement of one interspace: supported?, the line the letter shows, the evidence it read.
LevelJudge = Callable[[Interspace], tuple[bool, Point, Iterable[Evidence]]]


def judge_order(rule, order: Order, procs, procedure: str, thresholds: tuple[str, ...],
                judge: LevelJudge) -> Finding:
    ordered = tuple(sorted({s for p in procs for s in p.interspaces}))
    if not ordered:
        return Finding(rule, NEEDS_DOCUMENTATION, (order,), (), (), (point("levels-missing", procedure=procedure),),
                       thresholds, topic=LEVELS_NOT_DOCUMENTED, classes=CLASSES)
    lines, supported, evidence = [], [], []
    for space in ordered:
        ok, line, read = judge(space)
        lines.append(line)
        evidence += list(read)
        if ok:
            supported.append(space)
    unsupported = tuple(s for s in ordered if s not in supported)
    evidence = tuple(dict.fromkeys(evidence))
    levels = level_map(ordered, supported, unsupported)
    if not unsupported:
        return Finding(rule, MET, (order,), evidence, tuple(lines), (), thresholds, classes=CLASSES, levels=levels)
    return Finding(rule, NOT_MET, (order,), evidence, tuple(lines),
                   (point("no-indication-at", levels=format_interspaces(unsupported), procedure=procedure),),
                   thresholds, classes=CLASSES, levels=levels, data={
                       "unsupported": format_interspaces(unsupported),
                       "supported": format_interspaces(supported) or "none",
                       "suggested_range": None, "ordered": format_interspaces(ordered), "procedure": procedure})
