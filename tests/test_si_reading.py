"""SI-joint provocative tests and diagnostic-block relief read from notes as EHRs send them (base64
DocumentReference attachments, Procedure notes): each test's result is its own, written right after
it ("FABER +", "Gaenslen (-)", "FABER test: positive"), else the one written once for the list it is
in ("X, Y and Z positive", "positive X, Y and Z tests", "... all positive"), and a sign written after
one test never reaches the next. "Compression" and "distraction" in sentences of their own are SI
tests after an SI examination in the same section. Relief written as pain scores before and after a
block is that block's relief in percent. The last tests ask the service itself (si_fusion rule)."""
from __future__ import annotations

import zlib

import pytest

from fhir_mappings import measures
from fhir_mappings.measures import measurements_of
from tests.fixtures.real_charts.build_charts import b64
from tests.stubs import fhir
from tests.test_payer_rules import MET, SI_NO, Golden, answer, si_order, topics

SI_INJECTION_CPT = "27096"


def note(text: str, title: str = "Spine clinic note", day: str = "2025-05-01") -> dict:
    return {"resourceType": "DocumentReference", "id": "note-si", "status": "current",
            "subject": {"reference": "Patient/pat-1"}, "date": f"{day}T10:00:00Z", "type": {"text": title},
            "content": [{"attachment": {"contentType": "text/plain", "data": b64(text), "title": title}}]}


def si_tests_of(text: str) -> set[tuple[str, bool | None]]:
    """(test, positive) of every SI test the note names."""
    return {(m.test, m.positive) for m in measurements_of(note(text)) if m.name == "si_provocative_test"}


def reliefs(resource: dict) -> list[float]:
    return sorted(m.value for m in measurements_of(resource) if m.name == "si_block_relief")


POS, NEG = True, False


# --- each test's result -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    # a bare minus after a test is its negative result; the earlier tests' "+" does not reach it
    ("FABER +, thigh thrust +, distraction -.", {("faber", POS), ("thigh_thrust", POS), ("distraction", NEG)}),
    ("FABER +, Gaenslen.", {("faber", POS), ("gaenslen", None)}),
    ("FABER positive and Gaenslen.", {("faber", POS), ("gaenslen", None)}),
    # a result written once after a list covers the list, up to the clause mark
    ("Thigh thrust, compression and distraction positive; FABER and Gaenslen negative.",
     {("thigh_thrust", POS), ("compression", POS), ("distraction", POS), ("faber", NEG), ("gaenslen", NEG)}),
    ("FABER/Patrick, Gaenslen and thigh thrust all positive on the left.",
     {("faber", POS), ("gaenslen", POS), ("thigh_thrust", POS)}),
    # a colon between the test and its result
    ("FABER test: positive. Thigh thrust: negative.", {("faber", POS), ("thigh_thrust", NEG)}),
    # a result written once before a list covers the list
    ("positive FABER, thigh thrust and compression tests; negative distraction and Gaenslen",
     {("faber", POS), ("thigh_thrust", POS), ("compression", POS), ("distraction", NEG), ("gaenslen", NEG)}),
    ("SI provocative tests positive: FABER, thigh thrust and compression.",
     {("faber", POS), ("thigh_thrust", POS), ("compression", POS)}),
    ("Positive Patrick's test, thigh thrust (P4 test) and Gaenslen\u2019s; Fortin finger test +",
     {("faber", POS), ("thigh_thrust", POS), ("gaenslen", POS), ("fortin_finger", POS)}),
    # a test's own result beats the list's
    ("Positive FABER and Gaenslen negative.", {("faber", POS), ("gaenslen", NEG)}),
    # what already read right
    ("FABER positive on the right, thigh thrust positive, compression positive, distraction negative, Gaenslen negative.",
     {("faber", POS), ("thigh_thrust", POS), ("compression", POS), ("distraction", NEG), ("gaenslen", NEG)}),
    ("Provocative tests: FABER (+), Gaenslen (+), thigh thrust (-), distraction (-), compression (+).",
     {("faber", POS), ("gaenslen", POS), ("thigh_thrust", NEG), ("distraction", NEG), ("compression", POS)}),
    ("FABER positive, Gaenslen negative, thigh thrust (+).", {("faber", POS), ("gaenslen", NEG), ("thigh_thrust", POS)}),
    ("Positive sacral thrust. Fortin finger test +. Active SLR negative.",
     {("sacral_thrust", POS), ("fortin_finger", POS), ("active_slr", NEG)}),
    ("FABER -ve, Gaenslen +ve.", {("faber", NEG), ("gaenslen", POS)}),
    ("FABER - positive.", {("faber", POS)}),
    ("FABER performed.", {("faber", None)}),
    ("Cord compression at T10.", set()),
])
def test_each_test_gets_its_own_or_its_lists_result(text, expected):
    assert si_tests_of(text) == expected


