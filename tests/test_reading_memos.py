"""The two memos of one chart's reading never change a fact.

- Sentence memo (fhir_mappings.text.SentenceMemo, used by the clinical reader): a sentence read
  once is not read again where its words, the marks just outside it and the assertion its section
  gives are the same (Document.sentence_key). Never shared: a sentence a trigger phrase runs into
  across a line break ("negative\\nfor radiating leg pain"), or the same words under another heading.
- Silent resources (fhir_mappings.build.reading_key): an Observation, Condition, DiagnosticReport or
  Procedure alike to one that gave no fact but for its id, narrative, identifiers and the days its
  dates name gives none, and is not read again.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from fhir_mappings import build, clinical
from fhir_mappings.build import build_facts, forget_texts, reading_key
from fhir_mappings.chart import Chart
from fhir_mappings.clinical import SENTENCE_READS, read_text
from fhir_mappings.text import document
from tests.stubs import fhir, seeds

ROWS = yaml.safe_load((Path(__file__).with_name("data") / "sentences.yaml").read_text("utf-8"))


_clear = forget_texts     # every text cache and memo of one chart's reading, as build_facts empties them


@pytest.fixture(autouse=True)
def fresh_caches():
    _clear()
    yield
    _clear()


# Texts whose sentences repeat in other company: the same words under another heading, after a
# trigger that runs over a line break, after a "?" (itself a trigger), in a note copied forward.
TRICKY = [
    "Exam negative\nfor radicular pain radiating down the left leg.",
    "for radicular pain radiating down the left leg.",
    "FINDINGS: radicular pain radiating down the left leg.",
    "PLAN: radicular pain radiating down the left leg.",
    "PLAN:\nRadicular pain radiating down the left leg.\nFINDINGS:\nRadicular pain radiating down the left leg.",
    "FAMILY HISTORY: Father smokes 1 pack per day. Current smoker, 1 pack per day.",
    "Current smoker, 1 pack per day.",
    "Radiculopathy?\nRadicular pain radiating down the left leg.",
    "Radicular pain radiating down the left leg. Pain 7/10. No numbness. Pain 7/10.",
    "Denies numbness or tingling in the legs. Numbness in the left foot.",
    "Numbness in the left foot. Denies numbness or tingling in the legs.",
    "HbA1c 8.2% on 1/6/2025. Former smoker, quit 3 months ago.",
    "If leg weakness develops, return. Leg weakness, 4/5 EHL on the left.",
]


def _texts() -> list[str]:
    return [row["text"] for row in ROWS] + TRICKY


def _fresh(text: str):
    _clear()
    return read_text(text)


def test_the_sentence_memo_never_changes_a_reading():
    texts = _texts()
    alone = [_fresh(text) for text in texts]
    for order in (texts, texts[::-1]):
        _clear()
        shared = {text: read_text(text) for text in order}       # one chart: the memo fills as it reads
        assert len(SENTENCE_READS) > 0
        assert [shared[text] for text in texts] == alone


def test_a_sentence_read_in_one_company_is_not_reused_in_another():
    assert [r.kind for r in _fresh("for radicular pain radiating down the left leg.")] == ["radiculopathy"]
    _clear()
    read_text("for radicular pain radiating down the left leg.")
    assert read_text("Exam negative\nfor radicular pain radiating down the left leg.") == ()   # "negative for"
    assert read_text("PLAN: radicular pain radiating down the left leg.") == ()                # a plan asserts nothing
    kinds = [r.kind for r in read_text("FINDINGS: radicular pain radiating down the left leg.")]
    assert kinds == ["radiculopathy"]


def test_sentence_keys_tell_apart_what_changes_a_reading():
    def keys(text):
        read = document(text)
        return [read.sentence_key(lo, hi) for lo, hi in read.spans()]

    straddled = keys("Exam negative\nfor radiating leg pain.")
    assert straddled == [None, None]          # "negative for" runs over the line break
    plain = keys("Exam done. For radiating leg pain.")
    assert None not in plain
    plan, findings = keys("PLAN: leg pain.")[0], keys("FINDINGS: leg pain.")[0]
    assert plan[0] != findings[0] and plan[3] != findings[3]
    # The same words with the same section and marks: one key, wherever they stand.
    assert keys("PLAN: Rest. Leg pain.")[1] == keys("PLAN: Walk daily. Leg pain.")[1]


def test_a_copied_forward_note_is_read_sentence_by_sentence_once(monkeypatch):
    visit = "Radicular pain radiating down the left leg. Pain {n}/10 today. Numbness in the left foot."
    note = "\n".join(visit.format(n=n) for n in range(1, 5))
    calls = []
    original = clinical._sentence_reads

    def counted(text, lo, hi, read):
        calls.append(text[lo:hi])
        return original(text, lo, hi, read)

    monkeypatch.setattr(clinical, "_sentence_reads", counted)
    reads = read_text(note)
    assert [r.value for r in reads if r.kind == "pain"] == [1.0, 2.0, 3.0, 4.0]
    assert len([r for r in reads if r.kind == "radiculopathy"]) == 4
    assert len([r for r in reads if r.kind == "sensory_deficit"]) == 4
    # 12 sentences; each pain score read once, the repeated ones at most once per place in a line
    # (first, middle, last: the marks around a sentence are part of its key).
    assert [c for c in calls if "/10" in c] == [f" Pain {n}/10 today" for n in range(1, 5)]
    assert len(calls) <= 8


# --- silent resources --------------------------------------------------------------------------------

def _vital(value, day, rid):
    return fhir.with_fields(fhir.observation("Blood pressure systolic", value=value, unit="mm[Hg]", effective=day),
                            id=rid, identifier=[{"value": rid}], meta={"lastUpdated": f"{day}T08:00:00Z"},
                            text={"status": "generated", "div": f"<div>{value} on {day}</div>"})


def test_the_reading_key_ignores_labels_and_keeps_content():
    one = _vital(120, "2024-01-05", "a")
    assert reading_key(one) == reading_key(_vital(120, "2023-07-30", "b"))
    assert reading_key(one) != reading_key(_vital(121, "2024-01-05", "a"))           # the value
    assert reading_key(one) != reading_key(fhir.with_fields(one, status="preliminary"))
    assert reading_key(one) != reading_key(fhir.with_fields(one, note=[{"text": "Pain 7/10"}]))
    # A malformed date labels no fact either (it is reported when the resource gives facts).
    assert reading_key(one) == reading_key(fhir.with_fields(one, effectiveDateTime="2024/01/05"))
    assert reading_key(one) != reading_key(fhir.with_fields(one, effectivePeriod={"start": "2024-01-05"}))
    no_date = dict(one)
    del no_date["effectiveDateTime"]
    assert reading_key(one) != reading_key(no_date)
    assert reading_key(fhir.medication("gabapentin 300 mg", "2024-01-05")) is None   # care sources: always read


def _chart(resources):
    return Chart.build("pat-1", seeds.seed_001_orders(), resources, date(2025, 6, 1))


def test_alike_silent_resources_are_read_once_and_the_facts_do_not_change(monkeypatch):
    alike = [_vital(100 + n % 3, f"2024-0{1 + n % 9}-1{n % 9}", f"bp-{n}") for n in range(60)]
    noted = fhir.with_fields(_vital(100, "2024-02-02", "bp-noted"),
                             note=[{"text": "Radicular pain radiating down the left leg, pain 8/10."}])
    conditions = [fhir.with_fields(fhir.condition("Essential hypertension", "I10", onset=f"20{10 + n}-03-01",
                                                  note="Stable on lisinopril."), id=f"htn-{n}") for n in range(10)]
    record = seeds.seed_001_chart() + alike + [noted] + conditions
    counted = []
    original = build.level_facts_of
    monkeypatch.setattr(build, "level_facts_of", lambda r: counted.append(r["id"]) or original(r))
    facts = build_facts(_chart(record))
    read_vitals = [i for i in counted if i.startswith("bp-")]
    assert sorted(read_vitals) == ["bp-0", "bp-1", "bp-2", "bp-noted"]     # three values, and the one with a note
    assert len([i for i in counted if i.startswith("htn-")]) == 1
    assert any(f.evidence.reference == "Observation/bp-noted" for f in facts.clinical)
    monkeypatch.setattr(build, "reading_key", lambda resource: None)      # every resource read
    _clear()
    assert build_facts(_chart(record)) == facts


# --- masking dots that end no sentence, tried only at dots -------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from fhir_mappings.text.document import _FALSE_STOPS, _blank_false_stops  # noqa: E402

_PIECES = ["vs.", "Vs.", "avs.", "approx.", "APPROX.", "e.g.", "i.e.", "I.E.", "cf.", "fig.", "Fig.", "dr.", "Dr.",
           "3.5", "1.2.3", ".", ". ", "x.", " ", "\n", "4.", ".5", "e.g.g.", "i.e.g.", "vs..", "dr.dr.", "a", "1",
           "approx.3", "(vs.)", "-", "fig.1", "e.", "g.", "i", "e", "g", "v", "s", "\u2013", "\u00e9."]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
def test_dots_are_masked_as_the_one_substitution_masks_them(text):
    assert _blank_false_stops(text) == _FALSE_STOPS.sub(lambda m: m.group().replace(".", " "), text)


# --- triggers of one sentence, scanned alone ----------------------------------------------------------

def test_a_sentence_scanned_alone_has_the_triggers_the_whole_text_gives_it():
    from fhir_mappings.text import Document

    texts = _texts() + ["No stenosis. Possible\nnegative for fracture? No. Denies pain. History of fusion; "
                        "no evidence of instability vs. listhesis. Approx. 3.5 mm."]
    compared = 0
    for text in texts:
        alone, whole = Document(text), Document(text)
        whole.triggers      # made first: every ask then goes to the whole text's scan
        for lo, hi in alone.spans():
            for a, b in ((lo, hi), (lo, (lo + hi) // 2), ((lo + hi) // 2, hi)):
                assert list(alone._triggers_within(a, b)) == list(whole._triggers_within(a, b)), (text, a, b)
                compared += 1
        _clear()
        said_alone = [alone.assertion(*span) for span in alone.spans()]
        _clear()
        assert said_alone == [whole.assertion(*span) for span in whole.spans()]
        if text.isascii() and not any(alone.masked[lo - 1:lo] in ("\n", "?") for lo, _ in alone.spans() if lo):
            assert "triggers" not in alone.__dict__      # every sentence was scanned alone
    assert compared > 500
