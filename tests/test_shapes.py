"""Every scenario in every shape (cds_service/synthetic/shapes.py): `coded`, `ehr` as a hospital
EHR sends the chart, `payer` as a payer's CRD server holds it. Each is one clinical chart: the
same patient, orders and dates in every shape, the ehr and payer resources valid FHIR R4 with the
US Core and CARIN Blue Button required elements, and over HTTP with prefetch the same card topics
and coverage determinations in the three shapes (or the answer written down for a shape that
cannot carry a fact; the service's own misses are xfail in tests/support/shapes.py)."""
from __future__ import annotations

import base64
import json
from datetime import date

import pytest
from click.testing import CliRunner
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from cds_service.cli import main
from cds_service.synthetic import SCENARIOS, SHAPES, UnknownShape, synthesize
from tests.conftest import SERVICE_PATH, start_service
from tests.support.shapes import READER_MISSES, cases, determinations, topics

SEED = 11
PT_CPT = {"97161", "97110"}


def resources(instance, rtype: str | None = None) -> list[dict]:
    found = [e["resource"] for e in instance.bundle["entry"]]
    return [r for r in found if rtype is None or r["resourceType"] == rtype]


def base_id(instance, rid: str) -> str:
    """The id the coded chart gives what the shape renamed ("cond-1-ehr" -> "cond-1")."""
    return rid if instance.shape == "coded" else rid.removesuffix(f"-{instance.shape}")


def shaped(name: str, seed: int = SEED) -> dict:
    return {shape: synthesize(name, 1, seed, shape)[0] for shape in SHAPES}


@pytest.fixture(scope="module")
def payer_service(tmp_path_factory):
    """The service as a payer deploys it: CDS_PAYER_DATA=on, so it prefetches and reads claims, and
    coverage information required, so every order's determination is in the answer."""
    server = start_service(tmp_path_factory.mktemp("payer"), CDS_PAYER_DATA="on", CDS_COVERAGE_INFORMATION="required")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def crd_service(tmp_path_factory):
    """Coded and EHR charts, with coverage information required: the determinations are compared too
    (a hospital's deployment sends none)."""
    server = start_service(tmp_path_factory.mktemp("crd"), CDS_COVERAGE_INFORMATION="required")
    yield server
    server.stop()


def written_resources_are_r4(answer: dict) -> None:
    """What the service writes (suggested orders and Tasks, coverage-information updates) is built by
    cards/ without a model check on the hot path: every answer of every scenario is checked here."""
    actions = [a for card in answer["cards"] for s in card.get("suggestions", ()) for a in s["actions"]]
    for action in actions + answer.get("systemActions", []):
        if "resource" in action:
            model = get_fhir_model_class(action["resource"]["resourceType"])
            model.model_validate(action["resource"])


# -- over HTTP, with prefetch --------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("name, shape", list(cases()))
def test_scenario_answers_alike_in_every_shape(name, shape, crd_service, payer_service, http):
    scenario = SCENARIOS[name]
    answers, instances = {}, {}
    for each in {"coded", shape}:
        instance = instances[each] = synthesize(name, 1, SEED, each)[0]
        url = (payer_service if each == "payer" else crd_service).url + SERVICE_PATH
        response = http.post(url, json=instance.request, timeout=60)
        assert response.status_code == 200, response.text
        answers[each] = response.json()
        written_resources_are_r4(answers[each])
    got = topics(answers[shape])
    cards = [c["summary"] + "\n" + c.get("detail", "") for c in answers[shape]["cards"]]
    assert got == scenario.expected_in(shape), cards
    if scenario.differs_in(shape) is None:
        assert got == topics(answers["coded"]) == scenario.expected_topics
        shaped_ids = {base_id(instances[shape], rid): codes for rid, codes in determinations(answers[shape]).items()}
        assert shaped_ids == determinations(answers["coded"])
        assert bool(shaped_ids) == bool(scenario.expected_topics), "every spine order gets a determination"


