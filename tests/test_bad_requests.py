"""Malformed requests get a 4xx JSON answer naming the field and the problem, never a 500."""
from __future__ import annotations

import copy

import pytest

from tests.conftest import SERVICE_PATH
from tests.stubs import fhir

FUSION = fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")


def good() -> dict:
    return fhir.make_request([FUSION], [])


def without(path: str) -> dict:
    body = good()
    *parents, last = path.split(".")
    target = body
    for p in parents:
        target = target[p]
    del target[last]
    return body


def with_value(path: str, value) -> dict:
    body = good()
    *parents, last = path.split(".")
    target = body
    for p in parents:
        target = target[p]
    target[last] = value
    return body


CASES = [
    # (name, body bytes or dict, content type, status, field, words in message)
    ("not json", b"{not json", "application/json", 400, "$", "not valid JSON"),
    ("empty body", b"", "application/json", 400, "$", "empty"),
    ("json array", b"[]", "application/json", 400, "$", "object"),
    ("wrong content type", b"{}", "text/plain", 415, "Content-Type", "application/json"),
    ("missing hook", without("hook"), None, 400, "$", "'hook' is required"),
    ("missing hookInstance", without("hookInstance"), None, 400, "$", "'hookInstance' is required"),
    ("missing context", without("context"), None, 400, "$", "'context' is required"),
    ("missing draftOrders", without("context.draftOrders"), None, 400, "$.context", "'draftOrders' is required"),
    ("missing patientId", without("context.patientId"), None, 400, "$.context", "'patientId' is required"),
    ("draftOrders not a Bundle", with_value("context.draftOrders", {"resourceType": "List"}), None, 400,
     "$.context.draftOrders.resourceType", "'Bundle'"),
    ("draftOrders a string", with_value("context.draftOrders", "Bundle"), None, 400, "$.context.draftOrders", "object"),
    ("hook mismatch", with_value("hook", "patient-view"), None, 400, "$.hook", "order-sign"),
    ("fhirAuthorization without fhirServer",
     with_value("fhirAuthorization", {"access_token": "t", "token_type": "Bearer", "expires_in": 30,
                                      "scope": "patient/*.read", "subject": "cds"}), None, 400, "$", "fhirServer"),
    ("fhirServer not a URL", with_value("fhirServer", "ftp:/x"), None, 400, "$.fhirServer", "match"),
    ("prefetch value a string", with_value("prefetch", {"conditions": "none"}), None, 400, "$.prefetch.conditions",
     "resource"),
    ("invalid draft ServiceRequest", with_value("context.draftOrders", {"resourceType": "Bundle", "entry": [
        {"resource": {**FUSION, "status": 12}}]}), None, 400, "$.context.draftOrders.entry[0].resource", "status"),
    ("draft status not an R4 code", with_value("context.draftOrders", {"resourceType": "Bundle", "entry": [
        {"resource": {**FUSION, "status": "pending"}}]}), None, 400, "$.context.draftOrders.entry[0].resource.status",
     "not an R4 code"),
    ("draft intent not an R4 code", with_value("context.draftOrders", {"resourceType": "Bundle", "entry": [
        {"resource": {**FUSION, "intent": "wish"}}]}), None, 400, "$.context.draftOrders.entry[0].resource.intent",
     "not an R4 code"),
    ("draft priority not an R4 code", with_value("context.draftOrders", {"resourceType": "Bundle", "entry": [
        {"resource": {**FUSION, "priority": "whenever"}}]}), None, 400,
     "$.context.draftOrders.entry[0].resource.priority", "routine"),
    ("unknown profile", with_value("extension", {"spine-cds.profile": "acme"}), None, 400, "$.extension", "acme"),
    ("patientId with a slash", with_value("context.patientId", "Patient/1"), None, 400, "$.context.patientId", "match"),
]


