"""Findings -> CDS Hooks cards. Every card's detail shows the evidence used and the rule applied."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from criteria import topics
from criteria.finding import INDICATED, MET, NOT_CHECKED, NOT_MET, NOTE, WAIVED, Finding
from terminology.levels import interspaces_in

from . import forms, suggestions
from .templates import OVERRIDE_REASONS, SUMMARY_LIMIT, TEMPLATES

TOPIC_SYSTEM = "https://spine-cds.dev/fhir/CodeSystem/card-topic"
OVERRIDE_SYSTEM = "https://spine-cds.dev/fhir/CodeSystem/override-reason"
SOURCE_LABEL = "Spine surgery medical-necessity check"
_NAMESPACE = uuid.UUID("6f1c8a52-3b9e-4d7a-9a43-0d6c5e2b7f10")
# A long chart can hold thousands of mentions; a card shows the first ones and a count.
EVIDENCE_LIMIT = 15


@dataclass(frozen=True)
class CardContext:
    hook_instance: str
    patient_id: str
    user_id: str | None = None


def _uuid(ctx: CardContext, *parts: str) -> str:
    # Stable for the same hook call and finding: a client re-rendering the answer keeps card ids.
    return str(uuid.uuid5(_NAMESPACE, "|".join((ctx.hook_instance, *parts))))


def _orders_text(orders) -> str:
    """Short enough for a summary: the order's name, or how many orders (the detail names each)."""
    if len(orders) == 1:
        return orders[0].label
    return f"{len(orders)} spine orders" if orders else "the spine order"


def _fit(summary: str) -> str:
    return summary if len(summary) <= SUMMARY_LIMIT else summary[: SUMMARY_LIMIT - 1].rstrip() + "…"


def _rule_section(finding: Finding) -> list[str]:
    rule = finding.rule
    lines = [f"**Rule applied:** {rule.title} (`{rule.id}`, profile `{rule.profile}`)", "", rule.description, ""]
    for name in finding.thresholds:
        p = rule.parameters[name]
        shown = p.describe() if isinstance(p.value, (int, float)) and not isinstance(p.value, bool) else f"= {p.value} {p.unit}".strip()
        lines.append(f"- `{name}` {shown} — {p.cite()}")
    lines += ["", "**Sources:** " + "; ".join(f"[{s.policy}]({s.url}) ({s.edition})" for s in rule.sources)]
    return lines


def _evidence_lines(evidence) -> list[str]:
    evidence = list(dict.fromkeys(evidence))
    lines = [f"- {e.render()}" for e in evidence[:EVIDENCE_LIMIT]] or ["- none in the chart"]
    if len(evidence) > EVIDENCE_LIMIT:
        lines.append(f"- … and {len(evidence) - EVIDENCE_LIMIT} more")
    return lines


def detail(finding: Finding) -> str:
    lines = [f"**Orders:** " + "; ".join(f"{o.label} (`{o.reference}`)" for o in finding.orders), ""]
    if finding.missing:
        lines += ["**What is missing**", *[f"- {m}" for m in finding.missing], ""]
    if finding.counted:
        lines += ["**What was counted**", *[f"- {c}" for c in finding.counted], ""]
    lines += ["**Evidence found**", *_evidence_lines(finding.evidence), ""]
    return "\n".join(lines + _rule_section(finding))


def _card(ctx: CardContext, topic: str, summary_fields: dict, detail_md: str, key: str) -> dict:
    template = TEMPLATES[topic]
    return {
        "uuid": _uuid(ctx, topic, key),
        "summary": _fit(template.summary.format(**summary_fields)),
        "detail": detail_md,
        "indicator": template.indicator,
        "source": {"label": SOURCE_LABEL, "topic": {"system": TOPIC_SYSTEM, "code": topic, "display": template.display}},
    }