def test_a_shape_answers_differently_only_where_written_down():
    for scenario in SCENARIOS.values():
        for shape in SHAPES:
            same = scenario.expected_in(shape) == scenario.expected_topics
            assert same == (scenario.differs_in(shape) is None), (scenario.name, shape)
    written = {(s.name, shape) for s in SCENARIOS.values() for shape in SHAPES if s.differs_in(shape)}
    assert written == {("si-fusion-met", "payer")}
    assert not written & set(READER_MISSES)       # a reader's miss is never written down as the answer
    assert {shape for _, shape in READER_MISSES} <= set(SHAPES) - {"coded"}


# -- one clinical chart -------------------------------------------------------------------------
def _pt_days(instance) -> list[str]:
    if instance.shape == "coded":
        return sorted(p["performedDateTime"] for p in resources(instance, "Procedure")
                      if {c["code"] for c in p["code"].get("coding", [])} & PT_CPT)
    if instance.shape == "ehr":
        return sorted(e["period"]["start"][:10] for e in resources(instance, "Encounter"))
    return sorted(item["servicedDate"] for eob in resources(instance, "ExplanationOfBenefit") for item in eob["item"]
                  if item["productOrService"]["coding"][0]["code"] in PT_CPT)


def _medication_days(instance) -> list[str]:
    if instance.shape == "coded":
        return sorted(m["authoredOn"] for m in resources(instance, "MedicationRequest"))
    if instance.shape == "ehr":
        return sorted(m["effectivePeriod"]["start"] for m in resources(instance, "MedicationStatement"))
    # A prescription's first fill (its refills are _refills')
    return sorted(item["servicedDate"] for eob in _pharmacy_claims(instance) if base_id(instance, eob["id"]).endswith("-eob")
                  for item in eob["item"])


def _pharmacy_claims(instance) -> list[dict]:
    return [eob for eob in resources(instance, "ExplanationOfBenefit") if eob["type"]["coding"][0]["code"] == "pharmacy"]


def test_an_active_prescription_is_filled_every_month_up_to_the_order():
    """A payer knows the patient is still on a medication by its refills: a prescription still active in
    the coded chart is a pharmacy claim every 30 days from its start up to the order (fusion-criteria-met:
    meloxicam from about seven months before)."""
    coded, payer = (shaped("fusion-criteria-met")[s] for s in ("coded", "payer"))
    (prescription,) = resources(coded, "MedicationRequest")
    assert prescription["status"] == "active"
    order_day = date.fromisoformat(coded.request["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"][:10])
    fills = sorted(date.fromisoformat(item["servicedDate"]) for eob in _pharmacy_claims(payer) for item in eob["item"])
    assert fills[0].isoformat() == prescription["authoredOn"][:10]
    assert all((later - earlier).days == 30 for earlier, later in zip(fills, fills[1:]))
    assert 0 < (order_day - fills[-1]).days <= 30


def _report_texts(instance) -> dict[str, tuple[str, str]]:
    """Report id -> (day, body) of every imaging report, Binary bodies included."""
    binaries = {f"Binary/{b['id']}": b["data"] for b in resources(instance, "Binary")}
    out = {}
    for report in resources(instance, "DiagnosticReport"):
        if instance.shape == "coded":
            out[report["id"]] = (report["effectiveDateTime"], report["conclusion"])
            continue
        (form,) = report["presentedForm"]
        data = form.get("data") or binaries[form["url"]]
        out[base_id(instance, report["id"])] = (report["effectiveDateTime"], base64.b64decode(data).decode("utf-8"))
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_shape_tells_the_same_chart(name):
    coded, ehr, payer = (shaped(name)[s] for s in SHAPES)
    for instance in (ehr, payer):
        assert base_id(instance, instance.request["context"]["patientId"]) == coded.request["context"]["patientId"]
        orders, coded_orders = ([(base_id(i, o["resource"]["id"]), o["resource"]["authoredOn"], o["resource"].get("bodySite"))
                                 for o in i.request["context"]["draftOrders"]["entry"]] for i in (instance, coded))
        assert orders == coded_orders
        assert _pt_days(instance) == _pt_days(coded)
        coded_rx = [m for m in resources(coded, "MedicationRequest")]
        assert len(_medication_days(instance)) == len(coded_rx) and _medication_days(instance) == _medication_days(coded)
        coded_reports, reports = _report_texts(coded), _report_texts(instance)
        assert reports.keys() == coded_reports.keys()
        for rid, (day, conclusion) in coded_reports.items():
            assert reports[rid][0] == day and conclusion in reports[rid][1]
    # The EHR's prose says what the coded chart's notes and text observations said, and nothing coded is lost.
    notes = " ".join(base64.b64decode(n["content"][0]["attachment"]["data"]).decode() for n in resources(ehr, "DocumentReference"))
    for resource in resources(coded):
        for note in resource.get("note", []):
            assert note["text"] in notes, resource["id"]
        if resource["resourceType"] == "Observation" and "valueString" in resource:
            assert resource["valueString"] in notes
    assert {c["id"] for c in resources(coded, "Condition")} == {base_id(ehr, c["id"]) for c in resources(ehr, "Condition")}
    ids = [{r["id"] for r in resources(i)} for i in (coded, ehr, payer)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]), "the shapes load side by side into one server"
    pt = _pt_days(coded)
    if pt:
        (discharge,) = [n for n in resources(ehr, "DocumentReference") if n["type"]["text"] == "PT Discharge Summary"]
        text = base64.b64decode(discharge["content"][0]["attachment"]["data"]).decode()
        assert f"attended {len(pt)} PT visits from" in text


