"""The sandbox's page and JSON API (cds_service/sandbox.py), over HTTP against the service under gunicorn,
plus the levels table built from facts."""
from __future__ import annotations

import re
from datetime import date

import pytest

from cds_service.app import create_app
from cds_service.config import ConfigError
from cds_service.sandbox import level_rows
from cds_service.synthetic import SCENARIOS, synthesize
from criteria.topics import PATIENT_FACTORS as ISSUE_13_TOPICS
from criteria.spec import profile_ids
from fhir_mappings.facts import Evidence, Facts, LevelFact, Measurement, Order, OrderedProcedure
from terminology.levels import Interspace, LevelRange
from tests.conftest import SERVICE_PATH, start_service

API = "/sandbox/api"


def topics(answer: dict) -> list[str]:
    """The distinct topics (two fusion orders may each get a card of one topic), as the scenarios state them."""
    return sorted({card["source"]["topic"]["code"] for card in answer["cards"]})


def evaluate(http, service, body, *, params=None, expect=200, **kwargs) -> dict:
    response = http.post(service.url + API + "/evaluate", json=body, params=params, timeout=60, **kwargs)
    assert response.status_code == expect, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


# --- the page -------------------------------------------------------------------------------------

@pytest.mark.integration
def test_page_and_its_files_are_served_by_the_service(service, http):
    page = http.get(service.url + "/sandbox", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    html = page.text
    # No CDN, no inline script: every src/href is a relative path served here (and an empty favicon).
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sorted(references) == ["data:,", "sandbox/sandbox.css", "sandbox/sandbox.js"]
    assert "<script>" not in html
    for testid in ("scenario-select", "shape-select", "profile-select", "payload", "evaluate", "levels-table", "cards",
                   "evidence-panel", "unread-list"):
        assert f'data-testid="{testid}"' in html
    for name, mimetype in (("sandbox.js", "text/javascript"), ("sandbox.css", "text/css")):
        response = http.get(service.url + "/sandbox/" + name, timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(mimetype), name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "http://" not in response.text and "https://cdn" not in response.text
    cached = http.get(service.url + "/sandbox", headers={"If-None-Match": page.headers["ETag"]}, timeout=10)
    assert cached.status_code == 304


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/sandbox/index.html", "/sandbox/../pyproject.toml", "/sandbox/app.py",
                                  "/sandbox/%2e%2e%2fapp.py"])
def test_only_the_three_static_files_are_served(service, http, path):
    response = http.get(service.url + path, timeout=10)
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


@pytest.mark.integration
def test_trailing_slash_redirects_to_the_page(service, http):
    response = http.get(service.url + "/sandbox/", timeout=10, allow_redirects=False)
    assert response.status_code == 308
    followed = http.get(service.url + "/sandbox/", timeout=10)
    assert followed.url == service.url + "/sandbox" and followed.status_code == 200


# --- scenarios and profiles -------------------------------------------------------------------------

@pytest.mark.integration
def test_scenarios_list_names_descriptions_and_expected_topics(service, http):
    response = http.get(service.url + API + "/scenarios", timeout=10)
    assert response.status_code == 200
    listed = response.json()
    assert [s["name"] for s in listed] == list(SCENARIOS)
    for item in listed:
        scenario = SCENARIOS[item["name"]]
        assert item["description"] == scenario.description
        assert item["expected_topics"] == sorted(scenario.expected_topics)