@pytest.mark.parametrize("name, body, ctype, status, field, words", CASES, ids=[c[0] for c in CASES])
def test_malformed_request_gets_4xx_json(service, http, name, body, ctype, status, field, words):
    url = service.url + SERVICE_PATH
    if isinstance(body, dict):
        response = http.post(url, json=body, timeout=10)
    else:
        response = http.post(url, data=body, headers={"Content-Type": ctype}, timeout=10)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["issue"][0]["expression"][0].startswith(field), answer
    assert words.lower() in answer["issue"][0]["diagnostics"].lower(), answer
    assert answer["resourceType"] == "OperationOutcome"


def test_unknown_service_is_404_json(service, http):
    response = http.post(service.url + "/cds-services/no-such-service", json=good(), timeout=10)
    assert response.status_code == 404 and "no-such-service" in response.json()["issue"][0]["diagnostics"]


def test_wrong_method_is_405_json(service, http):
    response = http.delete(service.url + SERVICE_PATH, timeout=10)
    assert response.status_code == 405 and response.json()["issue"][0]["code"]
    assert set(response.headers["Allow"].split(", ")) >= {"POST", "OPTIONS"}


def test_over_large_body_is_413_json(tmp_path, http):
    from tests.conftest import start_service
    with start_service(tmp_path, CDS_MAX_BODY_BYTES="2000") as small:
        response = http.post(small.url + SERVICE_PATH, json=fhir.make_request([FUSION], [fhir.condition("Low back pain " * 20) for _ in range(20)]), timeout=10)
    assert response.status_code == 413 and response.json()["issue"][0]["code"]


def test_no_prefetch_and_no_fhir_server_is_412(order_sign):
    body = fhir.make_request([FUSION], prefetch=False)
    answer = order_sign(body, expect=412)
    assert "fhirServer" in answer["issue"][0]["diagnostics"] and "conditions" in answer["issue"][0]["diagnostics"]


def test_non_spine_order_gets_no_cards_and_needs_no_chart(order_sign):
    mri = fhir.service_request("MRI lumbar spine without contrast", cpts=["72148"])
    # CDS Hooks 2.0 (contract): no empty array but "cards": [].
    assert order_sign(fhir.make_request([mri], prefetch=False)) == {"cards": []}


def test_request_with_extra_unknown_fields_is_accepted(order_sign):
    body = good()
    body["context"]["selections"] = ["ServiceRequest/x"]
    body["somethingNew"] = {"a": 1}
    answer = order_sign(body)
    assert isinstance(answer["cards"], list)


@pytest.mark.parametrize("resource", [
    {"resourceType": "MedicationRequest", "id": "bad-med", "status": {"code": "active"}, "intent": "order",
     "subject": {"reference": "Patient/pat-1"}, "authoredOn": "2025-01-02", "medicationCodeableConcept": {"text": "meloxicam"}},
    {"resourceType": "Encounter", "id": "bad-enc", "status": ["finished"], "class": {"code": "AMB"},
     "subject": {"reference": "Patient/pat-1"}, "type": [{"text": "PT Visit"}], "period": {"start": "2025-01-02"}},
    {"resourceType": "ExplanationOfBenefit", "id": "bad-eob", "status": {"x": 1}, "patient": {"reference": "Patient/pat-1"},
     "outcome": {"x": 1}, "item": [{"sequence": 1, "servicedDate": "2025-01-02",
                                    "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "97110"}]}}]},
    {"resourceType": "QuestionnaireResponse", "id": "bad-qr", "status": 7, "subject": {"reference": "Patient/pat-1"}},
    {"resourceType": "ServiceRequest", "id": "bad-sr", "status": {"completed": True}, "intent": "order",
     "subject": {"reference": "Patient/pat-1"}, "code": {"text": "Physical therapy"}},
])
def test_a_care_record_with_a_malformed_status_is_skipped_not_a_500(order_sign, resource):
    """A status that is not a code (a hypothesis-made request found a dict looked up in a set of statuses):
    the record states no care; the answer is the chart's without it."""
    chart = [resource, fhir.report("MRI lumbar spine", "Grade 2 anterolisthesis at L4-5.", "2025-05-01")]
    order = fhir.service_request("TLIF L4-L5", cpts=["22633"], body_site="L4-L5")
    answer = order_sign(fhir.make_request([order], chart))
    assert answer["cards"]