def test_tallies_still_count():
    found = measurements_of(note("SI joint provocative tests positive: 3/5.\nSI provocative tests: 4/5 negative."))
    assert sorted(m.value for m in found if m.name == "si_provocative_test") == [1.0, 3.0]


# --- compression and distraction in sentences of their own ----------------------------------------------

EXAM = ("HPI: Right buttock pain for 9 months.\n"
        "PHYSICAL EXAM:\n"
        "Right SI joint tender.\n"
        "Thigh thrust positive. Compression positive. Distraction positive. FABER negative. Gaenslen negative.\n")


def test_compression_and_distraction_after_an_si_exam_are_si_tests():
    assert si_tests_of(EXAM) == {("thigh_thrust", POS), ("compression", POS), ("distraction", POS),
                                ("faber", NEG), ("gaenslen", NEG)}


@pytest.mark.parametrize("text", [
    # compression of a root or a vertebra is never an SI test, in or out of an SI exam
    "FABER positive. MRI shows nerve root compression at L5. Compression fracture of L1.",
    # the neck's tests
    "FABER positive. Spurling's compression negative. Cervical distraction positive.",
    # before the SI exam, or without one, the words are not tests
    "Compression positive. FABER negative.",
    "Compression positive. Distraction negative.",
    # another section of the note
    "PHYSICAL EXAM:\nFABER positive.\nPLAN:\nCompression stockings. Compression positive.",
    # no result written: no reading
    "FABER positive. Compression was applied.",
])
def test_compression_and_distraction_outside_an_si_exam_are_not(text):
    assert {t for t, _ in si_tests_of(text)} <= {"faber"}


def test_a_blank_line_ends_the_si_exam_in_a_note_kept_as_written():
    """A Procedure or Observation note keeps its blank lines (attachments are read section by section)."""
    procedure = fhir.procedure("Office visit", "2025-05-01", note="FABER positive.\n\nCompression positive.")
    assert {m.test for m in measurements_of(procedure) if m.name == "si_provocative_test"} == {"faber"}
    procedure = fhir.procedure("Office visit", "2025-05-01", note="FABER positive.\nCompression positive.")
    assert {m.test for m in measurements_of(procedure) if m.name == "si_provocative_test"} == {"faber", "compression"}


# --- block relief written as pain scores -----------------------------------------------------------------

def si_injection(note_text: str, day: str = "2025-03-10") -> dict:
    return fhir.procedure("Right sacroiliac joint injection", day, SI_INJECTION_CPT, note=note_text)


@pytest.mark.parametrize("resource, expected", [
    (si_injection("Pain 8/10 before, 1/10 after the block."), [87.5]),
    (si_injection("Pain 8/10 before, 2/10 after."), [75.0]),
    (note("Pain decreased from 8/10 to 2/10 after SI joint injection."), [75.0]),
    (note("Procedure: right SI joint injection under fluoroscopy.\nPre-procedure pain 8/10, post-procedure pain 2/10.",
          "Procedure note"), [75.0]),
    (note("Right SIJ injected under fluoroscopy; 8/10 before and 1/10 after."), [87.5]),
    (note("Pain 8 -> 2/10 after the SI joint block."), [75.0]),
    (si_injection("Pain 8/10 \u2192 1/10 at 30 minutes."), [87.5]),
    (note("Pain increased from 3/10 to 6/10 after the SI joint injection."), [0.0]),
    # another injection's, or no injection's, or a plan: no SI block
    (note("Pain decreased from 8/10 to 2/10 after L4-5 epidural steroid injection."), []),
    (note("Pain decreased from 8/10 to 4/10 with physical therapy."), []),
    (note("Pain decreased from 8/10 to 4/10 with physical therapy; SI joint injection planned."), []),
    (note("Right SI joint injection 3/10/2025. Pain decreased from 8/10 to 4/10 with physical therapy."), []),
    (note("If pain goes from 8/10 to 2/10 after the SI joint injection, will consider fusion."), []),
    (note("Pain 8/10 today, was 2/10 last year."), []),
])
def test_relief_written_as_pain_scores_before_and_after(resource, expected):
    assert reliefs(resource) == expected


