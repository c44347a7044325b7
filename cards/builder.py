"""Findings and determinations -> CDS Hooks cards: one card per gap topic, short enough to read
in five seconds (summary <= 139, detail <= 600 characters), the policy sources as links.
The full reasoning belongs in the review letter (cards/letter.py)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from criteria import topics
from criteria.determination import MEETS, OrderDetermination
from criteria.finding import INDICATED, NEEDS_DOCUMENTATION, NOT_CHECKED, NOT_MET, NOTE, Finding

from . import forms, suggestions, wording
from .evidence import evidence_lines, short_name

TOPIC_SYSTEM = "https://spine-cds.dev/fhir/CodeSystem/card-topic"
OVERRIDE_SYSTEM = "https://spine-cds.dev/fhir/CodeSystem/override-reason"
SOURCE_LABEL = "Spine surgery medical-necessity check"
SUMMARY_LIMIT, DETAIL_LIMIT, EVIDENCE_LINES = 139, 600, 3
DETERMINATION_EXTENSION = "spine-cds.determination"
ASSOCIATED = "davinci-crd.associated-resource"
_NAMESPACE = uuid.UUID("6f1c8a52-3b9e-4d7a-9a43-0d6c5e2b7f10")
SHOWN = (NOT_MET, NEEDS_DOCUMENTATION, NOT_CHECKED, NOTE, INDICATED)
GAPS = (NOT_MET, NEEDS_DOCUMENTATION, NOT_CHECKED)


@dataclass(frozen=True)
class CardContext:
    hook_instance: str
    patient_id: str
    user_id: str | None = None
    listed_forms: frozenset[str] = frozenset()   # questionnaires the coverage information already lists
    payer: dict | None = None     # a Reference to the payer's Organization (the Coverage's payor), if known


def _uuid(ctx: CardContext, *parts: str) -> str:
    # Stable for the same hook call and card: a client re-rendering the answer keeps card ids.
    return str(uuid.uuid5(_NAMESPACE, "|".join((ctx.hook_instance, *parts))))


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _orders_named(orders) -> str:
    return "; ".join(short_name(o) for o in orders) or "The spine order"


def _fit_lines(lines: list[str], limit: int = DETAIL_LIMIT) -> str:
    """Keep whole lines, in order of importance, while the detail fits."""
    kept, size = [], 0
    for line in lines:
        if size + len(line) + 1 <= limit:
            kept.append(line)
            size += len(line) + 1
    return "\n".join(kept)


def _links(findings) -> list[dict]:
    sources = {s.url: s for f in findings for s in f.sources}
    return [{"label": _fit(s.policy, 80), "url": url, "type": "absolute"} for url, s in sources.items()]


def _verdicts(orders, determinations: dict[str, OrderDetermination]) -> list[str]:
    lines = []
    for o in orders:
        d = determinations.get(o.reference)
        if d:
            lines.append(wording.detail_piece("verdict", determination=wording.determination(d.determination),
                                              orders=short_name(o)))
    return lines


def _rule_lines(findings) -> list[str]:
    """One line naming the rule(s) behind the card; the sources are the card's links."""
    rules = list({f.rule.id: f.rule for f in findings}.values())
    if not rules:
        return []
    return [wording.detail_piece("rule", title=tuple(r.title for r in rules), profile=rules[0].profile)]


def _blocks(blocks: list[list[str]], limit: int = DETAIL_LIMIT) -> str:
    """Markdown paragraphs (blank line between blocks, hard breaks within the first). The last block
    (the rule) always stays; lines are dropped from the end of the block before it (the evidence),
    then the one before that, until it all fits."""
    blocks = [list(b) for b in blocks if b]

    def joined() -> str:
        first, *rest = blocks
        return "\n\n".join(["  \n".join(first)] + ["\n".join(b) for b in rest])
    while len(joined()) > limit and len(blocks) > 1:
        blocks[-2].pop()
        blocks = [b for b in blocks if b]
    return _fit(joined(), limit)