@pytest.mark.integration
def test_scenario_fetch_gives_the_bundle_and_request_of_that_seed(service, http):
    response = http.get(service.url + API + "/scenarios/seed-001", params={"seed": 7}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    expected = synthesize("seed-001", 1, 7)[0]
    assert body["bundle"] == expected.bundle and body["request"] == expected.request
    assert body["bundle"]["type"] == "transaction" and body["request"]["hook"] == "order-sign"
    assert body["expected_topics"] == sorted(SCENARIOS["seed-001"].expected_topics)
    other = http.get(service.url + API + "/scenarios/seed-001", params={"seed": 8}, timeout=30).json()
    assert other["request"]["hookInstance"] != body["request"]["hookInstance"]
    default = http.get(service.url + API + "/scenarios/seed-001", timeout=30).json()
    assert default["seed"] == 0 and default["request"] == synthesize("seed-001", 1, 0)[0].request


@pytest.mark.integration
@pytest.mark.parametrize("path, params, status, field", [
    ("/scenarios/no-such-scenario", {}, 404, "path"),
    ("/scenarios/seed-001", {"seed": "seven"}, 400, "seed"),
    ("/scenarios/seed-001", {"seed": "-1"}, 400, "seed"),
    ("/scenarios/seed-001", {"seed": str(2**64)}, 400, "seed"),
])
def test_scenario_fetch_errors_are_json(service, http, path, params, status, field):
    response = http.get(service.url + API + path, params=params, timeout=10)
    assert response.status_code == status
    body = response.json()
    assert body["issue"][0]["expression"][0] == field and body["issue"][0]["diagnostics"]


@pytest.mark.integration
def test_profiles_come_from_the_criteria_with_the_default_marked(service, http):
    profiles = http.get(service.url + API + "/profiles", timeout=10).json()
    assert [p["id"] for p in profiles] == list(profile_ids())
    assert [p["id"] for p in profiles if p["default"]] == ["nass-2014"]
    assert all(p["title"] for p in profiles)


# --- evaluate -------------------------------------------------------------------------------------

@pytest.mark.integration
def test_evaluate_a_request_gives_the_answer_orders_and_levels(service, http):
    request = synthesize("seed-001", 1, 0)[0].request
    body = evaluate(http, service, request, params={"scenario": "seed-001"})
    assert topics(body["answer"]) == sorted(SCENARIOS["seed-001"].expected_topics)
    assert body["expected_topics"] == sorted(SCENARIOS["seed-001"].expected_topics)
    assert body["profile"] == "nass-2014" and body["request"] == request
    # The same pipeline as the CDS Hooks endpoint: the same cards for the same request (suggested
    # resources get fresh ids on every call, so compare what identifies and says).
    direct = http.post(service.url + SERVICE_PATH, json=request, timeout=60).json()

    def said(answer):
        return [(c["uuid"], c["indicator"], c["summary"], c["detail"], [s["uuid"] for s in c.get("suggestions", [])])
                for c in answer["cards"]]
    assert said(body["answer"]) == said(direct)
    assert body["answer"].get("systemActions") == direct.get("systemActions")

    orders = {o["label"]: o for o in body["orders"]}
    fusion = orders["Posterior spinal fusion T12-S2 with pelvic fixation"]
    assert fusion["reference"].startswith("ServiceRequest/") and fusion["authoredOn"] == request["context"][
        "draftOrders"]["entry"][0]["resource"]["authoredOn"]
    classes = {p["class"]: p for p in fusion["procedures"]}
    assert classes["fusion"]["codes"] == ["22633", "22634"] and classes["fusion"]["levels"] == ["T12-S2"]
    assert all(classes["fusion"]["code_labels"])
    assert {p["class"] for o in body["orders"] for p in o["procedures"]} >= {"fusion", "decompression", "si_fusion"}

    rows = {row["interspace"]: row for row in body["levels"]}
    assert [row["interspace"] for row in body["levels"]] == ["T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1", None]
    assert rows["T12-L1"]["stenosis"] is None and rows["T12-L1"]["instability"] is None
    assert rows["T12-L1"]["ordered"] == ["fusion", "pelvic_fixation"]
    assert rows["L3-L4"]["ordered"] == ["fusion", "pelvic_fixation", "decompression"]
    assert rows["L4-L5"]["stenosis"]["text"] == "moderate to severe stenosis"
    assert rows["L1-L2"]["stenosis"]["text"] == "stenosis (ungraded)"
    assert rows["L5-S1"]["instability"]["text"] == "listhesis grade 1"
    refs = [e["reference"] for e in rows["L4-L5"]["stenosis"]["evidence"]]
    assert len(refs) == 2 and all(re.fullmatch(r"(Condition|DiagnosticReport)/[\w.-]+", r) for r in refs)
    assert rows[None]["deformity"]["text"] == "subtle curvature (not significant)"


@pytest.mark.integration
def test_evaluate_a_bundle(service, http):
    bundle = synthesize("seed-002", 1, 3)[0].bundle
    body = evaluate(http, service, bundle)
    assert topics(body["answer"]) == sorted(SCENARIOS["seed-002"].expected_topics)
    assert body["request"]["hook"] == "order-sign"
    assert len(body["request"]["context"]["draftOrders"]["entry"]) == len(body["orders"])
    rows = {row["interspace"]: row for row in body["levels"]}
    assert rows["L2-L3"]["stenosis"] == {"text": "absent", "present": False, "evidence": rows["L2-L3"]["stenosis"]["evidence"]}
    assert rows["L4-L5"]["prior_fusion"]["text"] == "prior fusion"
    assert rows[None]["pseudarthrosis_or_hardware"]["text"] == "hardware failure"
    assert "expected_topics" not in body


@pytest.mark.integration
def test_evaluate_applies_the_chosen_profile(service, http):
    request = synthesize("fusion-instability-over-threshold", 1, 0)[0].request
    assert topics(evaluate(http, service, request)["answer"]) == ["criteria-met"]
    aetna = evaluate(http, service, request, params={"profile": "aetna-cpb-0743"})
    assert aetna["profile"] == "aetna-cpb-0743"
    # The synthetic chart documents no nicotine status, scores or symptoms, which Aetna asks for (issue 13).
    assert [t for t in topics(aetna["answer"]) if t not in ISSUE_13_TOPICS] == ["level-unsupported"]
    assert aetna["request"]["extension"]["spine-cds.profile"] == "aetna-cpb-0743"
    rows = {row["interspace"]: row for row in aetna["levels"]}
    assert rows["L5-S1"]["instability"]["text"] == "translation 2.5 mm on flexion-extension"


@pytest.mark.integration
def test_evaluate_orders_that_are_not_spine_surgery(service, http):
    body = evaluate(http, service, synthesize("not-spine", 1, 0)[0].request)
    assert body["answer"] == {"cards": []}
    assert body["levels"] == []
    assert len(body["orders"]) == 1 and body["orders"][0]["procedures"] == []


REQUEST = synthesize("fusion-criteria-met", 1, 0)[0].request


def _without(key: str) -> dict:
    return {k: v for k, v in REQUEST.items() if k != key}


@pytest.mark.integration
@pytest.mark.parametrize("data, content_type, params, status, field, words", [
    (b"", "application/json", {}, 400, "$", "empty"),
    (b"{\"hook\": ", "application/json", {}, 400, "$", "not valid JSON"),
    (b"[1, 2]", "application/json", {}, 400, "$", "neither"),
    (b"\"order-sign\"", "application/json", {}, 400, "$", "neither"),
    (b'{"resourceType": "Patient", "id": "p"}', "application/json", {}, 400, "$.resourceType", "Patient"),
    (b'{"resourceType": "Bundle", "type": "collection", "entry": []}', "application/json", {}, 400, "$", "draft ServiceRequest"),
    (b'{"resourceType": "Bundle", "type": "document"}', "application/json", {}, 400, "$", "Bundle.type"),
    (b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "ServiceRequest", '
     b'"status": "draft", "subject": "Patient/1"}}]}', "application/json", {}, 400, "$", "Bundle"),
    (b"{}", "text/plain", {}, 415, "Content-Type", "application/json"),
    (None, "application/json", {"profile": "medicare"}, 400, "profile", "unknown profile"),
    (None, "application/json", {"scenario": "nope"}, 400, "scenario", "unknown scenario"),
])
def test_bad_input_is_a_4xx_json_naming_the_problem(service, http, data, content_type, params, status, field, words):
    import orjson
    body = orjson.dumps(REQUEST) if data is None else data
    response = http.post(service.url + API + "/evaluate", data=body, params=params,
                         headers={"Content-Type": content_type}, timeout=30)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["issue"][0]["expression"][0] == field
    assert words in answer["issue"][0]["diagnostics"]
    assert answer["resourceType"] == "OperationOutcome"


@pytest.mark.integration
@pytest.mark.parametrize("body, field", [
    (_without("hookInstance"), "$"),
    (_without("context"), "$"),
    ({**REQUEST, "hook": "patient-view"}, "$.hook"),
    ({**REQUEST, "context": {**REQUEST["context"], "draftOrders": {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "ServiceRequest", "status": "draft"}}]}}}, None),
    ({**REQUEST, "extension": {"spine-cds.profile": "nope"}}, "$.extension['spine-cds.profile']"),
    ({**REQUEST, "prefetch": {"patient": 5}}, "$.prefetch.patient"),
])
def test_invalid_requests_are_checked_like_the_cds_hooks_endpoint(service, http, body, field):
    answer = evaluate(http, service, body, expect=400)
    assert answer["issue"][0]["code"] == "invalid" and answer["issue"][0]["diagnostics"]
    if field is not None:
        assert answer["issue"][0]["expression"][0] == field
    direct = http.post(service.url + SERVICE_PATH, json=body, timeout=30)
    assert direct.status_code == 400 and direct.json()["issue"][0]["diagnostics"] == answer["issue"][0]["diagnostics"]


