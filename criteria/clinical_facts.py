"""What the new criteria share: the orders a rule applies to, and the chart's clinical facts
(fhir_mappings.facts.ClinicalFact) picked by kind and date."""
from __future__ import annotations

from datetime import date

from fhir_mappings.facts import ClinicalFact, Evidence, Facts, Order
from fhir_mappings.text.dates import find_dates

from .spec import RuleSpec


def orders_for(facts: Facts, rule: RuleSpec) -> tuple[Order, ...]:
    return tuple(o for o in facts.spine_orders if o.classes & rule.applies_to)


def of_kind(facts: Facts, *kinds: str, as_of: date | None = None) -> list[ClinicalFact]:
    """Facts of these kinds recorded on or before as_of (undated ones too), oldest first, undated first."""
    found = [f for f in facts.clinical if f.kind in kinds and (as_of is None or not f.evidence.day or f.evidence.day <= as_of)]
    return sorted(found, key=lambda f: f.evidence.day or date.min)


def latest(facts: Facts, kind: str, as_of: date | None = None) -> ClinicalFact | None:
    found = of_kind(facts, kind, as_of=as_of)
    return found[-1] if found else None


def stated_date(evidence: Evidence) -> date | None:
    """When the thing was done: a date the quoted text gives it ("MRI 3/2019", "HbA1c 7.4 % (2/2025)"),
    not after the record, else the record's date."""
    if evidence.quote:
        written = [d.day for d in find_dates(evidence.quote) if not evidence.day or d.day <= evidence.day]
        if written:
            return max(written)
    return evidence.day
