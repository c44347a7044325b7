"""Imaging findings per level from coded `result` Observations (issue 11, Deliver 3): an Observation
naming stenosis (SNOMED CT with its display, a local code with text, or "Finding" whose value is the
finding), its level in bodySite (text or a SNOMED disc code) or a location component, its grade in
the interpretation or a grade component, gives the same cards and determination through HTTP as the
finding written in the MRI report body; negative, absent, entered-in-error, cancelled and
dataAbsentReason variants give what a chart without the finding gives."""
from __future__ import annotations

import base64
import random

import pytest

from cds_service.synthetic.kit import Kit
from fhir_mappings.level_facts import map_level_facts
from tests.conftest import SERVICE_PATH
from tests.stubs import fhir
from tests.support.shapes import topics

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
IMAGING = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "imaging"}]}]
STENOSIS = {"coding": [{"system": SCT, "code": "18347007", "display": "Spinal stenosis of lumbar region"}]}
L4_L5_DISC = {"coding": [{"system": SCT, "code": "84020006"}]}          # DICOM CID 7604 "L4/L5 disc"
SEVERE = [{"coding": [{"system": SCT, "code": "24484000", "display": "Severe"}]}]
MRI_DAY = 40


def _finding(k: Kit, **fields) -> dict:
    resource = {"resourceType": "Observation", "id": k.ids.named("img"), "status": "final", "category": IMAGING,
                "subject": {"reference": f"Patient/{k.patient_id}"}, "effectiveDateTime": k.ago(days=MRI_DAY),
                "code": STENOSIS, "bodySite": L4_L5_DISC, "interpretation": SEVERE}
    resource.update(fields)
    return {key: value for key, value in resource.items() if value is not None}


def _report(k: Kit, body: str | None = None, results=()) -> dict:
    resource = {"resourceType": "DiagnosticReport", "id": k.ids.named("mri"), "status": "final",
                "subject": {"reference": f"Patient/{k.patient_id}"}, "effectiveDateTime": k.ago(days=MRI_DAY),
                "code": {"text": "MRI LUMBAR SPINE WO CONTRAST"}}
    if body is not None:
        resource["presentedForm"] = [{"contentType": "text/plain", "data": base64.b64encode(body.encode()).decode()}]
    if results:
        resource["result"] = [{"reference": f"Observation/{r['id']}"} for r in results]
    return resource


def _in_body(k: Kit, grade: str = "Severe") -> list[dict]:
    return [_report(k, f"FINDINGS:\nL3-4: No significant stenosis.\nL4-5: {grade} central canal stenosis.\n")]


def _as_result(k: Kit, **fields) -> list[dict]:
    finding = _finding(k, **fields)
    return [_report(k, results=[finding]), finding]


def _alone(k: Kit, **fields) -> list[dict]:
    return [_finding(k, **fields)]


VARIANTS = {
    "result, SNOMED finding, disc code, severity code": lambda k: _as_result(k),
    "standalone, SNOMED finding, disc code, severity code": lambda k: _alone(k),
    "result, no category, bodySite text, interpretation text": lambda k: _as_result(
        k, category=None, bodySite={"text": "L4-L5"}, interpretation=[{"text": "severe"}]),
    "finding as the value, level and severity components": lambda k: _alone(
        k, code={"coding": [{"system": LOINC, "code": "18782-3", "display": "Radiology Study observation"}],
                 "text": "Finding"},
        valueCodeableConcept=STENOSIS, bodySite=None, interpretation=None,
        component=[{"code": {"text": "Level"}, "valueString": "L4-5"},
                   {"code": {"text": "Severity"}, "valueCodeableConcept": {"coding": SEVERE[0]["coding"]}}]),
    "local code with text": lambda k: _alone(
        k, code={"coding": [{"system": "urn:oid:1.2.840.114350.1.13.999.2.7.2.696580", "code": "IMG-4471",
                             "display": "CENTRAL CANAL STENOSIS"}], "text": "Central canal stenosis"},
        bodySite={"text": "L4-5"}, interpretation=[{"text": "Severe"}]),
}
NEGATIVES = {
    "interpretation negative": lambda k: _as_result(
        k, interpretation=[{"coding": [{"system": INTERPRETATION, "code": "NEG", "display": "Negative"}]}]),
    "value absent": lambda k: _alone(k, valueCodeableConcept={"coding": [{"system": SCT, "code": "2667000"}],
                                                              "text": "Absent"}),
    "value absent, coded only": lambda k: _alone(k, valueCodeableConcept={"coding": [{"system": SCT, "code": "2667000"}]}),
    "entered in error": lambda k: _as_result(k, status="entered-in-error"),
    "cancelled": lambda k: _alone(k, status="cancelled"),
    "data absent": lambda k: _alone(k, interpretation=None, dataAbsentReason={"text": "Not performed"}),
}