def test_a_scenario_without_pt_has_no_pt_encounters_or_claims():
    ehr, payer = (synthesize("fusion-pt-missing", 1, SEED, s)[0] for s in ("ehr", "payer"))
    assert not resources(ehr, "Encounter") and not _pt_days(payer)


def test_shape_is_checked():
    with pytest.raises(UnknownShape, match="unknown shape 'fhir'; known: coded, ehr, payer"):
        synthesize("seed-001", 1, 0, "fhir")


def test_coded_is_the_default_and_unchanged():
    assert synthesize("seed-001", 2, 5) == synthesize("seed-001", 2, 5, "coded")


# -- valid FHIR R4, US Core and CARIN Blue Button required elements ------------------------------
US_CORE = {   # US Core 6+ required (1..) elements of the profiles the ehr shape claims
    "Patient": ("identifier", "name", "gender"),
    "Condition": ("clinicalStatus", "verificationStatus", "category", "code", "subject"),
    "Encounter": ("identifier", "status", "class", "type", "subject", "period"),
    "DocumentReference": ("status", "type", "category", "subject", "content", "date", "author"),
    "DiagnosticReport": ("status", "category", "code", "subject", "effectiveDateTime", "issued", "presentedForm"),
    "Observation": ("status", "category", "code", "subject"),
    "Procedure": ("status", "code", "subject", "performedDateTime"),
    "Coverage": ("identifier", "status", "type", "subscriberId", "beneficiary", "relationship", "period", "payor"),
    "MedicationStatement": ("status", "medicationReference", "subject", "effectivePeriod"),
    "Medication": ("code",),
    "Organization": ("identifier", "active", "name"),
}
CARIN_BB = {  # C4BB 2.x required elements (meta.lastUpdated and meta.profile on the claims and the plan)
    "ExplanationOfBenefit": ("meta", "identifier", "status", "type", "use", "patient", "billablePeriod", "created",
                             "insurer", "provider", "outcome", "supportingInfo", "insurance", "item", "total", "payment"),
    "Coverage": ("meta", "identifier", "status", "type", "subscriberId", "beneficiary", "relationship", "period",
                 "payor", "class"),
    "Organization": ("meta", "identifier", "active", "name"),
    "Patient": ("meta", "identifier", "name", "gender", "birthDate"),
    "DiagnosticReport": ("status", "category", "code", "subject", "effectiveDateTime", "presentedForm"),
}


