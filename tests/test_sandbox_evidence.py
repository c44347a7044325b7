"""Where the sandbox says each piece of evidence was read (cards/provenance.py, POST /sandbox/api/evaluate
`evidence` and `unread`), per shape, over HTTP against the service under gunicorn; and the rule that the
sandbox and `spine-cds evaluate` read a payer's claims when the tester's chart carries them
(cds_service/evaluate.reads_payer_data), with CDS_PAYER_DATA left off as the `service` fixture leaves it."""
from __future__ import annotations

import base64
import copy
import json
import re

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.evaluate import reads_payer_data
from cds_service.synthetic import SCENARIOS, synthesize
from tests.support.servers import ServerProcess, mini_fhir_command

API = "/sandbox/api"
REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9.-]+")
TOKEN = "sandbox-evidence-token"
# The resource types each shape keeps its facts in; a row read from a type outside its shape's would be a
# row the page made up, or a chart read from another shape's resources.
SHAPE_TYPES = {
    "coded": {"Condition", "Procedure", "Observation", "DiagnosticReport", "MedicationRequest"},
    "ehr": {"Condition", "Encounter", "DocumentReference", "DiagnosticReport", "Observation", "MedicationStatement",
            "Procedure"},
    "payer": {"ExplanationOfBenefit", "Claim", "DiagnosticReport"},
}
# (scenario, shape, the types its evidence must include)
CASES = [
    ("seed-001", "coded", {"Procedure", "Condition", "DiagnosticReport"}),
    ("fusion-criteria-met", "ehr", {"Encounter", "DocumentReference", "DiagnosticReport"}),
    ("fusion-criteria-met", "payer", {"ExplanationOfBenefit"}),
]


def evaluate(http, service, body, params=None, expect=200) -> dict:
    response = http.post(service.url + API + "/evaluate", json=body, params=params, timeout=60)
    assert response.status_code == expect, response.text
    return response.json()


def topics(answer: dict) -> set[str]:
    return {c["source"]["topic"]["code"] for c in answer["cards"]}


def chart_of(request: dict) -> dict[str, dict]:
    """Type/id -> resource, for everything the request's prefetch holds."""
    found = {}
    for value in request["prefetch"].values():
        for resource in [e["resource"] for e in value.get("entry", [])] if value.get("resourceType") == "Bundle" else [value]:
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


@pytest.mark.integration
@pytest.mark.parametrize("name, shape, needed", CASES)
def test_evidence_rows_name_the_resources_of_the_shape_they_were_read_from(service, http, name, shape, needed):
    instance = synthesize(name, 1, 0, shape)[0]
    body = evaluate(http, service, instance.request, {"scenario": name, "shape": shape})
    assert body["shape"] == shape and topics(body["answer"]) == SCENARIOS[name].expected_in(shape)
    rows = body["evidence"]
    types = {row["resource_type"] for row in rows}
    assert needed <= types <= SHAPE_TYPES[shape], types
    chart = chart_of(instance.request)
    for row in rows:
        assert REFERENCE.fullmatch(row["reference"]) and row["reference"].split("/")[0] == row["resource_type"]
        assert row["reference"] in chart, f"{row['reference']} is not in the chart sent"
        assert row["what"] and row["criteria"] and all(c["id"] and c["title"] and c["status"] for c in row["criteria"])
        assert row["date"] is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"])
    dated = [row["date"] for row in rows if row["date"]]
    assert dated == sorted(dated) and all(row["date"] is None for row in rows[len(dated):])
    if name == "fusion-criteria-met":   # the PT, the care and the level are read in every shape
        assert {c["id"] for row in rows for c in row["criteria"]} >= {"pt_documentation", "conservative_care", "fusion_levels"}
    assert body["unread"] == [] and body["payer_data"] is (shape == "payer")