def detail(findings: list[Finding], determinations: dict[str, OrderDetermination]) -> str:
    orders = _orders(findings)
    missing = list(dict.fromkeys(wording.say(p) for f in findings for p in f.missing))
    levels = [wording.say(p) for f in findings for p in f.counted if p.code == "level-unsupported"]
    if any(f.status == INDICATED for f in findings):
        missing = [wording.say(p) for f in findings for p in f.counted]
    evidence = [e for f in findings for p in f.missing + f.counted for e in p.evidence] + \
               [e for f in findings for e in f.evidence]
    return _blocks([_verdicts(orders, determinations), [f"- {m}" for m in missing + levels],
                    evidence_lines(evidence, EVIDENCE_LINES), [_fit(r, 200) for r in _rule_lines(findings)]])


def _orders(findings) -> tuple:
    return tuple({o.reference: o for f in findings for o in f.orders}.values())


def _summary(template: str, fields: dict, orders) -> str:
    """Name the orders and the gap: all the orders if they fit, else the first and how many more."""
    names = [fields.get("orders")] if "orders" in fields else []
    if len(orders) > 1:
        names += [wording.render(wording.text()["detail"]["and_more"], first=short_name(orders[0]), more=len(orders) - 1),
                  wording.render(wording.text()["detail"]["orders_count"], count=len(orders))]
    for name in names or [None]:
        text = wording.render(template, **{**fields, **({"orders": name} if name else {})})
        if len(text) <= SUMMARY_LIMIT:
            return text
    return _fit(text, SUMMARY_LIMIT)


def _card(ctx: CardContext, topic: str, fields: dict, detail_md: str, orders, findings,
          determinations: dict[str, OrderDetermination]) -> dict:
    entry = wording.topic(topic)
    card = {
        "uuid": _uuid(ctx, topic),
        "summary": _summary(entry["summary"], fields, orders),
        "detail": detail_md,
        "indicator": entry["indicator"],
        "source": {"label": SOURCE_LABEL, "topic": {"system": TOPIC_SYSTEM, "code": topic, "display": entry["display"]}},
    }
    links = _links(findings)
    if links:
        card["links"] = links
    if orders:
        card["extension"] = {
            ASSOCIATED: [{"reference": o.reference} for o in orders],
            DETERMINATION_EXTENSION: [{"reference": o.reference, "determination": determinations[o.reference].determination}
                                      for o in orders if o.reference in determinations],
        }
    return card


