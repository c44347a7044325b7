"""Issue 10's sentences, each placed where the service reads text today (a report conclusion, an
Observation's valueString, a Condition's or Procedure's note) in an otherwise complete chart, give
the right cards through the HTTP API; beside each, a control sentence that asserts the finding
gives the opposite card, so the test fails if the sentence were read the old way."""
from __future__ import annotations

import random

import pytest

from cds_service.synthetic.kit import Kit
from tests.stubs import fhir

MET, LEVEL, PT_MISSING = "criteria-met", "level-unsupported", "pt-documentation-missing"
OSTEOTOMY_OK, OSTEOTOMY_NO, SI_NO = "osteotomy-indicated", "osteotomy-unsupported", "si-fusion-unsupported"


def _place(k: Kit, where: str, text: str) -> dict:
    if where == "conclusion":
        return k.report("MRI lumbar spine", text, k.ago(days=30))
    if where == "valueString":
        return k.observation("Imaging comment", value_string=text, effective=k.ago(days=30))
    if where == "condition_note":
        # Two months before the order: a red flag in the note belongs to this episode (red_flags recency).
        return k.condition("Low back pain", "M54.50", onset=k.ago(days=60), note=text)
    if where == "procedure_note":
        return k.procedure("Right sacroiliac joint injection", performed=k.ago(days=60), note=text)
    raise ValueError(where)


def _fusion_with_stenosis(level: str):
    def chart(k: Kit, sentence: dict):
        mri = k.report("MRI lumbar spine", f"Severe central canal stenosis at {level}.", k.ago(days=40))
        return [k.order(f"TLIF {level}", ["22633"], level)], [*k.well_treated(), mri, sentence]
    return chart


def _fusion_without_pt(k: Kit, sentence: dict):
    listhesis = k.report("MRI lumbar spine", "Grade 2 anterolisthesis at L4-5.", k.ago(days=40))
    return [k.order("TLIF L4-L5", ["22633"], "L4-L5")], [k.medication_trial(), listhesis, sentence]


def _osteotomy(k: Kit, sentence: dict):
    return [k.order("Posterior osteotomy L3", ["22214"], "L3")], [*k.well_treated(), sentence]


def _si_fusion(k: Kit, sentence: dict, blocks: int = 0):
    resources = [
        *k.well_treated(),
        k.condition("Sacroiliitis, right", "M46.1", onset=k.ago(days=300)),
        k.observation("SI joint examination", value_string="Positive compression, thigh thrust, FABER tests.",
                      effective=k.ago(days=120)),
        k.observation("Pain severity 0-10", value=7, unit="{score}", effective=k.ago(days=50), loinc="72514-3"),
        sentence,
    ]
    resources += [k.procedure("Right sacroiliac joint injection", performed=k.ago(days=100 + 10 * i),
                              note="85% relief of pain after the block.") for i in range(blocks)]
    return [k.order("SI joint fusion, right", ["27279"])], resources


def _si_with_one_block(k: Kit, sentence: dict):
    return _si_fusion(k, sentence, blocks=1)


# (sentence, where it is written, chart, the topics it must give, a control sentence and its topics)
CASES = [
    ("Possible instability at L5-S1", "conclusion", _fusion_with_stenosis("L5-S1"), {LEVEL},
     "Instability at L5-S1.", {MET}),
    ("Cannot exclude instability at L5-S1", "valueString", _fusion_with_stenosis("L5-S1"), {LEVEL},
     "Instability at L5-S1.", {MET}),
    ("If instability at L5-S1 is confirmed, fusion would be considered", "condition_note",
     _fusion_with_stenosis("L5-S1"), {LEVEL}, "Instability at L5-S1 is confirmed.", {MET}),
    ("Flexion-extension views obtained to assess for instability at L4-5. Translation 1 mm.", "conclusion",
     _fusion_with_stenosis("L4-L5"), {LEVEL}, "Flexion-extension views show instability at L4-5.", {MET}),
    ("Family history of spinal tumor", "condition_note", _fusion_without_pt, {PT_MISSING},
     "Spinal tumor at L2.", {MET}),
    ("Possible cauda equina", "valueString", _fusion_without_pt, {PT_MISSING}, "Cauda equina syndrome.", {MET}),
    ("Counseled on cauda equina warning signs and return precautions", "condition_note", _fusion_without_pt,
     {PT_MISSING}, "New cauda equina syndrome.", {MET}),
    ("Severe central stenosis with crowding of the cauda equina", "conclusion", _fusion_without_pt, {PT_MISSING},
     "Severe central stenosis with cauda equina syndrome.", {MET}),
    ("Remote history of vertebral fracture (2005), healed", "condition_note", _fusion_without_pt, {PT_MISSING},
     "Acute unstable vertebral fracture.", {MET}),
    ("Non-contrast MRI shows grade 2 anterolisthesis at L5-S1", "conclusion", _fusion_with_stenosis("L5-S1"),
     {MET}, "No anterolisthesis at L5-S1.", {LEVEL}),
    ("No interval change of grade 2 anterolisthesis at L5-S1", "valueString", _fusion_with_stenosis("L5-S1"),
     {MET}, "No anterolisthesis at L5-S1.", {LEVEL}),
    ("PI/LL 52/48", "conclusion", _osteotomy, {OSTEOTOMY_NO}, "PI/LL 62/38", {OSTEOTOMY_OK, MET}),
    ("PI-LL 52-48", "valueString", _osteotomy, {OSTEOTOMY_NO}, "PI-LL mismatch 25 degrees", {OSTEOTOMY_OK, MET}),
    ("PI 51, LL 31", "conclusion", _osteotomy, {OSTEOTOMY_OK, MET}, "PI 51, LL 48", {OSTEOTOMY_NO}),
    ("PI-LL mismatch of 25 degrees cannot be assessed", "conclusion", _osteotomy, {OSTEOTOMY_NO},
     "PI-LL mismatch of 25 degrees.", {OSTEOTOMY_OK, MET}),
    ("80% relief at 30 minutes, 90% relief at 2 hours", "procedure_note", _si_fusion, {SI_NO},
     "90% relief after the first block and 80% after the second.", {MET}),
    ("80% relief expected if performed", "condition_note", _si_with_one_block, {SI_NO},
     "80% relief after the second SI joint block.", {MET}),
]


def _answer(order_sign, build, where: str, text: str) -> set[str]:
    k = Kit(random.Random(f"issue-10:{text}"), 0)
    orders, resources = build(k, _place(k, where, text))
    chart = [k.patient(), k.coverage(), *resources]
    answer = order_sign(fhir.make_request(orders, chart, k.patient_id))
    return {card["source"]["topic"]["code"] for card in answer["cards"]}


@pytest.mark.parametrize("text, where, build, topics, control, control_topics", CASES,
                         ids=[case[0][:48] for case in CASES])
def test_sentence_gives_its_cards(order_sign, text, where, build, topics, control, control_topics):
    assert _answer(order_sign, build, where, text) == topics
    assert _answer(order_sign, build, where, control) == control_topics