@pytest.mark.integration
def test_missing_chart_without_fhir_server_is_412(service, http):
    answer = evaluate(http, service, _without("prefetch"), expect=412)
    assert answer["issue"][0]["code"] == "incomplete"


# --- deployments ----------------------------------------------------------------------------------

@pytest.mark.integration
def test_sandbox_off_answers_404_everywhere(tmp_path, http):
    with start_service(tmp_path, CDS_SANDBOX="off") as server:
        for method, path in (("GET", "/sandbox"), ("GET", "/sandbox/sandbox.js"), ("GET", API + "/scenarios"),
                             ("GET", API + "/profiles"), ("POST", API + "/evaluate")):
            response = http.request(method, server.url + path, json=REQUEST if method == "POST" else None, timeout=10)
            assert response.status_code == 404, path
            assert response.json()["issue"][0]["code"] == "not-found"
        assert http.get(server.url + "/cds-services", timeout=10).status_code == 200


@pytest.mark.integration
def test_with_client_jwts_required_the_sandbox_evaluates_but_never_fetches(tmp_path, http):
    with start_service(tmp_path, CDS_AUTH="required", CDS_SANDBOX="on") as server:
        assert http.get(server.url + "/sandbox", timeout=10).status_code == 200
        body = evaluate(http, server, REQUEST)
        assert topics(body["answer"]) == ["criteria-met"]
        # Without a JWT the sandbox must not become a way to make the service call any URL.
        fetching = {**_without("prefetch"), "fhirServer": "http://127.0.0.1:9/fhir"}
        refused = evaluate(http, server, fetching, expect=400)
        assert refused["issue"][0]["expression"][0] == "$.fhirServer"
        card = body["answer"]["cards"][0]
        feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
        response = http.post(server.url + SERVICE_PATH + "/feedback", json=feedback, timeout=10)
        assert response.status_code == 401