def _verdicts(answer: dict) -> frozenset[str]:
    """The determination lines of the cards ("**Meets criteria:** Lumbar laminectomy L4-L5")."""
    return frozenset(line for card in answer["cards"] for line in card.get("detail", "").splitlines()
                     if line.startswith("**"))


@pytest.fixture(scope="module")
def answer(service, http):
    """imaging (Kit -> resources) -> (card topics, determination lines) for a decompression at L4-L5."""
    def run(imaging) -> tuple[frozenset, frozenset]:
        k = Kit(random.Random("imaging-observations"), 0)
        order = k.order("Lumbar laminectomy L4-L5", ["63047"], "L4-L5")
        chart = [k.patient(), k.coverage(), *k.well_treated(), *imaging(k)]
        response = http.post(service.url + SERVICE_PATH, json=fhir.make_request([order], chart, k.patient_id), timeout=30)
        assert response.status_code == 200, response.text
        return topics(response.json()), _verdicts(response.json())
    return run


@pytest.fixture(scope="module")
def in_body(answer):
    return {"severe": answer(_in_body), "mild": answer(lambda k: _in_body(k, "Mild")), "none": answer(lambda k: [])}


def test_the_report_body_decides_the_answer(in_body):
    assert in_body["severe"][0] == {"criteria-met"}
    assert in_body["mild"][0] == in_body["none"][0] == {"level-unsupported"}
    assert in_body["severe"][1] != in_body["none"][1]


@pytest.mark.parametrize("variant", VARIANTS)
def test_coded_observation_answers_as_the_report_body(answer, in_body, variant):
    assert answer(VARIANTS[variant]) == in_body["severe"]


def test_a_coded_mild_grade_answers_as_mild_in_the_body(answer, in_body):
    mild = [{"coding": [{"system": SCT, "code": "255604002", "display": "Mild"}]}]
    assert answer(lambda k: _as_result(k, interpretation=mild)) == in_body["mild"]


@pytest.mark.parametrize("variant", NEGATIVES)
def test_negative_or_void_observation_supports_nothing(answer, in_body, variant):
    assert answer(NEGATIVES[variant]) == in_body["none"]


def test_facts_are_dated_and_referenced_by_the_observation():
    k = Kit(random.Random("imaging-observations"), 0)
    report, finding = _as_result(k)
    facts = map_level_facts([report, finding])
    assert [(f.kind, str(f.interspace), f.present, f.severity) for f in facts] == [("stenosis", "L4-L5", True, "severe")]
    (fact,) = facts
    assert fact.evidence.reference == f"Observation/{finding['id']}"
    assert fact.evidence.day.isoformat() == k.ago(days=MRI_DAY)
    assert fact.evidence.description == "“Spinal stenosis of lumbar region” at L4-L5, Severe"


@pytest.mark.parametrize("fields, expected", [
    ({"code": {"coding": [{"system": SCT, "code": "240220009"}], "text": "Spinal instability"},
      "interpretation": None, "component": [{"code": {"text": "Translation"}, "valueQuantity": {"value": 4, "unit": "mm"}}]},
     ("instability", "L4-L5", True, None, 4.0)),
    ({"code": {"text": "Spondylolisthesis"}, "bodySite": None, "interpretation": None,
      "component": [{"code": {"text": "Vertebral level"}, "valueCodeableConcept": L4_L5_DISC},
                    {"code": {"text": "Meyerding grade"}, "valueInteger": 2}]},
     ("spondylolisthesis", "L4-L5", True, "2", None)),
    ({"code": {"text": "Spondylolisthesis"}, "interpretation": [{"text": "Grade II"}], "bodySite": {"text": "L5-S1"}},
     ("spondylolisthesis", "L5-S1", True, "2", None)),
    ({"interpretation": [{"text": "Not detected"}]}, ("stenosis", "L4-L5", False, None, None)),
    ({"valueBoolean": False, "interpretation": None}, ("stenosis", "L4-L5", False, None, None)),
    # A canal diameter in mm is no translation, and a grade component never names the level.
    ({"code": {"text": "Spinal instability"}, "interpretation": None,
      "component": [{"code": {"text": "AP canal diameter"}, "valueQuantity": {"value": 9, "unit": "mm"}}]},
     ("instability", "L4-L5", True, None, None)),
])
def test_coded_shapes(fields, expected):
    k = Kit(random.Random("imaging-observations"), 0)
    facts = map_level_facts(_alone(k, **fields))
    assert [(f.kind, str(f.interspace), f.present, f.severity, f.value) for f in facts] == [expected]