def _with_override_reasons(card: dict) -> dict:
    card["overrideReasons"] = [{"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in OVERRIDE_REASONS]
    return card


def _summary_fields(finding: Finding) -> dict:
    return {"orders": _orders_text(finding.orders), "missing_count": len(finding.missing), **finding.data}


def _pt_suggestion(ctx: CardContext, finding: Finding, card: dict) -> None:
    order = finding.orders[0]
    referral = suggestions.pt_referral(ctx.patient_id, ctx.user_id, finding.data["weeks_needed"], order.reference,
                                       order.resource.get("authoredOn"))
    card["suggestions"] = [{
        "label": f"Refer to formal physical therapy ({finding.data['weeks_needed']} weeks)",
        "uuid": _uuid(ctx, "suggestion", "pt-referral", order.reference),
        "actions": [{"type": "create", "description": "Create a physical-therapy referral", "resource": referral}],
    }]
    card["selectionBehavior"] = "at-most-one"


def _levels_suggestion(ctx: CardContext, finding: Finding, card: dict) -> None:
    new_range = finding.data.get("suggested_range")
    if not new_range:
        return
    order = finding.orders[0]
    updated = suggestions.narrow_order_levels(order.resource, interspaces_in(finding.data["ordered"]), new_range,
                                              finding.data["unsupported"])
    card["suggestions"] = [{
        "label": f"Limit the {finding.data['procedure']} to {new_range}",
        "uuid": _uuid(ctx, "suggestion", "levels", order.reference),
        "actions": [{"type": "update", "description": f"Change the order's levels to {new_range}", "resource": updated}],
    }]
    card["selectionBehavior"] = "at-most-one"


SUGGESTERS = {topics.PT_DOCUMENTATION_MISSING: _pt_suggestion, topics.LEVEL_UNSUPPORTED: _levels_suggestion}
SHOWN = (NOT_MET, NOT_CHECKED, NOTE, INDICATED)


def finding_card(ctx: CardContext, finding: Finding) -> dict:
    topic = finding.card_topic
    key = finding.rule.id + "|" + ",".join(o.reference for o in finding.orders)
    card = _card(ctx, topic, _summary_fields(finding), detail(finding), key)
    if finding.status == NOT_MET:
        _with_override_reasons(card)
        if topic in SUGGESTERS:
            SUGGESTERS[topic](ctx, finding, card)
        _form_suggestion(ctx, finding, card)
    return card


def _form_suggestion(ctx: CardContext, finding: Finding, card: dict) -> None:
    """CRD 'Request Form Completion': a Task to complete the questionnaire that documents the gap."""
    form_id = forms.form_for(finding.card_topic)
    if not form_id:
        return
    order = finding.orders[0]
    task = forms.completion_task(form_id, ctx.patient_id, order.reference, order.resource.get("authoredOn"))
    card.setdefault("suggestions", []).append({
        "label": f"Document it: {forms.questionnaires()[form_id]['title']}",
        "uuid": _uuid(ctx, "suggestion", "form", form_id, order.reference),
        "actions": [{"type": "create", "description": "Create a task to complete the form", "resource": task}],
    })
    card["selectionBehavior"] = "at-most-one"


def criteria_met_card(ctx: CardContext, findings: list[Finding]) -> dict:
    orders = tuple({o.reference: o for f in findings for o in f.orders}.values())
    lines = ["**Orders:** " + "; ".join(f"{o.label} (`{o.reference}`)" for o in orders), "", "**Criteria checked**"]
    for f in findings:
        lines.append(f"- {f.rule.title}: {'waived by a red flag' if f.status == WAIVED else f.status}")
        lines += [f"  - {c}" for c in f.counted]
    lines += ["", "**Evidence found**", *_evidence_lines(e for f in findings for e in f.evidence)]
    for f in findings:
        lines += [""] + _rule_section(f)
    fields = {"count": sum(f.status in (MET, WAIVED) for f in findings), "orders": _orders_text(orders)}
    return _card(ctx, topics.CRITERIA_MET, fields, "\n".join(lines), ",".join(o.reference for o in orders))


def unavailable_card(ctx: CardContext, unavailable: tuple[str, ...]) -> dict:
    detail_md = "\n".join(["**Not retrieved**", *[f"- {u}" for u in unavailable], "",
                           "Criteria that need this data were checked without it; sign only after reviewing the chart."])
    return _card(ctx, topics.DATA_UNAVAILABLE, {}, detail_md, "unavailable")


def build_cards(ctx: CardContext, findings: list[Finding], unavailable: tuple[str, ...] = ()) -> list[dict]:
    cards = [finding_card(ctx, f) for f in findings if f.status in SHOWN]
    if unavailable and findings:
        cards.append(unavailable_card(ctx, unavailable))
    if findings and not unavailable and not any(f.blocks_criteria_met for f in findings):
        cards.append(criteria_met_card(ctx, findings))
    return cards
