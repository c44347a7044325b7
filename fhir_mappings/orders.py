"""Draft ServiceRequests -> ordered spine procedures with their levels.

Draft orders are few and small, so each is validated with the fhir.resources R4B model:
an order we cannot read is the client's error, not a silent 'no cards'.
"""
from __future__ import annotations

import re

from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from terminology import cpt, levels
from terminology.conservative_care import procedure_classes_in_text
from terminology.phrases import compile_phrases
from terminology.systems import CPT

from .dates import parse_date
from .facts import Order, OrderedProcedure
from .resources import codings, concept_texts, note_texts, reference
from .text.rules import load_text_data

# Procedures that share levels with the construct they belong to.
FAMILY = {
    "fusion": "fusion", "deformity_fusion": "fusion", "instrumentation": "fusion", "graft": "fusion",
    "exploration": "exploration", "decompression": "decompression", "si_fusion": "si_fusion",
    "pelvic_fixation": "pelvic_fixation", "osteotomy_posterior": "osteotomy",
    "osteotomy_three_column": "osteotomy", "osteotomy_anterior": "osteotomy",
}


class MappingError(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def validate_order(resource: dict, field: str) -> None:
    try:
        ServiceRequest.model_validate(resource)
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first["loc"])
        raise MappingError(f"draft ServiceRequest is not valid FHIR R4: {where or 'resource'}: {first['msg']}",
                           f"{field}.{where}" if where else field) from None


def _order_texts(resource: dict) -> list[str]:
    texts = list(concept_texts(resource, "code"))
    for field in ("orderDetail", "bodySite", "reasonCode"):
        texts.extend(concept_texts(resource, field))
    texts.extend(note_texts(resource))
    return texts


def _cpt_codes(resource: dict) -> list[cpt.CptCode]:
    found = []
    for system, code in codings(resource, "code", "orderDetail"):
        if system in (CPT, None):
            entry = cpt.lookup(code)
            if entry and entry not in found:
                found.append(entry)
    return found


# A prior-level word right before a level ("prior L4-L5", "s/p L5-S1"), not inside a token ("a/prior").
_PRIOR = re.compile(rf"(?<!/){compile_phrases(load_text_data('order_words.yaml')['prior_levels']).pattern}\s+\Z",
                    re.IGNORECASE)


def _levels_by_family(texts: list[str], families: set[str]) -> dict[str | None, list]:
    """Each level mention goes to the nearest procedure phrase in the same text;
    mentions in a text that names no procedure (bodySite 'L4-L5') go to key None."""
    assigned: dict[str | None, list] = {}
    for text in texts:
        phrases = [(FAMILY.get(cls), m) for cls, m in procedure_classes_in_text(text)]
        phrases = [(fam, m) for fam, m in phrases if fam in families] or []
        for mention in levels.find_levels(text):
            if _PRIOR.search(text, max(0, mention.start - 30), mention.start):
                continue     # the levels of what was done before ("exploration of prior L4-L5 fusion")
            family = None
            if phrases:
                def distance(item):
                    m = item[1]
                    return mention.start - m.end() if m.end() <= mention.start else m.start() - mention.end if m.start() >= mention.end else 0
                family = min(phrases, key=distance)[0]
            assigned.setdefault(family, []).append(mention.range)
    return assigned


def map_order(resource: dict) -> Order:
    texts = _order_texts(resource)
    coded = _cpt_codes(resource)
    by_class: dict[str, list[str]] = {}
    if coded:
        for entry in coded:
            by_class.setdefault(entry.procedure_class, []).append(entry.code)
    else:
        for text in texts:
            for cls, _ in procedure_classes_in_text(text):
                by_class.setdefault(cls, [])
    families = {FAMILY[c] for c in by_class}
    level_map = _levels_by_family(texts, families)
    procedures = []
    for cls, codes in by_class.items():
        ranges = level_map.get(FAMILY[cls]) or level_map.get(None) or []
        ranges = list(dict.fromkeys(ranges))
        spaces = sorted({s for r in ranges for s in r.interspaces()})
        procedures.append(OrderedProcedure(cls, tuple(codes), tuple(ranges), tuple(spaces)))
    label = next(iter(concept_texts(resource, "code")), None) or ", ".join(c.label for c in coded) or "order"
    return Order(reference(resource), label, parse_date(resource.get("authoredOn")), tuple(procedures), resource)


def map_orders(draft_orders) -> tuple[Order, ...]:
    orders = []
    for index, resource in enumerate(draft_orders):
        if resource.get("resourceType") != "ServiceRequest":
            continue
        validate_order(resource, f"$.context.draftOrders.entry[{index}].resource")
        orders.append(map_order(resource))
    return tuple(orders)