def _missing(resource: dict, required) -> list[str]:
    return [f for f in required if resource.get(f) in (None, [], {}, "")]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ehr_and_payer_bundles_are_r4_with_the_profiles_required_elements(name):
    for shape, table in (("ehr", US_CORE), ("payer", CARIN_BB)):
        instance = synthesize(name, 1, 2024, shape)[0]
        Bundle.model_validate(instance.bundle)
        for resource in resources(instance):
            if resource["resourceType"] in ("ServiceRequest", "Binary"):
                continue
            assert resource["resourceType"] in table, (shape, resource["resourceType"])
            assert not _missing(resource, table[resource["resourceType"]]), (shape, resource["id"])
        for eob in resources(instance, "ExplanationOfBenefit"):
            assert eob["meta"]["lastUpdated"] and eob["meta"]["profile"][0].startswith(
                "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-")
            kinds = {c["coding"][0]["code"] for i in eob["supportingInfo"] for c in [i["category"]]}
            assert "billingnetworkcontractingstatus" in kinds
            pharmacy = eob["type"]["coding"][0]["code"] == "pharmacy"
            assert ("dayssupply" in kinds) == pharmacy and bool(eob.get("diagnosis")) != pharmacy
            assert eob["insurance"][0]["focal"] is True
            for item in eob["item"]:
                assert item["servicedDate"] and item["adjudication"] and item["productOrService"]["coding"]
                system = item["productOrService"]["coding"][0]["system"]
                assert system == ("http://www.nlm.nih.gov/research/umls/rxnorm" if pharmacy
                                  else "http://www.ama-assn.org/go/cpt")
        for condition in resources(instance, "Condition"):
            systems = [c["system"] for c in condition["code"]["coding"]]
            assert systems[-1].startswith("urn:oid:"), "a local code beside the standard ones"
    payer = synthesize(name, 1, 2024, "payer")[0]
    for rtype in ("DocumentReference", "Condition", "Procedure", "MedicationRequest", "Observation", "Encounter"):
        assert not resources(payer, rtype), f"a payer's server holds claims, not {rtype}s"
    assert not resources(synthesize(name, 1, 2024, "ehr")[0], "MedicationRequest")


def test_ehr_reports_keep_their_bodies_in_html_plain_text_and_binaries():
    forms = [f for name in SCENARIOS for r in resources(synthesize(name, 1, SEED, "ehr")[0], "DiagnosticReport")
             for f in r["presentedForm"]]
    assert {f["contentType"].split(";")[0] for f in forms} == {"text/html", "text/plain"}
    assert any("url" in f for f in forms) and any("data" in f for f in forms)


def test_request_prefetches_the_bundle_as_discovery_templates_return_it():
    for shape in ("ehr", "payer"):
        for name in ("si-fusion-met", "osteotomy-subtle-curvature", "seed-002"):
            instance = synthesize(name, 1, SEED, shape)[0]
            prefetch = instance.request["prefetch"]
            sent = {(r["resourceType"], r["id"]) for key, value in prefetch.items() if key != "patient"
                    for r in (e["resource"] for e in value["entry"])}
            held = {(r["resourceType"], r["id"]) for r in resources(instance)}
            orders = {("ServiceRequest", e["resource"]["id"]) for e in instance.request["context"]["draftOrders"]["entry"]}
            # Binaries are read at their url, Organizations never: nothing else is left out.
            assert held - sent - orders == {k for k in held if k[0] in ("Binary", "Organization", "Patient")}
            assert sent <= held
            for value in prefetch.values():
                if value.get("resourceType") == "Bundle":
                    for entry in value["entry"]:
                        form = entry["resource"].get("presentedForm") or []
                        assert all("data" in f and "url" not in f for f in form), "a Binary body is sent inline"
            if shape == "ehr":
                included = [e for e in prefetch["medication-statements"]["entry"] if e["search"]["mode"] == "include"]
                assert {e["resource"]["resourceType"] for e in included} == {"Medication"}


