"""The one shape every criterion returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from fhir_mappings.facts import Evidence, Order

from .spec import RuleSpec

MET, NOT_MET, WAIVED, INDICATED, NOT_CHECKED = "met", "not-met", "waived", "indicated", "not-checked"
NOTE = "note"   # informational (coding, bundling): shown, never blocks criteria-met


@dataclass(frozen=True)
class Finding:
    rule: RuleSpec
    status: str                                  # met | not-met | waived | indicated | note | not-checked
    orders: tuple[Order, ...]
    evidence: tuple[Evidence, ...] = ()
    counted: tuple[str, ...] = ()                # what was measured, in words ("8 visits over 8 weeks")
    missing: tuple[str, ...] = ()                # what the chart lacks, in words
    thresholds: tuple[str, ...] = ()             # parameter names the decision used
    data: Mapping[str, Any] = field(default_factory=dict)   # rule-specific (levels, suggested range)
    topic: str | None = None                     # card topic; defaults to the rule's

    @property
    def card_topic(self) -> str | None:
        return self.topic or self.rule.topic

    @property
    def blocks_criteria_met(self) -> bool:
        return self.status in (NOT_MET, NOT_CHECKED)
