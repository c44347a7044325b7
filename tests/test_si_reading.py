"""SI-joint provocative tests read from notes as EHRs send them (base64 DocumentReference
attachments): each test's result is its own, written right after it ("FABER +", "Gaenslen (-)",
"FABER test: positive"), else the one written once for the list it is in ("X, Y and Z positive",
"positive X, Y and Z tests", "... all positive"), and a sign written after one test never reaches
the next."""
from __future__ import annotations

import pytest

from fhir_mappings.measures import measurements_of
from tests.fixtures.real_charts.build_charts import b64


def note(text: str, title: str = "Spine clinic note", day: str = "2025-05-01") -> dict:
    return {"resourceType": "DocumentReference", "id": "note-si", "status": "current",
            "subject": {"reference": "Patient/pat-1"}, "date": f"{day}T10:00:00Z", "type": {"text": title},
            "content": [{"attachment": {"contentType": "text/plain", "data": b64(text), "title": title}}]}


def si_tests_of(text: str) -> set[tuple[str, bool | None]]:
    """(test, positive) of every SI test the note names."""
    return {(m.test, m.positive) for m in measurements_of(note(text)) if m.name == "si_provocative_test"}


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
