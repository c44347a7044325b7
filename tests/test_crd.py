"""Da Vinci CRD server checks, ported from the Inferno CRD test kit as listed in
../shared/research/cds-hooks-crd.md section 3 (items 1-10), plus coverage-information
invariants (CRD 2.2 q2-q9, resp-32), configuration options and the documentation forms."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from cds_service.persistence import Store
from criteria import topics
from tests.conftest import SERVICE_PATH, start_service
from tests.stubs import fhir, seeds

EXT = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"


def seed_request(n: str, **fields) -> dict:
    orders, chart = {"000": (seeds.seed_000_orders, seeds.seed_000_chart), "001": (seeds.seed_001_orders, seeds.seed_001_chart),
                     "002": (seeds.seed_002_orders, seeds.seed_002_chart)}[n]
    return fhir.make_request(orders(), chart(), **fields)


@pytest.fixture(scope="module")
def payer(tmp_path_factory):
    """A payer deployment: coverage information required, one payer served."""
    with start_service(tmp_path_factory.mktemp("payer"), CDS_COVERAGE_INFORMATION="required",
                       CDS_PAYER_IDS="synthetic-health-plan") as server:
        yield server


def post(http, server, body, expect=200):
    response = http.post(server.url + SERVICE_PATH, json=body, timeout=30)
    assert response.status_code == expect, response.text
    return response.json()


def with_payer_id(request: dict, payer_id: str = "synthetic-health-plan") -> dict:
    for entry in request["prefetch"]["coverage"]["entry"]:
        entry["resource"]["payor"] = [{"identifier": {"value": payer_id}, "display": "Synthetic Health Plan"}]
    return request


# 1-2: discovery
def test_discovery_shape_and_crd_extension(service, http):
    body = http.get(service.url + "/cds-services", timeout=10).json()
    assert isinstance(body["services"], list) and body["services"]
    for svc in body["services"]:
        assert all(isinstance(svc[k], str) for k in ("hook", "description", "id"))
    ext = body["services"][0]["extension"]
    assert ext["davinci-crd.version"] == ["2.0"]
    options = ext["davinci-crd.configuration-options"]
    for option in options:
        assert {"code", "type", "name", "description", "default"} <= set(option)
        assert option["type"] in ("boolean", "integer") and re.fullmatch(r"[A-Za-z][A-Za-z0-9\-]*", option["code"])
    for field in ("code", "name", "description"):
        assert len({o[field] for o in options}) == len(options)
    booleans = {o["code"] for o in options if o["type"] == "boolean"}
    assert booleans == set(topics.ALL) | {"coverage-info"}   # one per card type returned (dev-5)


def card_checks(card: dict, draft_ids: set[str]) -> None:
    """Inferno cards_validation.rb and suggestion_actions_validation.rb."""
    assert isinstance(card["summary"], str) and len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"] and isinstance(card["source"]["topic"]["code"], str)
    assert isinstance(card["source"]["topic"]["system"], str) and card["uuid"]
    if "suggestions" in card:
        assert card["selectionBehavior"] in ("at-most-one", "any")
        for suggestion in card["suggestions"]:
            assert suggestion["label"] and suggestion["uuid"] and suggestion["actions"]
            for action in suggestion["actions"]:
                assert action["type"] in ("create", "update", "delete") and action["description"]
                if action["type"] in ("create", "update"):
                    assert action["resource"]["resourceType"]
                if action["type"] == "update":
                    assert f"{action['resource']['resourceType']}/{action['resource']['id']}" in draft_ids
                if action["resource"]["resourceType"] == "Task":
                    Task.model_validate(action["resource"])
                    assert action["resource"]["code"]["coding"][0]["code"] == "complete-questionnaire"
                    assert action["resource"]["input"][0]["type"]["text"] == "questionnaire"
                if action["resource"]["resourceType"] == "ServiceRequest":
                    ServiceRequest.model_validate(action["resource"])
    for reason in card.get("overrideReasons", []):
        assert reason["code"] and reason["system"] and reason["display"]
    for link in card.get("links", []):
        assert link["label"] and link["type"] in ("absolute", "smart") and link["url"]
        assert not (link["type"] == "absolute" and "appContext" in link)


def coverage_checks(action: dict, draft_ids: set[str]) -> list[dict]:
    """Inferno coverage_information_system_action_validation_test.rb + CRD 2.2 invariants,
    for each coverage-information extension on the order (one per group of CPT codes)."""
    assert action["type"] == "update" and action["description"]
    resource = action["resource"]
    ServiceRequest.model_validate(resource)
    assert f"ServiceRequest/{resource['id']}" in draft_ids
    extensions = [e for e in resource["extension"] if e["url"] == EXT]
    assert extensions
    billed = [b["valueCoding"]["code"] for e in extensions for b in e["extension"] if b["url"] == "billingCode"]
    assert len(billed) == len(set(billed))                                          # disjoint scopes (covinfo-1)
    return [extension_checks(ext) for ext in extensions]


def extension_checks(ext: dict) -> dict:
    parts: dict[str, list] = {}
    for sub in ext["extension"]:
        parts.setdefault(sub["url"], []).append(sub)
    assert len(parts["coverage"]) == 1 and len(parts["covered"]) == 1
    assert parts["covered"][0]["valueCode"] in ("covered", "not-covered", "conditional")
    covered = parts["covered"][0]["valueCode"]
    if covered != "not-covered":
        assert parts["pa-needed"][0]["valueCode"] in ("no-auth", "auth-needed", "satisfied", "performpa", "conditional")
    else:
        assert "pa-needed" not in parts                                             # q2
    assert ("info-needed" in parts) == (covered == "conditional" or any(
        p["valueCode"] == "conditional" for k in ("pa-needed", "doc-needed") for p in parts.get(k, [])))  # q3
    if "doc-purpose" in parts:
        assert "reason" in parts                                                    # q8
    if "questionnaire" in parts:
        assert "doc-needed" in parts                                                # crd-ci-q1
    assert len(parts.get("doc-needed", [])) <= 1                                    # 2.0.1: 0..1
    assert len(parts["date"]) == 1 and len(parts["coverage-assertion-id"]) == 1
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", parts["date"][0]["valueDate"])
    assert re.fullmatch(r"[0-9a-f\-]{36}", parts["coverage-assertion-id"][0]["valueString"])
    return parts


def payer_seed(n: str, **fields) -> dict:
    return with_payer_id(seed_request(n, **fields))


def coverage_by_order(answer: dict, draft_ids: set[str]) -> dict[str, list[dict]]:
    """order id -> the parts of each of its coverage-information extensions."""
    out: dict[str, list[dict]] = {}
    for action in answer["systemActions"]:
        out.setdefault(action["resource"]["id"], []).extend(coverage_checks(action, draft_ids))
    return out


def draft_ids_of(request: dict) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in request["context"]["draftOrders"]["entry"]}


def codes_of(parts: dict) -> set[str]:
    return {b["valueCoding"]["code"] for b in parts.get("billingCode", [])}


def test_order_sign_cards_and_coverage_information_seed_001(payer, http):
    request = payer_seed("001")
    draft_ids = draft_ids_of(request)
    answer = post(http, payer, request)
    for card in answer["cards"]:
        card_checks(card, draft_ids)
    assert len(answer["systemActions"]) == 3    # one per ServiceRequest in the call
    by_order = coverage_by_order(answer, draft_ids)
    ids = {p["coverage-assertion-id"][0]["valueString"] for parts in by_order.values() for p in parts}
    assert len(ids) == 1                          # same coverage, one id (Inferno)
    (fusion,) = by_order["sr-fusion"]             # does-not-meet: not-covered, no pa-needed, the reason says why
    assert fusion["covered"][0]["valueCode"] == "not-covered" and "pa-needed" not in fusion
    assert "T12-L3" in fusion["reason"][0]["valueCodeableConcept"]["text"]
    assert codes_of(fusion) == {"22633", "22634", "22848"}
    (decompression,) = by_order["sr-decompression"]   # needs-documentation: conditional, doc-needed, the form
    assert decompression["covered"][0]["valueCode"] == "conditional"
    assert decompression["doc-needed"][0]["valueCode"] == "clinical" and decompression["doc-purpose"][0]["valueCode"] == "withpa"
    forms = {q["valueCanonical"].split("|")[0].rsplit("/", 1)[1] for q in decompression["questionnaire"]}
    assert forms == {"spine-pt-course"}
    (si,) = by_order["sr-si-fusion"]
    assert si["covered"][0]["valueCode"] == "not-covered"


def test_seed_002_coverage_per_cpt_code_not_covered_conditional_and_bundled(payer, http):
    request = payer_seed("002")
    by_order = coverage_by_order(post(http, payer, request), draft_ids_of(request))
    (stage_1,) = by_order["sr-stage-1"]
    assert stage_1["covered"][0]["valueCode"] == "not-covered"
    stage_2 = {frozenset(codes_of(p)): p for p in by_order["sr-stage-2"]}
    assert set(stage_2) == {frozenset({"22830"}), frozenset({"63052", "63053", "22633", "22634", "22843"}),
                            frozenset({"22214", "22216", "22848", "27280"})}
    bundled = stage_2[frozenset({"22830"})]
    assert bundled["covered"][0]["valueCode"] == "not-covered" and bundled["reason"][0]["valueCodeableConcept"]["coding"][0]["code"] == "bundled"
    conditional = stage_2[frozenset({"63052", "63053", "22633", "22634", "22843"})]
    assert conditional["covered"][0]["valueCode"] == "conditional" and "names no levels" in " ".join(
        r["valueCodeableConcept"]["text"] for r in conditional["reason"])
    assert stage_2[frozenset({"22214", "22216", "22848", "27280"})]["covered"][0]["valueCode"] == "not-covered"


def test_every_order_in_the_call_gets_coverage_and_out_of_scope_is_marked(payer, http):
    knee = fhir.service_request("Total knee arthroplasty", cpts=["27447"], sr_id="sr-knee")
    request = with_payer_id(fhir.make_request(seeds.seed_001_orders() + [knee], seeds.seed_001_chart()))
    by_order = coverage_by_order(post(http, payer, request), draft_ids_of(request))
    assert set(by_order) == {"sr-fusion", "sr-decompression", "sr-si-fusion", "sr-knee"}
    (knee_parts,) = by_order["sr-knee"]
    assert knee_parts["covered"][0]["valueCode"] == "conditional" and knee_parts["info-needed"][0]["valueCode"] == "OTH"
    assert knee_parts["reason"][0]["valueCodeableConcept"]["coding"][0]["code"] == "out-of-scope"


def test_criteria_met_order_is_covered_without_documentation_request(payer, http):
    from tests.test_rule_thresholds import SI_FUSION, si_chart, well_treated
    request = with_payer_id(fhir.make_request([SI_FUSION], well_treated() + si_chart() + [fhir.coverage()]))
    answer = post(http, payer, request)
    assert [c["source"]["topic"]["code"] for c in answer["cards"]] == ["criteria-met"]
    (action,) = answer["systemActions"]
    (parts,) = coverage_checks(action, {f"ServiceRequest/{SI_FUSION['id']}"})
    assert parts["covered"][0]["valueCode"] == "covered" and parts["pa-needed"][0]["valueCode"] == "auth-needed"
    assert "doc-needed" not in parts and "questionnaire" not in parts


def assertion_ids(answer: dict) -> set[str]:
    return {s["valueString"] for act in answer["systemActions"] for e in act["resource"]["extension"]
            if e["url"] == EXT for s in e["extension"] if s["url"] == "coverage-assertion-id"}


def test_assertion_id_stable_when_nothing_changed(payer, http):
    first = post(http, payer, payer_seed("001"))
    again = post(http, payer, payer_seed("001"))
    assert assertion_ids(first) == assertion_ids(again) and len(assertion_ids(first)) == 1
    # A re-sign sends the orders back as the EHR stored them, with our extension on: still the same id.
    resigned = payer_seed("001")
    resigned["context"]["draftOrders"]["entry"] = [{"resource": a["resource"]} for a in first["systemActions"]]
    assert assertion_ids(post(http, payer, resigned)) == assertion_ids(first)
    # A changed order is a new assertion.
    changed = payer_seed("001")
    changed["context"]["draftOrders"]["entry"][0]["resource"]["bodySite"] = [{"text": "L3-S1"}]
    assert assertion_ids(post(http, payer, changed)) != assertion_ids(first)


def test_distinct_coverages_get_distinct_assertion_ids():
    from cards.coverage_information import assertion_id
    orders = seeds.seed_001_orders()
    assert assertion_id("Coverage/a", orders) != assertion_id("Coverage/b", orders)


def test_no_task_for_a_questionnaire_the_coverage_already_lists(payer, service, http):
    def form_tasks(answer):
        return {a["resource"]["input"][0]["valueCanonical"].split("|")[0].rsplit("/", 1)[1]
                for c in answer["cards"] for s in c.get("suggestions", []) for a in s["actions"]
                if a["resource"]["resourceType"] == "Task"}
    listed = {q["valueCanonical"].split("|")[0].rsplit("/", 1)[1] for a in post(http, payer, payer_seed("001"))["systemActions"]
              for e in a["resource"]["extension"] for q in e["extension"] if q["url"] == "questionnaire"}
    assert listed == {"spine-pt-course"}
    assert "spine-pt-course" not in form_tasks(post(http, payer, payer_seed("001")))
    assert "spine-pt-course" in form_tasks(post(http, service, seed_request("000")))   # hospital: nothing listed


def test_form_task_follows_crd_task_profile(service, http):
    answer = post(http, service, seed_request("001"))
    tasks = [a["resource"] for c in answer["cards"] for s in c.get("suggestions", []) for a in s["actions"]
             if a["resource"]["resourceType"] == "Task"]
    assert tasks
    for task in tasks:
        Task.model_validate(task)
        assert task["meta"]["profile"] == ["http://hl7.org/fhir/us/davinci-crd/StructureDefinition/profile-taskquestionnaire"]
        assert task["code"]["coding"][0] == {"system": "http://hl7.org/fhir/uv/sdc/CodeSystem/temp", "code": "complete-questionnaire"}
        # The requester is the payer asking for the form (CRD: Reference(CRD Organization)), here the
        # seed Coverage's payor, named only; not the clinician signing.
        assert task["requester"] == {"display": "Synthetic Health Plan"} and task["for"] == {"reference": "Patient/pat-1"}
        assert "owner" not in task      # who fills it in is the EHR's to set
        questionnaire, after = task["input"]
        assert questionnaire["type"]["coding"][0]["code"] == "questionnaire" and questionnaire["type"]["text"] == "questionnaire"
        assert re.fullmatch(r"https://spine-cds\.dev/fhir/Questionnaire/[a-z\-]+\|\d+\.\d+\.\d+", questionnaire["valueCanonical"])
        # CRD 2.0.1 Task example and afterCompletionCode value set (CRD Temporary Codes).
        crd_temp = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
        assert after["type"]["coding"][0] == {"system": crd_temp, "code": "after-completion-action",
                                              "display": "After-completion action"}
        assert after["valueCodeableConcept"]["coding"][0]["system"] == crd_temp
        assert after["valueCodeableConcept"]["coding"][0]["code"] in ("prior-auth-include", "initial-claim-include",
                                                                      "all-claims-include")
        assert task["basedOn"][0]["reference"].startswith("ServiceRequest/") and task["authoredOn"]


def form_task_requesters(answer: dict) -> list[dict]:
    return [a["resource"]["requester"] for c in answer["cards"] for s in c.get("suggestions", []) for a in s["actions"]
            if a["resource"]["resourceType"] == "Task"]


def with_payors(request: dict, payors: list | None) -> dict:
    """The request with its Coverage's payor replaced (None: no Coverage in the chart)."""
    if payors is None:
        request["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    for entry in request["prefetch"]["coverage"]["entry"]:
        entry["resource"]["payor"] = payors
    return request


@pytest.mark.parametrize("payors, requester", [
    ([{"reference": "Organization/acme-health", "display": "Acme Health"}],
     {"reference": "Organization/acme-health", "display": "Acme Health"}),
    ([{"reference": "https://payer.example/fhir/Organization/acme"}], {"reference": "https://payer.example/fhir/Organization/acme"}),
    ([{"reference": "Patient/pat-1"}, {"identifier": {"system": "urn:oid:2.16.840.1.113883.6.300", "value": "60054"}}],
     {"type": "Organization", "identifier": {"system": "urn:oid:2.16.840.1.113883.6.300", "value": "60054"}}),
    ([{"reference": "Patient/pat-1", "display": "Self-pay"}], {"display": "The patient's payer (no Coverage in the chart names it)"}),
    ([{"type": "RelatedPerson", "display": "Guarantor"}], {"display": "The patient's payer (no Coverage in the chart names it)"}),
    (None, {"display": "The patient's payer (no Coverage in the chart names it)"}),
])
def test_form_task_requester_is_the_coverages_payer(service, http, payors, requester):
    """CRD profile-taskquestionnaire: Task.requester is the payer (an Organization) asking for the form; a
    Coverage paid by the patient or a guarantor, or none, leaves the payer unnamed rather than naming
    someone else."""
    requesters = form_task_requesters(post(http, service, with_payors(seed_request("001"), payors)))
    assert requesters and all(r == requester for r in requesters)
    for found in requesters:
        Task.model_validate({"resourceType": "Task", "status": "ready", "intent": "order", "requester": found})


def test_payer_deployment_form_task_requester_is_the_assessed_coverages_payer(payer, http):
    request = payer_seed("002")
    payor = {"reference": "Organization/shp", "identifier": {"value": "synthetic-health-plan"}, "display": "Synthetic Health Plan"}
    for entry in request["prefetch"]["coverage"]["entry"]:
        entry["resource"]["payor"] = [payor]
    requesters = form_task_requesters(post(http, payer, request))
    assert requesters and all(r == payor for r in requesters)


def test_every_gap_card_is_an_external_reference_to_its_policy(service, http):
    """CRD External Reference: links, all absolute, to the policies the rule cites."""
    answer = post(http, service, seed_request("002"))
    for card in answer["cards"]:
        assert card["links"], card["source"]["topic"]
        for link in card["links"]:
            assert link["type"] == "absolute" and re.match(r"https://[^\s]+$", link["url"]) and link["label"]


def test_suggestion_uuids_are_unique_in_the_answer(service, http):
    for n in ("000", "001", "002"):
        answer = post(http, service, seed_request(n))
        uuids = [s["uuid"] for c in answer["cards"] for s in c.get("suggestions", [])] + [c["uuid"] for c in answer["cards"]]
        assert len(uuids) == len(set(uuids)), n


def test_hospital_deployment_claims_no_coverage(service, http):
    """A hospital's service does not speak for the payer: no coverage information (README)."""
    answer = post(http, service, seed_request("000"))
    assert "systemActions" not in answer and answer["cards"]


def test_configuration_turns_coverage_information_off(payer, http):
    answer = post(http, payer, payer_seed("001", extension={"davinci-crd.configuration": {"coverage-info": False}}))
    assert "systemActions" not in answer and answer["cards"]


def test_configuration_turns_a_card_type_off_and_caps_cards(service, http):
    off = post(http, service, seed_request("001", extension={"davinci-crd.configuration": {"pt-documentation-missing": False}}))
    assert "pt-documentation-missing" not in {c["source"]["topic"]["code"] for c in off["cards"]}
    capped = post(http, service, seed_request("001", extension={"davinci-crd.configuration": {"max-cards": 1}}))
    assert len(capped["cards"]) == 1 and capped["cards"][0]["indicator"] == "warning"


def test_unknown_and_ill_typed_options_are_ignored(payer, http):
    full = post(http, payer, payer_seed("001"))
    odd = post(http, payer, payer_seed("001", extension={"davinci-crd.configuration": {
        "no-such-option": False, "coverage-info": "no", "max-cards": -3}}))
    shown = lambda a: [(c["source"]["topic"]["code"], c["summary"]) for c in a["cards"]]
    assert shown(odd) == shown(full)
    assert len(odd["systemActions"]) == len(full["systemActions"]) == 3


def test_two_coverages_in_a_payer_deployment_are_400_with_operation_outcome(payer, http):
    request = with_payer_id(seed_request("001"))
    second = fhir.coverage(cov_id="cov-2")
    second["payor"] = [{"identifier": {"value": "synthetic-health-plan"}}]
    request["prefetch"]["coverage"]["entry"].append({"resource": second})
    answer = post(http, payer, request, expect=400)
    assert answer["resourceType"] == "OperationOutcome"
    assert "2 active Coverages" in answer["issue"][0]["diagnostics"] and answer["issue"][0]["expression"][0] == "$.prefetch.coverage"


def test_no_coverage_in_a_payer_deployment_is_400(payer, http):
    request = seed_request("001")
    request["prefetch"]["coverage"] = fhir.searchset([])
    answer = post(http, payer, request, expect=400)
    assert "no active Coverage" in answer["issue"][0]["diagnostics"]


def test_coverage_of_another_payer_is_400(payer, http):
    answer = post(http, payer, with_payer_id(seed_request("001"), "other-plan"), expect=400)
    assert "does not serve" in answer["issue"][0]["diagnostics"]


def test_payer_deployment_answers_with_its_coverage(payer, http):
    answer = post(http, payer, with_payer_id(seed_request("001")))
    refs = {s["valueReference"]["reference"] for a in answer["systemActions"] for e in a["resource"]["extension"]
            for s in e["extension"] if s["url"] == "coverage"}
    assert refs == {"Coverage/cov-1"}


@pytest.mark.parametrize("form_id", ["spine-pt-course", "spine-si-diagnostics", "spine-instability-films",
                                     "spine-deformity-measurements"])
def test_questionnaires_are_published_at_their_canonical(service, http, form_id):
    resource = http.get(f"{service.url}/fhir/Questionnaire/{form_id}", timeout=10).json()
    Questionnaire.model_validate(resource)
    assert resource["url"] == f"https://spine-cds.dev/fhir/Questionnaire/{form_id}"
    found = http.get(f"{service.url}/fhir/Questionnaire", params={"url": f"{resource['url']}|{resource['version']}"},
                     timeout=10).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [form_id]


def test_unknown_questionnaire_is_404_json(service, http):
    response = http.get(service.url + "/fhir/Questionnaire/nope", timeout=10)
    assert response.status_code == 404 and "nope" in response.json()["issue"][0]["diagnostics"]


def test_calls_and_feedback_are_audited_with_ids_only(tmp_path, http):
    with start_service(tmp_path) as server:
        request = seed_request("001")
        post(http, server, request)
        post(http, server, {"hook": "order-sign"}, expect=400)
        http.post(server.url + SERVICE_PATH + "/feedback", json={"feedback": [
            {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2025-06-20T10:00:00Z"}]}, timeout=10)
    rows = Store(f"sqlite:///{tmp_path / 'var' / 'spine-cds.sqlite3'}").audit_rows()
    call, bad, feedback = rows
    assert call["kind"] == "call" and call["status"] == 200 and call["hook_instance"] == request["hookInstance"]
    assert call["patient_ref"] == "Patient/pat-1" and "level-unsupported" in call["topics"] and call["latency_ms"] > 0
    assert bad["status"] == 400 and bad["outcome"] == "client-error"
    assert feedback["kind"] == "feedback" and feedback["detail"] == "stored=1 duplicates=0"
    with Store(f"sqlite:///{tmp_path / 'var' / 'spine-cds.sqlite3'}").engine.connect() as conn:
        dumped = " ".join(str(v) for row in conn.execute(sa.text("select * from audit")) for v in row)
    assert "anterolisthesis" not in dumped and "Spondylolisthesis" not in dumped
