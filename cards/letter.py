"""The review letter: the same findings and determinations as the cards, with the full reasoning,
order by order and CPT code by CPT code, as the seed reviews read (contract, "Review letter").

build() gives the letter as data (the JSON form); markdown() renders cards/text/letter.md.j2 and
html() wraps that markdown, rendered on the server, in a page fit to print (letter.html.j2).
"""
from __future__ import annotations

from functools import cache
from importlib import resources

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt

from criteria.determination import MEETS, OrderDetermination, effect
from criteria.finding import INDICATED, MET, NOT_MET, NOTE, WAIVED, Finding
from terminology import cpt

from . import forms, wording
from .evidence import dated_first

EVIDENCE_LIMIT = 12


def _letter_text() -> dict:
    return wording.text()["letter"]


def _status(f: Finding) -> str:
    return _letter_text()["status"][f.status]


def _reason(f: Finding) -> dict:
    missing = [wording.say(p) for p in f.missing]
    counted = [wording.say(p) for p in f.counted if p.code != "measured-to"]
    return {"criterion": f.rule.title, "status": f.status, "status_text": _status(f), "missing": missing,
            "counted": counted}


def _evidence(findings) -> list[dict]:
    found = [e for f in findings for p in f.missing + f.counted for e in p.evidence] + \
            [e for f in findings for e in f.evidence]
    return [_evidence_item(e) for e in dated_first(found)[:EVIDENCE_LIMIT]]


def _evidence_item(e) -> dict:
    """Date, what it says and where; evidence read from text adds the words read and where in the resource."""
    item = {"date": e.day.isoformat() if e.day else None, "text": " ".join(e.description.split()), "reference": e.reference}
    item.update({key: value for key, value in (("quote", e.quote), ("source", e.source)) if value})
    return item


def _alternatives(d: OrderDetermination, all_findings) -> list[str]:
    say = _letter_text()["alternatives"]
    mine = {f.rule.id: f for f in d.findings}
    out = []
    fusion = mine.get("fusion_levels")
    pelvic_out = "pelvic_fixation" in mine and mine["pelvic_fixation"].status == NOT_MET
    if fusion and fusion.status == NOT_MET:
        if fusion.data.get("suggested_range"):
            out.append(wording.render(say["narrow"], levels=fusion.data["suggested_range"], drop_pelvic=pelvic_out))
        elif fusion.data.get("supported") == "none":
            out.append(wording.render(say["no_fusion"], levels=fusion.data["ordered"]))
        decompressions = [f for f in all_findings if f.rule.id == "decompression_levels" and f.status == MET]
        levels = sorted({lvl for f in decompressions for lvl in f.levels.get("supported", ())})
        if levels:
            out.append(wording.render(say["decompression_alone"], levels=tuple(levels)))
    if pelvic_out and not (fusion and fusion.data.get("suggested_range")):
        out.append(wording.render(say["no_pelvic"]))
    if any(f.status == NOTE and f.rule.id == "exploration" for f in d.findings):
        out.append(wording.render(say["exploration"]))
    return out


def _would_change(gaps) -> list[str]:
    lines = list(dict.fromkeys(wording.say(p) for f in gaps for p in f.missing if f.status != NOTE))
    titles = dict.fromkeys(forms.questionnaires()[form]["title"] for f in gaps if f.status != NOTE
                           for form in [forms.form_for(f.card_topic)] if form)
    return lines + [wording.render(_letter_text()["form"], title=t) for t in titles]


def _stricter(gaps) -> list[str]:
    notes = _letter_text()["stricter"]
    criteria = {f.rule.id for f in gaps if effect(f) is not None}
    return [wording.render(notes[c]) for c in sorted(criteria) if c in notes and len(criteria) == 1]


def _code_row(c, say_determination) -> dict:
    entry = cpt.lookup(c.code)
    why = list(dict.fromkeys(f.rule.title for f in c.findings)) if c.determination != MEETS else []
    return {"code": c.code, "label": entry.label if entry else "", "determination": c.determination,
            "determination_text": say_determination(c.determination), "bundled": c.bundled, "why": why}


def _order(d: OrderDetermination, all_findings) -> dict:
    judged = [f for f in d.findings if effect(f) is not None or f.status in (NOTE, INDICATED)]
    order_gaps = [f for f in judged if f.status not in (MET, WAIVED, INDICATED)]
    rest = [f for f in judged if f not in order_gaps]
    sources = {s.url: s for f in d.findings for s in f.sources}
    return {
        "reference": d.order.reference,
        "name": d.order.label,
        "determination": d.determination,
        "determination_text": wording.determination(d.determination),
        "codes": [_code_row(c, wording.determination) for c in d.codes],
        "reasons": [_reason(f) for f in order_gaps + rest],
        "evidence": _evidence(d.findings),
        "would_change": _would_change(order_gaps),
        "alternatives": _alternatives(d, all_findings),
        "stricter": _stricter(order_gaps),
        "data_unavailable": d.data_unavailable,
        "sources": [{"policy": s.policy, "edition": s.edition, "url": s.url} for s in sources.values()],
    }


def build(determinations, findings, facts, profile: str, patient_id: str) -> dict:
    as_of = facts.order_date().isoformat() if facts else None
    return {
        "patient": f"Patient/{patient_id}",
        "profile": profile,
        "intro": wording.render(_letter_text()["intro"], profile=profile, as_of=as_of or "today"),
        "as_of": facts.order_date().isoformat() if facts else None,
        "orders": [_order(d, findings) for d in determinations],
        "unavailable": list(facts.unavailable) if facts else [],
    }


@cache
def _template(name: str):
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=name.endswith(".html.j2"),
                               trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.from_string(resources.files(__package__).joinpath("text", name).read_text("utf-8"))


def markdown(letter: dict) -> str:
    return _template("letter.md.j2").render(letter=letter, text=_letter_text())


def markdown_html(text: str) -> str:
    """Markdown to HTML on the server: raw HTML in the text is escaped, unsafe link schemes dropped."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def body_html(letter: dict) -> str:
    return markdown_html(markdown(letter))


def html(letter: dict) -> str:
    return _template("letter.html.j2").render(body=body_html(letter), text=_letter_text())
