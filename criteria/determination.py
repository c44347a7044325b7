"""Findings -> one determination per spine order and per CPT code (contract, 'Determinations').

meets: every criterion checked is met (or waived). does-not-meet: a criterion is documented as
not met. needs-documentation: what would decide it is not in the chart, or part of the chart
could not be read. The worst wins: does-not-meet > needs-documentation > meets.
"""
from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings.facts import Facts, Order

from .finding import MET, NEEDS_DOCUMENTATION, NOT_CHECKED, NOT_MET, NOTE, WAIVED, Finding

MEETS, DOES_NOT_MEET = "meets", "does-not-meet"
NEEDS_DOC = "needs-documentation"
_RANK = {MEETS: 0, NEEDS_DOC: 1, DOES_NOT_MEET: 2}
_EFFECT = {NOT_MET: DOES_NOT_MEET, NEEDS_DOCUMENTATION: NEEDS_DOC, NOT_CHECKED: NEEDS_DOC, MET: MEETS, WAIVED: MEETS}


@dataclass(frozen=True)
class CodeDetermination:
    code: str                          # CPT code as ordered (add-on codes keep their '+')
    procedure_class: str
    determination: str
    findings: tuple[Finding, ...]      # the findings that decided it (the gaps, or every check when it meets)
    bundled: bool = False              # not separately reportable beside the other procedures


@dataclass(frozen=True)
class OrderDetermination:
    order: Order
    determination: str
    codes: tuple[CodeDetermination, ...]
    findings: tuple[Finding, ...]      # every finding about this order
    data_unavailable: bool = False

    @property
    def gaps(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if _EFFECT.get(f.status, MEETS) != MEETS)


def _worst(values) -> str:
    return max(values, key=_RANK.__getitem__, default=MEETS)


def effect(finding: Finding) -> str | None:
    """What a finding does to a determination; None for notes and indications (they decide nothing)."""
    return _EFFECT.get(finding.status)


def _about(finding: Finding, order: Order) -> bool:
    return any(o.reference == order.reference for o in finding.orders)


def determine_order(order: Order, findings, unavailable: bool) -> OrderDetermination:
    mine = tuple(f for f in findings if _about(f, order))
    judged = [f for f in mine if effect(f) is not None]
    codes = []
    for proc in order.procedures:
        about = [f for f in judged if f.concerns(proc.procedure_class)]
        bundled = any(f.status == NOTE and f.concerns(proc.procedure_class) and f.classes for f in mine)
        value = _worst([effect(f) for f in about] + ([NEEDS_DOC] if unavailable else [])
                       + ([DOES_NOT_MEET] if bundled else []))
        deciding = tuple(f for f in about if effect(f) == value) if value != MEETS else tuple(about)
        if bundled:
            deciding += tuple(f for f in mine if f.status == NOTE and f.concerns(proc.procedure_class))
        for code in proc.codes:
            codes.append(CodeDetermination(code, proc.procedure_class, value, deciding, bundled))
    # Bundling is a coding matter: it marks the code, not the order.
    value = _worst([effect(f) for f in judged] + ([NEEDS_DOC] if unavailable else []))
    return OrderDetermination(order, value, tuple(codes), mine, unavailable)


def determine(facts: Facts, findings) -> tuple[OrderDetermination, ...]:
    unavailable = bool(facts.unavailable)
    return tuple(determine_order(order, findings, unavailable) for order in facts.spine_orders)