def test_sandbox_setting_must_be_on_or_off(tmp_path):
    with pytest.raises(ConfigError, match="CDS_SANDBOX"):
        create_app({"AUTH": "off", "VAR_DIR": str(tmp_path), "SANDBOX": "maybe"})
    app = create_app({"AUTH": "off", "VAR_DIR": str(tmp_path)}, environ={"CDS_SANDBOX": "off"})
    assert app.test_client().get("/sandbox").status_code == 404
    app = create_app({"AUTH": "off", "VAR_DIR": str(tmp_path)}, environ={})
    assert app.test_client().get("/sandbox").status_code == 200


# --- the levels table, from facts -----------------------------------------------------------------

def _space(text: str) -> Interspace:
    return Interspace.parse(text)


def _fact(kind, level, present=True, severity=None, value=None, ref="DiagnosticReport/mri-1") -> LevelFact:
    return LevelFact(kind, _space(level) if level else None, present, Evidence(ref, f"“{kind} text”", date(2025, 1, 2)),
                     severity, value)


def _facts(level_facts=(), measurements=(), orders=()) -> Facts:
    return Facts(orders=tuple(orders), care=(), red_flags=(), today=date(2025, 3, 1), level_facts=tuple(level_facts),
                 measurements=tuple(measurements))


def _order(klass: str, levels: str) -> Order:
    level_range = LevelRange.parse(levels)
    procedure = OrderedProcedure(klass, ("22630",), (level_range,), level_range.interspaces())
    return Order("ServiceRequest/sr-1", "PLIF", date(2025, 3, 1), (procedure,), {})


def test_levels_rows_follow_the_spine_and_join_orders_and_facts():
    facts = _facts([_fact("stenosis", "L2-L3", severity="mild"), _fact("stenosis", "L2-L3", severity="severe", ref="Condition/c-1"),
                    _fact("spondylolisthesis", "L4-L5", severity="2", value=30.0)],
                   orders=[_order("fusion", "L3-L5")])
    rows = level_rows(facts)
    assert [r["interspace"] for r in rows] == ["L2-L3", "L3-L4", "L4-L5"]
    assert rows[0]["ordered"] == [] and rows[1]["ordered"] == ["fusion"]
    assert rows[0]["stenosis"]["text"] == "severe stenosis"
    assert [e["reference"] for e in rows[0]["stenosis"]["evidence"]] == ["DiagnosticReport/mri-1", "Condition/c-1"]
    assert rows[0]["stenosis"]["evidence"][0]["date"] == "2025-01-02"
    assert rows[1]["stenosis"] is None
    assert rows[2]["instability"]["text"] == "listhesis grade 2 (30 %)"
    assert level_rows(None) == []