@pytest.mark.integration
def test_each_pt_visit_is_a_row_with_its_date_and_what_text_was_quoted(service, http):
    """ehr: every finished PT Encounter sent is a row the PT rule used, dated by its period; the discharge
    note's rows quote its words and say where in the resource (the attachment) they were read."""
    instance = synthesize("fusion-criteria-met", 1, 0, "ehr")[0]
    rows = evaluate(http, service, instance.request, {"shape": "ehr"})["evidence"]
    encounters = {ref: r for ref, r in chart_of(instance.request).items() if ref.startswith("Encounter/")}
    pt_rows = [row for row in rows if row["resource_type"] == "Encounter"
               and "pt_documentation" in {c["id"] for c in row["criteria"]}]
    assert {row["reference"] for row in pt_rows} == set(encounters) and len(encounters) >= 6
    for row in pt_rows:
        assert row["date"] == encounters[row["reference"]]["period"]["start"][:10]
    notes = [row for row in rows if row["resource_type"] == "DocumentReference" and row["source"]]
    assert notes and all(row["quote"] and row["source"].startswith("content[") for row in notes)
    counted = [c for row in rows for c in row["counted_as"]]
    assert any(re.fullmatch(r"PT \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d: \d+ visits over \d+ weeks", c) for c in counted), counted
    assert "spondylolisthesis grade 2 at L5-S1" in counted


@pytest.mark.integration
def test_payer_claim_lines_are_rows_with_the_line_they_came_from(service, http):
    instance = synthesize("fusion-criteria-met", 1, 0, "payer")[0]
    rows = evaluate(http, service, instance.request)["evidence"]
    claims = [row for row in rows if row["resource_type"] == "ExplanationOfBenefit"]
    assert len(claims) >= 8
    assert all(re.fullmatch(r"item\[\d+\]", row["source"]) and row["date"] for row in claims)
    assert any("97110" in row["what"] for row in claims)


@pytest.mark.integration
def test_attachments_the_service_cannot_decode_are_listed_unread(service, http):
    request = copy.deepcopy(synthesize("fusion-criteria-met", 1, 0, "ehr")[0].request)
    broken = None
    for entry in request["prefetch"]["notes"]["entry"]:
        attachment = entry["resource"]["content"][0]["attachment"]
        if broken is None:
            attachment["contentType"] = "application/msword"
            attachment["data"] = base64.b64encode(b"\xd0\xcf\x11\xe0 not a note").decode()
            broken = f"DocumentReference/{entry['resource']['id']}"
    body = evaluate(http, service, request)
    assert len(body["unread"]) == 1 and broken in body["unread"][0] and "application/msword" in body["unread"][0]
    assert broken not in {row["reference"] for row in body["evidence"] if row["source"]}


@pytest.mark.integration
def test_no_spine_order_reads_no_evidence(service, http):
    body = evaluate(http, service, synthesize("not-spine", 1, 0)[0].request)
    assert body["evidence"] == [] and body["unread"] == []


@pytest.mark.integration
def test_evaluate_takes_the_shape_for_the_scenario_expectation(service, http):
    instance = synthesize("si-fusion-met", 1, 0, "payer")[0]
    body = evaluate(http, service, instance.request, {"scenario": "si-fusion-met", "shape": "payer"})
    assert body["expected_topics"] == sorted(SCENARIOS["si-fusion-met"].expected_in("payer"))
    assert body["expected_topics"] != sorted(SCENARIOS["si-fusion-met"].expected_topics)
    assert topics(body["answer"]) == set(body["expected_topics"])
    assert body["shape_note"] == SCENARIOS["si-fusion-met"].differs_in("payer")
    coded = evaluate(http, service, synthesize("si-fusion-met", 1, 0)[0].request, {"scenario": "si-fusion-met"})
    assert "shape" not in coded and "shape_note" not in coded


@pytest.mark.integration
@pytest.mark.parametrize("shape", ["fhir", "Payer"])
def test_a_bad_shape_is_a_400_naming_shape(service, http, shape):
    request = synthesize("fusion-criteria-met", 1, 0)[0].request
    body = evaluate(http, service, request, {"shape": shape}, expect=400)
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["expression"] == ["shape"]
    assert "coded, ehr, payer" in body["issue"][0]["diagnostics"]


# --- claims read when the tester's chart carries them ----------------------------------------------