# -- the command line and the sandbox ---------------------------------------------------------------
def test_synth_writes_each_shape_beside_the_others(tmp_path):
    runner = CliRunner()
    for shape in SHAPES:
        result = runner.invoke(main, ["synth", "all", "--shape", shape, "--out", str(tmp_path), "--seed", "3"])
        assert result.exit_code == 0, result.output
    suffixes = {"coded": "", "ehr": ".ehr", "payer": ".payer"}
    for shape, suffix in suffixes.items():
        for name in SCENARIOS:
            bundle = json.loads((tmp_path / f"{name}-0{suffix}.bundle.json").read_text())
            assert bundle == synthesize(name, 1, 3, shape)[0].bundle
    assert len(list(tmp_path.iterdir())) == 2 * len(SCENARIOS) * len(SHAPES)
    bad = runner.invoke(main, ["synth", "all", "--shape", "fhir", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "'fhir' is not one of 'coded', 'ehr', 'payer'" in bad.output


@pytest.mark.integration
def test_sandbox_scenario_comes_in_the_shape_asked_for(service, http):
    api = service.url + "/sandbox/api/scenarios/si-fusion-met"
    for shape in SHAPES:
        body = http.get(api, params={"seed": 5, "shape": shape}, timeout=30).json()
        expected = synthesize("si-fusion-met", 1, 5, shape)[0]
        assert body["shape"] == shape and body["bundle"] == expected.bundle and body["request"] == expected.request
        assert body["expected_topics"] == sorted(SCENARIOS["si-fusion-met"].expected_in(shape))
        assert ("shape_note" in body) == (shape == "payer")
    assert http.get(api, params={"seed": 5}, timeout=30).json()["shape"] == "coded"
    bad = http.get(api, params={"shape": "fhir"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["shape"] and "coded, ehr, payer" in bad.json()["issue"][0]["diagnostics"]


# -- where each shape's facts are read from ---------------------------------------------------------
def _evaluated(request: dict, payer_data: bool = True):
    from cds_service import config, discovery, order_sign

    settings = config.load(overrides={"AUTH": "off", "VAR_DIR": "/nonexistent", "DATABASE_URL": "sqlite://",
                                      "PAYER_DATA": "on" if payer_data else "off"})
    service = discovery.service("spine-surgery-order-sign", payer_data=payer_data)
    return order_sign.evaluate(request, service, settings)


def _facts(instance):
    return _evaluated(instance.request).facts


@pytest.mark.parametrize("name, shape", list(cases()))
def test_a_shaped_bundle_evaluates_as_its_request(name, shape):
    """`spine-cds evaluate` and the sandbox read a pasted Bundle whole: the notes, encounters,
    medication statements and claims of an ehr or payer Bundle reach the readers."""
    from cds_service.synthetic.bundles import request_from_bundle

    instance = synthesize(name, 1, SEED, shape)[0]
    answer = _evaluated(request_from_bundle(instance.bundle), payer_data=shape == "payer").answer
    assert topics(answer) == instance.expected_topics, [c["summary"] for c in answer["cards"]]


def _sources(facts, kind: str | None = None) -> set[str]:
    return {e.evidence.reference.split("/")[0] for e in facts.care if kind is None or e.kind == kind}


def test_each_shape_is_read_where_it_keeps_each_fact():
    """Every place a shape keeps a fact is read, not only one of them: PT from the EHR's Encounters and
    its discharge note, the medication trial from the MedicationStatement's Medication, the listhesis
    from the report body and its IMPRESSION; the payer's from its claim lines and its report."""
    coded, ehr, payer = (shaped("fusion-criteria-met")[s] for s in SHAPES)
    visits = len(_pt_days(coded))
    facts = _facts(ehr)
    pt = [e for e in facts.care if e.kind == "physical_therapy"]
    assert sum(e.evidence.reference.startswith("Encounter/") for e in pt) == visits
    courses = [e for e in pt if not e.evidence.reference.startswith("Encounter/") and e.start]
    assert [(e.evidence.reference.split("/")[0], e.period) for e in courses] == [("DocumentReference", True)]
    assert (courses[0].start.isoformat(), courses[0].end.isoformat()) == (_pt_days(coded)[0], _pt_days(coded)[-1])
    assert _sources(facts, "medication") == {"MedicationStatement"}
    listhesis = {f.evidence.reference.split("/")[0] for f in facts.level_facts if f.kind == "spondylolisthesis"}
    assert listhesis == {"DiagnosticReport", "Observation"}
    facts = _facts(payer)
    assert _sources(facts) == {"ExplanationOfBenefit"}
    assert sum(e.kind == "physical_therapy" for e in facts.care) == visits
    assert {f.evidence.reference.split("/")[0] for f in facts.level_facts if f.kind == "spondylolisthesis"} \
        == {"DiagnosticReport"}
