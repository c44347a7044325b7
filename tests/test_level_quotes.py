"""Every level fact read from a document keeps its source (issue 11, Deliver 4): through HTTP, the card
and the review letter for a level fact read from a base64 clinical note show the note's date and
the quoted words, the letter its reference and where in the note the words stand."""
from __future__ import annotations

import base64
import random

import pytest

from cds_service.synthetic.kit import Kit
from tests.conftest import SERVICE_PATH
from tests.stubs import fhir

NOTE_DAY = 35
FINDING = "severe central canal stenosis at L4-5"
# A long sentence: the quote is the clause around the finding, trimmed to about 200 characters.
NOTE = ("SPINE SURGERY CONSULTATION\nHPI: Ten months of low back pain radiating to both legs, worse with walking.\n"
        "IMAGING: I personally reviewed the outside lumbar MRI, which shows multilevel degenerative change with disc "
        "desiccation, facet arthropathy and ligamentum flavum thickening, unchanged from the prior study overall, "
        f"with {FINDING} and lateral recess narrowing.\nPLAN: discussed options.")


def _chart():
    k = Kit(random.Random("level-quotes"), 0)
    note = {"resourceType": "DocumentReference", "id": "consult-note-1", "status": "current", "docStatus": "final",
            "subject": {"reference": f"Patient/{k.patient_id}"}, "date": f"{k.ago(days=NOTE_DAY)}T15:30:00Z",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}], "text": "Consult note"},
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                        "data": base64.b64encode(NOTE.encode()).decode()}}]}
    order = k.order("TLIF L4-L5", ["22633"], "L4-L5")
    return k, fhir.make_request([order], [k.patient(), k.coverage(), *k.well_treated(), note], k.patient_id)


@pytest.fixture(scope="module")
def request_body():
    return _chart()


def test_card_shows_the_note_date_and_quoted_words(service, http, request_body):
    k, body = request_body
    answer = http.post(service.url + SERVICE_PATH, json=body, timeout=30).json()
    (card,) = [c for c in answer["cards"] if c["source"]["topic"]["code"] == "level-unsupported"]
    line = next(line for line in card["detail"].splitlines() if FINDING in line)
    assert line.startswith(f"- {k.ago(days=NOTE_DAY)} · “")


def test_letter_shows_reference_date_quote_and_where(service, http, request_body):
    k, body = request_body
    letter = http.post(service.url + "/review", json=body, headers={"Accept": "application/json"}, timeout=60).json()
    (item,) = [e for order in letter["orders"] for e in order["evidence"]
               if e["reference"] == "DocumentReference/consult-note-1" and FINDING in e["text"]]
    assert item["date"] == k.ago(days=NOTE_DAY)
    assert item["source"] == "content[0].attachment"
    assert FINDING in item["quote"] and len(item["quote"]) <= 200
    assert "unchanged from the prior study" in item["quote"]         # the clause, not just the finding words
    assert "PLAN" not in item["quote"] and "HPI" not in item["quote"]
    markdown = http.post(service.url + "/review", json=body, headers={"Accept": "text/markdown"}, timeout=60).text
    (line,) = [line for line in markdown.splitlines() if "DocumentReference/consult-note-1" in line and FINDING in line]
    assert line.startswith(f"- {k.ago(days=NOTE_DAY)} · “") and FINDING in line