def test_payer_data_rule():
    payer = synthesize("fusion-criteria-met", 1, 0, "payer")[0].request
    ehr = synthesize("fusion-criteria-met", 1, 0, "ehr")[0].request
    assert reads_payer_data(payer, "off") and not reads_payer_data(ehr, "off")
    assert reads_payer_data(ehr, "on") and reads_payer_data(ehr, "off", "payer")
    fetching = {k: v for k, v in payer.items() if k != "prefetch"}
    assert not reads_payer_data(fetching, "off") and reads_payer_data(fetching, "off", "payer")
    empty = {**payer, "prefetch": {**payer["prefetch"], "explanations-of-benefit": {"resourceType": "Bundle", "type": "searchset",
                                                                                     "entry": []}, "claims": None}}
    assert not reads_payer_data(empty, "off")
    one = {**payer, "prefetch": {"claims": {"resourceType": "Claim", "id": "c"}}}
    assert reads_payer_data(one, "off")


@pytest.mark.integration
@pytest.mark.parametrize("as_bundle", [False, True])
def test_a_payer_chart_is_read_whole_without_payer_data_configured(service, http, as_bundle):
    """fusion-criteria-met keeps its PT and medication trial only on claims in the payer shape: read
    as an EHR deployment reads it, the chart would have no PT at all."""
    instance = synthesize("fusion-criteria-met", 1, 0, "payer")[0]
    body = evaluate(http, service, instance.bundle if as_bundle else instance.request)
    assert body["payer_data"] is True
    assert topics(body["answer"]) == {"criteria-met"}
    assert "ExplanationOfBenefit" in {row["resource_type"] for row in body["evidence"]}


@pytest.fixture(scope="module")
def payer_fhir_server(tmp_path_factory):
    instance = synthesize("fusion-criteria-met", 1, 0, "payer")[0]
    path = tmp_path_factory.mktemp("payer-fhir") / "chart.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": e["resource"]} for e in instance.bundle["entry"]]}))
    with ServerProcess.start(mini_fhir_command(path, token=TOKEN)) as server:
        yield server


@pytest.mark.integration
def test_the_payer_shape_fetches_claims_from_the_fhir_server(service, http, payer_fhir_server):
    """Fetch mode: no prefetch, so only the chosen shape says the chart is a payer's."""
    instance = synthesize("fusion-criteria-met", 1, 0, "payer")[0]
    request = {k: v for k, v in instance.request.items() if k != "prefetch"}
    request |= {"fhirServer": payer_fhir_server.url,
                "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                                      "scope": "patient/*.read", "subject": "spine-cds"}}
    as_payer = evaluate(http, service, request, {"shape": "payer"})
    assert as_payer["payer_data"] is True and topics(as_payer["answer"]) == {"criteria-met"}
    assert "ExplanationOfBenefit" in {row["resource_type"] for row in as_payer["evidence"]}
    as_deployed = evaluate(http, service, request)   # CDS_PAYER_DATA is off: no claims searched for
    assert as_deployed["payer_data"] is False and "pt-documentation-missing" in topics(as_deployed["answer"])
    assert "ExplanationOfBenefit" not in {row["resource_type"] for row in as_deployed["evidence"]}


@pytest.mark.parametrize("kind", ["bundle", "request"])
def test_cli_evaluate_and_review_read_a_payer_file_without_payer_data(tmp_path, monkeypatch, kind):
    monkeypatch.delenv("CDS_PAYER_DATA", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["synth", "fusion-criteria-met", "--shape", "payer", "--out", str(tmp_path)]).exit_code == 0
    path = tmp_path / f"fusion-criteria-met-0.payer.{kind}.json"
    result = runner.invoke(main, ["evaluate", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert topics(json.loads(result.output)) == {"criteria-met"}
    letter = runner.invoke(main, ["review", "--format", "json", str(path)])
    assert letter.exit_code == 0, letter.output
    assert [o["determination"] for o in json.loads(letter.output)["orders"]] == ["meets"]
    assert "ExplanationOfBenefit/" in letter.output