def test_levels_cells_say_absent_only_when_nothing_is_present():
    rows = {r["interspace"]: r for r in level_rows(_facts([
        _fact("stenosis", "L3-L4", present=False),
        _fact("stenosis", "L4-L5", present=False), _fact("stenosis", "L4-L5", severity="moderate"),
        _fact("prior_fusion", "L5-S1"), _fact("pseudarthrosis", "L5-S1"), _fact("hardware_failure", "L5-S1", present=False),
        _fact("instability", "L5-S1", value=4.0), _fact("destabilizing_decompression", "L5-S1"),
        _fact("deformity", None, severity="subtle"),
    ]))}
    assert rows["L3-L4"]["stenosis"] == {"text": "absent", "present": False, "evidence": rows["L3-L4"]["stenosis"]["evidence"]}
    assert rows["L4-L5"]["stenosis"]["text"] == "moderate stenosis" and rows["L4-L5"]["stenosis"]["present"]
    assert rows["L5-S1"]["prior_fusion"]["text"] == "prior fusion"
    assert rows["L5-S1"]["pseudarthrosis_or_hardware"]["text"] == "pseudarthrosis; no hardware failure"
    assert rows["L5-S1"]["instability"]["text"] == "instability, translation 4 mm; destabilizing decompression planned"
    assert rows[None]["deformity"]["text"] == "subtle curvature (not significant)"
    assert list(rows)[-1] is None


def test_levels_place_segment_measurements_at_their_level_and_regional_ones_apart():
    def measure(name, value, unit, levels=()):
        return Measurement(name, Evidence("DiagnosticReport/xr-1", "films", date(2025, 1, 5)), value, unit,
                           tuple(LevelRange.parse(text) for text in levels))
    rows = {r["interspace"]: r for r in level_rows(_facts(measurements=[
        measure("translation_flexion_extension", 3.5, "mm", ["L4-5"]),
        measure("lumbar_lordosis", 30, "deg"), measure("pi_ll_mismatch", 22, "deg"),
        measure("cobb_angle", 35, "deg", ["T10-L3"]), measure("pain_score", 8, "score"),
        measure("slip_percent", None, "%", ["L5-S1"]),
    ]))}
    assert set(rows) == {"L4-L5", None}
    assert rows["L4-L5"]["instability"]["text"] == "translation 3.5 mm on flexion-extension"
    assert rows["L4-L5"]["instability"]["evidence"][0]["reference"] == "DiagnosticReport/xr-1"
    assert rows[None]["deformity"]["text"] == "PI-LL 22°; Cobb 35° (T10-L3); LL 30°"


def test_evaluate_gives_determinations_letter_and_server_rendered_details(service, http):
    from tests.stubs import fhir, seeds
    request = fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())
    body = http.post(service.url + "/sandbox/api/evaluate", json=request, timeout=60).json()
    assert [(d["reference"], d["determination"]) for d in body["determinations"]] == [
        ("ServiceRequest/sr-fusion", "does-not-meet"), ("ServiceRequest/sr-decompression", "needs-documentation"),
        ("ServiceRequest/sr-si-fusion", "does-not-meet")]
    assert {c["code"]: c["determination"] for c in body["determinations"][0]["codes"]} == {
        "22633": "does-not-meet", "22634": "does-not-meet", "22848": "does-not-meet"}
    assert set(body["detail_html"]) == {c["uuid"] for c in body["answer"]["cards"]}
    for html in body["detail_html"].values():
        assert html.startswith("<p>") and "**" not in html and "<script" not in html
    assert "<h2>Posterior spinal fusion T12-S2 with pelvic fixation: does not meet criteria</h2>" in body["letter_html"]
    assert body["labels"]["classes"]["si_fusion"] == "SI-joint fusion"
    assert http.get(service.url + "/sandbox/api/labels", timeout=10).json() == body["labels"]


def test_server_rendered_markdown_escapes_html_and_unsafe_links():
    from cards.letter import markdown_html
    html = markdown_html("<img src=x onerror=alert(1)> **b** [x](javascript:alert(1)) [p](https://example.org)")
    assert "<img" not in html and "&lt;img" in html and "<strong>b</strong>" in html
    assert 'href="javascript' not in html and '<a href="https://example.org">p</a>' in html