def _override_reasons() -> list[dict]:
    return [{"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in wording.text()["override_reasons"].items()]


def _suggestion(ctx: CardContext, label: str, key: tuple, actions: list[dict]) -> dict:
    return {"label": _fit(label, 80), "uuid": _uuid(ctx, "suggestion", *key), "actions": actions}


def _pt_suggestions(ctx: CardContext, findings, all_findings) -> list[dict]:
    finding = findings[0]
    order = finding.orders[0]
    s = wording.text()["suggestions"]
    weeks = finding.data.get("weeks_needed")
    if not weeks:
        return []
    referral = suggestions.pt_referral(ctx.patient_id, ctx.user_id, weeks, order.reference, order.resource.get("authoredOn"),
                                       wording.render(s["pt_referral_note"]))
    return [_suggestion(ctx, wording.render(s["pt_referral"], weeks=weeks), ("pt-referral",),
                        [{"type": "create", "description": wording.render(s["pt_referral_action"]),
                          "resource": referral}])]


def _pelvic_unsupported(order, all_findings) -> bool:
    return any(f.rule.id == "pelvic_fixation" and f.status == NOT_MET and any(o.reference == order.reference
                                                                              for o in f.orders) for f in all_findings)


def _levels_suggestions(ctx: CardContext, findings, all_findings) -> list[dict]:
    out = []
    s = wording.text()["suggestions"]
    for finding in findings:
        new_range = finding.data.get("suggested_range")
        if not new_range:
            continue
        order = finding.orders[0]
        drop_pelvic = _pelvic_unsupported(order, all_findings)
        note = wording.render(s["narrow_note"], levels=new_range, unsupported=finding.data["unsupported"],
                              drop_pelvic=drop_pelvic)
        updated = suggestions.narrow_order_levels(order.resource, finding.levels["ordered"], new_range, note,
                                                  drop_pelvic)
        out.append(_suggestion(ctx, wording.render(s["narrow"], procedure=finding.data["procedure"], levels=new_range,
                                                   drop_pelvic=drop_pelvic),
                               ("levels", order.reference),
                               [{"type": "update", "description": wording.render(s["narrow_action"], levels=new_range,
                                                                                drop_pelvic=drop_pelvic),
                                 "resource": updated}]))
    return out


def _form_suggestions(ctx: CardContext, topic: str, findings) -> list[dict]:
    """CRD 'Request Form Completion' — only when the coverage information does not already list the form."""
    form_id = forms.form_for(topic)
    if not form_id or forms.canonical(form_id) in ctx.listed_forms:
        return []
    s = wording.text()["suggestions"]
    title = forms.questionnaires()[form_id]["title"]
    order = findings[0].orders[0]
    task = forms.completion_task(form_id, ctx.patient_id, ctx.payer or {"display": s["form_requester"]}, order.reference,
                                 order.resource.get("authoredOn"), wording.render(s["form_description"], title=title))
    return [_suggestion(ctx, wording.render(s["form"], title=title), ("form", form_id),
                        [{"type": "create", "description": wording.render(s["form_action"]), "resource": task}])]


SUGGESTERS = {topics.PT_DOCUMENTATION_MISSING: _pt_suggestions, topics.LEVEL_UNSUPPORTED: _levels_suggestions}


def topic_card(ctx: CardContext, topic: str, findings: list[Finding], all_findings,
               determinations: dict[str, OrderDetermination]) -> dict:
    orders = _orders(findings)
    fields = {"orders": _orders_named(orders), "count": len(orders), "missing_count": 0}
    for f in reversed(findings):
        fields.update(f.data)
    fields.update({k: wording.say(v) if hasattr(v, "code") else v for k, v in fields.items()})
    card = _card(ctx, topic, fields, detail(findings, determinations), orders, findings, determinations)
    if any(f.status in GAPS for f in findings):
        card["overrideReasons"] = _override_reasons()
        proposed = SUGGESTERS.get(topic, lambda *a: [])(ctx, findings, all_findings)
        proposed += _form_suggestions(ctx, topic, findings)
        if proposed:
            card["suggestions"] = proposed
            card["selectionBehavior"] = "at-most-one" if len(proposed) == 1 or len(orders) == 1 else "any"
    return card


def criteria_met_card(ctx: CardContext, met: list[OrderDetermination], determinations) -> dict:
    findings = [f for d in met for f in d.findings if f.status not in (NOTE, INDICATED)]
    orders = tuple(d.order for d in met)
    criteria = list(dict.fromkeys(f.rule.title for f in findings))
    body = _blocks([_verdicts(orders, determinations), evidence_lines([e for f in findings for e in f.evidence],
                                                                      EVIDENCE_LINES),
                    [wording.detail_piece("criteria_met", criteria=criteria)]])
    fields = {"orders": _orders_named(orders), "count": len(criteria)}
    return _card(ctx, topics.CRITERIA_MET, fields, body, orders, findings, determinations)


def _unavailable_lines(unavailable, budget: int) -> list[str]:
    """What was not retrieved, grouped by why, each line trimmed so that all of them fit."""
    grouped: dict[str, list[str]] = {}
    for part in unavailable:
        what, sep, why = part.partition(" at the FHIR server ")
        grouped.setdefault(why if sep else part, []).append(what if sep else "")
    lines = [f"- {', '.join(w for w in whats if w)}{': ' if any(whats) else ''}{why}" for why, whats in grouped.items()]
    each = max(40, budget // max(1, len(lines)) - 1)
    return [_fit(line, each) for line in lines]


def unavailable_card(ctx: CardContext, unavailable: tuple[str, ...]) -> dict:
    head = wording.detail_piece("unavailable")
    lines = _unavailable_lines(unavailable, DETAIL_LIMIT - len(head) - 1)
    return _card(ctx, topics.DATA_UNAVAILABLE, {}, _fit_lines([head, *lines]), (), (), {})


def build_cards(ctx: CardContext, findings: list[Finding], determinations=(), unavailable: tuple[str, ...] = ()) -> list[dict]:
    by_order = {d.order.reference: d for d in determinations}
    grouped: dict[str, list[Finding]] = {}
    for f in findings:
        if f.status in SHOWN:
            grouped.setdefault(f.card_topic, []).append(f)
    cards = [topic_card(ctx, topic, group, findings, by_order) for topic, group in grouped.items()]
    if unavailable and findings:
        cards.append(unavailable_card(ctx, unavailable))
    met = [d for d in determinations if d.determination == MEETS and not d.data_unavailable]
    if met:
        cards.append(criteria_met_card(ctx, met, by_order))
    return cards
