"""The one shape every criterion returns: codes and values, never sentences.

A criterion says *what* it found as Points (a wording code plus plain values: numbers, ISO
dates, level text) and leaves every word to cards/wording.yaml, so a clinician can edit the
English without touching a rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from fhir_mappings.facts import Evidence, Order

from .spec import RuleSpec, Source

MET, NOT_MET, WAIVED, INDICATED, NOT_CHECKED = "met", "not-met", "waived", "indicated", "not-checked"
NEEDS_DOCUMENTATION = "needs-documentation"   # what would decide it is not in the chart (no levels, no dates)
NOTE = "note"   # informational (coding, bundling): shown, never blocks criteria-met


@dataclass(frozen=True)
class Point:
    """One thing counted or missing: `code` names its wording (cards/wording.yaml), `values` fill it."""
    code: str
    values: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()


def point(code: str, *evidence: Evidence, **values) -> Point:
    return Point(code, values, tuple(evidence))


@dataclass(frozen=True)
class Finding:
    rule: RuleSpec
    status: str                                  # met | not-met | needs-documentation | waived | indicated | note
    orders: tuple[Order, ...]
    evidence: tuple[Evidence, ...] = ()
    counted: tuple[Point, ...] = ()              # what was measured
    missing: tuple[Point, ...] = ()              # what the chart lacks
    thresholds: tuple[str, ...] = ()             # parameter names the decision used
    data: Mapping[str, Any] = field(default_factory=dict)   # rule-specific values for the summary
    topic: str | None = None                     # card topic; defaults to the rule's
    classes: frozenset[str] | None = None        # procedure classes judged; None: the whole order
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # ordered / supported / unsupported

    @property
    def criterion(self) -> str:
        return self.rule.id

    @property
    def card_topic(self) -> str | None:
        return self.topic or self.rule.topic

    @property
    def sources(self) -> tuple[Source, ...]:
        return self.rule.sources

    @property
    def missing_codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.missing)

    def concerns(self, procedure_class: str) -> bool:
        return self.classes is None or procedure_class in self.classes

    def cpt_codes(self, order: Order | None = None) -> tuple[str, ...]:
        orders = (order,) if order else self.orders
        return tuple(dict.fromkeys(c for o in orders for p in o.procedures if self.concerns(p.procedure_class)
                                   for c in p.codes))

    @property
    def blocks_criteria_met(self) -> bool:
        return self.status in (NOT_MET, NOT_CHECKED, NEEDS_DOCUMENTATION)