@pytest.mark.parametrize("resource, expected", [
    # relief written as a reduction or an improvement of the pain, beside the SI block
    (note("Left SIJ block under fluoroscopy: 75% reduction in pain."), [75.0]),
    (note("After the SI block, pain improved by 80% for 6 hours."), [80.0]),
    (si_injection("90% pain reduction at 30 minutes."), [90.0]),
    # another treatment's
    (note("Lumbar ESI gave 80% reduction in pain."), []),
    (note("Pain improved by 50% with PT."), []),
])
def test_relief_written_as_a_reduction_or_improvement(resource, expected):
    assert reliefs(resource) == expected


def test_relief_from_scores_quotes_the_text_and_keeps_the_guidance():
    resource = note("Procedure: right SI joint injection under fluoroscopy.\nPain 8/10 before, 1/10 after the block.",
                    "Procedure note")
    (block,) = [m for m in measurements_of(resource) if m.name == "si_block_relief"]
    assert (block.value, block.unit, block.guided) == (87.5, "%", True)
    assert "Pain 8/10 before, 1/10 after the block" in block.evidence.description


def test_scores_before_and_after_pass_the_prefilter():
    """No measurement phrase is near the numbers: the pre-filter must still let the text through."""
    text = "Right SIJ injected under fluoroscopy; 8/10 before and 1/10 after."
    assert measures.may_measure(text)
    assert not measures.may_measure("Right SIJ injected under fluoroscopy.")


# --- the service's answer (si_fusion) ---------------------------------------------------------------------

def _si_chart(name: str, exam: str, block_notes=("80% relief of pain after the block.",) * 2) -> Golden:
    chart = Golden(name)
    chart.treated()
    chart.condition("Sacroiliitis, right", "M46.1", onset="2024-10-01")
    chart.note("Spine clinic note", "HPI: Right SI joint pain for 9 months, 7/10.\nPHYSICAL EXAM:\n" + exam,
               day="2025-04-01")
    chart.observation("Pain severity 0-10", value=7, unit="{score}", effective="2025-05-01", loinc="72514-3")
    for day, text in zip(("2025-03-10", "2025-04-10"), block_notes):
        chart.procedure("Right sacroiliac joint injection", day, SI_INJECTION_CPT, note=text)
    return chart


@pytest.mark.parametrize("exam, met", [
    ("FABER +, thigh thrust +, distraction -.", False),              # 2 positive
    ("FABER +, thigh thrust +, distraction +.", True),
    ("Thigh thrust positive. Compression positive. Distraction positive. FABER negative. Gaenslen negative.", True),
    ("Thigh thrust, compression and distraction positive; FABER and Gaenslen negative.", True),
    ("FABER/Patrick, Gaenslen and thigh thrust all positive on the left.", True),
])
def test_si_fusion_counts_the_tests_as_written(order_sign, exam, met):
    chart = _si_chart(f"si-exam-{zlib.crc32(exam.encode()):08x}", exam)
    assert (topics(answer(order_sign, chart, [si_order(chart)])) == {MET}) is met


@pytest.mark.parametrize("block_notes, met", [
    (("Pain 8/10 before, 1/10 after the block.", "Pain 8/10 before, 2/10 after the block."), True),
    (("Pain 8/10 before, 1/10 after the block.", "Pain 8/10 before, 4/10 after the block."), False),    # 50%
])
def test_si_fusion_reads_block_relief_written_as_scores(order_sign, block_notes, met):
    chart = _si_chart(f"si-scores-{met}", "Positive compression, thigh thrust, FABER tests.", block_notes)
    result = answer(order_sign, chart, [si_order(chart)])
    assert (topics(result) == {MET}) is met
    if not met:
        assert topics(result) == {SI_NO}
