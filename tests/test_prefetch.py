"""Prefetch hydrator: the per-key states, template rendering, 412, and a real FHIR server.

The unit tests use RecordingClient, which answers on the exact expanded URL and records the
token it was given. The integration tests start tests/support/mini_fhir_server.py.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests

from cds_service.errors import DataUnavailable, InvalidRequest
from cds_service.fhir_client import FhirFetchError
from cds_service.prefetch import (
    Hydrated,
    PrefetchPolicy,
    hydrate,
    policies_from_templates,
    render_template,
)
from tests.support.servers import ServerProcess, mini_fhir_command

CHART = Path(__file__).parent / "fixtures" / "fhir" / "chart_basic.json"
FHIR = "http://ehr.test/fhir"
TOKEN = "bearer-token-abc123"
CONTEXT = {"patientId": "pat-1", "userId": "Practitioner/dr-7", "encounterId": "enc-9"}
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
    "reports": "DiagnosticReport?patient={{context.patientId}}",
    "coverage": "Coverage?patient={{context.patientId}}&status=active",
}
POLICIES = policies_from_templates(TEMPLATES)


def res(resource_type, ident, patient="pat-1"):
    r = {"resourceType": resource_type, "id": ident}
    if resource_type != "Patient":
        r["subject"] = {"reference": f"Patient/{patient}"}
    return r


def searchset(*resources, next_url=None):
    b = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
    if next_url:
        b["link"] = [{"relation": "next", "url": next_url}]
    return b


def outcome(text):
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout", "diagnostics": text}]}


class RecordingClient:
    """Stands in for FhirClient: answers by exact URL, records (kind, url, token)."""

    max_workers = 4

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []
        self._lock = threading.Lock()

    def _answer(self, kind, url, token):
        with self._lock:
            self.calls.append((kind, url, token))
        answer = self.answers.get(url)
        if answer is None:
            raise FhirFetchError("answered HTTP 404 Not Found", status=404)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def read(self, url, *, access_token=None):
        return self._answer("read", url, access_token)

    def search(self, url, *, access_token=None, base=None):
        assert base == FHIR
        return self._answer("search", url, access_token)

    def follow(self, bundle, *, base, access_token=None):
        return self._answer("follow", bundle["link"][0]["url"], access_token)


SERVER_ANSWERS = {
    f"{FHIR}/Patient/pat-1": res("Patient", "pat-1"),
    f"{FHIR}/Condition?patient=pat-1": [res("Condition", "c-server-1"), res("Condition", "c-server-2")],
    f"{FHIR}/Observation?patient=pat-1": [res("Observation", "o-1")],
    f"{FHIR}/Procedure?patient=pat-1": [],
    f"{FHIR}/MedicationRequest?patient=pat-1": [res("MedicationRequest", "m-1")],
    f"{FHIR}/DiagnosticReport?patient=pat-1": [],
    f"{FHIR}/Coverage?patient=pat-1&status=active": [{"resourceType": "Coverage", "id": "cov-1"}],
}

ABSENT = object()
MIXED = searchset(res("Condition", "c-pre-1"))
MIXED["entry"].append({"resource": outcome("partial results"), "search": {"mode": "outcome"}})

# state, key, prefetch value, expected source, expected ids, expected fetch (kind, url) or None
STATES = [
    ("resource", "patient", res("Patient", "pat-1"), "prefetch", ["pat-1"], None),
    ("searchset", "conditions", searchset(res("Condition", "c-pre-1"), res("Condition", "c-pre-2")),
     "prefetch", ["c-pre-1", "c-pre-2"], None),
    ("searchset with an outcome entry", "conditions", MIXED, "prefetch", ["c-pre-1"], None),
    ("empty searchset", "conditions", searchset(), "prefetch", [], None),
    ("collection Bundle", "conditions", {"resourceType": "Bundle", "type": "collection",
                                         "entry": [{"resource": res("Condition", "c-pre-1")}]},
     "prefetch", ["c-pre-1"], None),
    ("null read", "patient", None, "null", [], None),
    ("null search", "conditions", None, "null", [], None),
    ("OperationOutcome", "conditions", outcome("EHR search timed out"), "fhir-server",
     ["c-server-1", "c-server-2"], ("search", f"{FHIR}/Condition?patient=pat-1")),
    ("Bundle of OperationOutcomes only", "conditions",
     {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": outcome("x"), "search": {"mode": "outcome"}}]},
     "fhir-server", ["c-server-1", "c-server-2"], ("search", f"{FHIR}/Condition?patient=pat-1")),
    ("absent search", "conditions", ABSENT, "fhir-server", ["c-server-1", "c-server-2"],
     ("search", f"{FHIR}/Condition?patient=pat-1")),
    ("absent read", "patient", ABSENT, "fhir-server", ["pat-1"], ("read", f"{FHIR}/Patient/pat-1")),
    ("absent search with a fixed parameter", "coverage", ABSENT, "fhir-server", ["cov-1"],
     ("search", f"{FHIR}/Coverage?patient=pat-1&status=active")),
]


@pytest.mark.parametrize(
    "key, value, source, ids, fetch", [s[1:] for s in STATES], ids=[s[0] for s in STATES]
)
def test_prefetch_states(key, value, source, ids, fetch):
    policies = tuple(p for p in POLICIES if p.key == key)
    prefetch = {} if value is ABSENT else {key: value}
    client = RecordingClient(SERVER_ANSWERS)

    h = hydrate(prefetch, CONTEXT, policies, fhir_server=FHIR, access_token=TOKEN, client=client)

    assert h.sources == {key: source}
    assert [r["id"] for r in h.resources[key]] == ids
    assert h.failures == {}
    expected_calls = [] if fetch is None else [(*fetch, TOKEN)]
    assert client.calls == expected_calls


def test_every_key_absent_is_fetched_and_every_key_present_is_not():
    prefetch = {"patient": res("Patient", "pat-1"), "reports": None}
    client = RecordingClient(SERVER_ANSWERS)
    h = hydrate(prefetch, CONTEXT, POLICIES, fhir_server=FHIR + "/", access_token=TOKEN, client=client)
    assert h.sources == {
        "patient": "prefetch", "reports": "null", "conditions": "fhir-server", "observations": "fhir-server",
        "procedures": "fhir-server", "medications": "fhir-server", "coverage": "fhir-server",
    }
    assert sorted(url for _, url, _ in client.calls) == sorted(
        f"{FHIR}/{render_template(TEMPLATES[k], CONTEXT)}"
        for k in ("conditions", "observations", "procedures", "medications", "coverage")
    )
    assert list(h.resources) == list(TEMPLATES)  # every declared key, in declaration order


def test_extra_prefetch_keys_are_ignored():
    h = hydrate({"patient": None, "somethingElse": {"resourceType": "Patient", "id": "x"}}, CONTEXT,
                POLICIES[:1], fhir_server=None, access_token=None)
    assert h.resources == {"patient": []} and h.sources == {"patient": "null"}


def test_prefetched_first_page_with_next_link_is_followed():
    first = searchset(res("Observation", "o-1"), next_url=f"{FHIR}/Observation?patient=pat-1&_page=2")
    client = RecordingClient({f"{FHIR}/Observation?patient=pat-1&_page=2": [res("Observation", "o-2")]})
    policies = tuple(p for p in POLICIES if p.key == "observations")
    h = hydrate({"observations": first}, CONTEXT, policies, fhir_server=FHIR, access_token=TOKEN, client=client)
    assert [r["id"] for r in h.resources["observations"]] == ["o-1", "o-2"]
    assert h.sources == {"observations": "prefetch"} and h.failures == {}


def test_prefetched_first_page_with_next_link_but_no_server_keeps_the_page_and_says_so():
    first = searchset(res("Observation", "o-1"), next_url=f"{FHIR}/Observation?patient=pat-1&_page=2")
    policies = tuple(p for p in POLICIES if p.key == "observations")
    h = hydrate({"observations": first}, CONTEXT, policies, fhir_server=None, access_token=None)
    assert [r["id"] for r in h.resources["observations"]] == ["o-1"]
    assert "only the first page was prefetched" in h.failures["observations"]


def test_failed_fetch_is_recorded_and_other_keys_carry_on():
    answers = dict(SERVER_ANSWERS)
    answers[f"{FHIR}/Condition?patient=pat-1"] = FhirFetchError("timed out after 3.0 s")
    h = hydrate({}, CONTEXT, POLICIES, fhir_server=FHIR, access_token=TOKEN, client=RecordingClient(answers))
    assert h.failures == {"conditions": "Condition search at the FHIR server timed out after 3.0 s"}
    assert h.resources["conditions"] == [] and "conditions" not in h.sources
    assert [r["id"] for r in h.resources["observations"]] == ["o-1"]
    assert not h.complete


def test_failed_refetch_of_an_operation_outcome_says_so_without_quoting_it():
    # Fixed phrases only: the outcome's text could carry chart content, and failures are logged.
    policies = tuple(p for p in POLICIES if p.key == "patient")
    client = RecordingClient({f"{FHIR}/Patient/pat-1": FhirFetchError("answered HTTP 503 Service Unavailable", status=503)})
    h = hydrate({"patient": outcome("EHR gateway busy")}, CONTEXT, policies, fhir_server=FHIR, access_token=TOKEN,
                client=client)
    assert h.failures["patient"] == (
        "Patient read at the FHIR server answered HTTP 503 Service Unavailable "
        "(the prefetched value was an OperationOutcome)"
    )


# -- 412 and 400 -------------------------------------------------------------------------------
def test_missing_required_keys_without_fhir_server_is_412():
    policies = tuple(p for p in POLICIES if p.key in ("patient", "conditions", "procedures"))
    with pytest.raises(DataUnavailable) as caught:
        hydrate({"patient": res("Patient", "pat-1")}, CONTEXT, policies, fhir_server=None, access_token=TOKEN)
    err = caught.value
    assert err.status == 412
    assert err.message == (
        "prefetch keys conditions, procedures are missing and the request has no fhirServer to fetch them from"
    )
    assert err.to_json()["issue"][0]["code"] == "incomplete"


def test_operation_outcome_without_fhir_server_is_412_with_its_text():
    policies = tuple(p for p in POLICIES if p.key == "coverage")
    with pytest.raises(DataUnavailable, match=r"prefetch key coverage holds an OperationOutcome \(coverage: payer down\)"):
        hydrate({"coverage": outcome("payer down")}, CONTEXT, policies, fhir_server=None, access_token=None)


def test_missing_optional_key_without_fhir_server_is_a_failure_not_412():
    policies = policies_from_templates(TEMPLATES, required=["patient"])
    h = hydrate({"patient": res("Patient", "pat-1")}, CONTEXT, policies, fhir_server=None, access_token=None)
    assert h.sources == {"patient": "prefetch"}
    assert set(h.failures) == set(TEMPLATES) - {"patient"}
    assert h.failures["coverage"] == "not prefetched, and the request has no fhirServer to fetch it from"


def test_prefetch_entirely_omitted_without_fhir_server_is_412():
    with pytest.raises(DataUnavailable, match="prefetch keys patient, conditions, observations"):
        hydrate(None, CONTEXT, POLICIES, fhir_server=None, access_token=None)


@pytest.mark.parametrize("value", ["Patient/1", ["x"], {"id": "no-resource-type"}, 3])
def test_prefetch_value_that_is_not_fhir_is_400(value):
    with pytest.raises(InvalidRequest) as caught:
        hydrate({"patient": value}, CONTEXT, POLICIES[:1], fhir_server=FHIR, access_token=None,
                client=RecordingClient())
    assert caught.value.field == "prefetch.patient"


def test_prefetch_that_is_not_an_object_is_400():
    with pytest.raises(InvalidRequest):
        hydrate([], CONTEXT, POLICIES, fhir_server=FHIR, access_token=None, client=RecordingClient())


# -- templates ---------------------------------------------------------------------------------
RENDER_CASES = [
    ("Patient/{{context.patientId}}", {"patientId": "pat-1"}, "Patient/pat-1"),
    ("Coverage?patient={{context.patientId}}&status=active", {"patientId": "pat-1"},
     "Coverage?patient=pat-1&status=active"),
    ("Encounter/{{ context.encounterId }}", {"encounterId": "e1"}, "Encounter/e1"),
    ("Observation?patient={{context.patientId}}", {"patientId": "a b/c&d?e"}, "Observation?patient=a%20b%2Fc%26d%3Fe"),
    ("X?n={{context.count}}&f={{context.flag}}", {"count": 3, "flag": True}, "X?n=3&f=true"),
    ("Practitioner/{{userPractitionerId}}", {"userId": "Practitioner/abc"}, "Practitioner/abc"),
    ("PractitionerRole/{{userPractitionerRoleId}}", {"userId": "PractitionerRole/r1"}, "PractitionerRole/r1"),
    ("Patient/{{userPatientId}}", {"userId": "Patient/p9"}, "Patient/p9"),
    ("RelatedPerson/{{userRelatedPersonId}}", {"userId": "RelatedPerson/rp"}, "RelatedPerson/rp"),
    ("Practitioner/{{userPractitionerId}}", {"userId": "https://ehr/fhir/Practitioner/abc/_history/2"},
     "Practitioner/abc"),
    ("Patient?_count=10", {}, "Patient?_count=10"),
    # cannot be resolved → None (the key is skipped)
    ("Patient/{{context.patientId}}", {}, None),
    ("Patient/{{context.patientId}}", {"patientId": ""}, None),
    ("Patient/{{context.patientId}}", {"patientId": None}, None),
    ("Patient/{{context.patientId}}", {"patientId": 1.5}, None),
    ("Medication/{{context.medication.id}}", {"medication": {"id": "m"}}, None),
    ("X?ids={{context.draftOrders}}", {"draftOrders": {"resourceType": "Bundle"}}, None),
    ("Practitioner/{{userPractitionerId}}", {"userId": "Patient/p9"}, None),
    ("Practitioner/{{userPractitionerId}}", {}, None),
    ("Observation?date=gt{{today() - 90 days}}", {}, None),
    ("Patient/{{patientId}}", {"patientId": "pat-1"}, None),
    ("Patient/{{context.patientId", {"patientId": "pat-1"}, None),
]


@pytest.mark.parametrize("template, context, expected", RENDER_CASES)
def test_render_template(template, context, expected):
    assert render_template(template, context) == expected


def test_unresolvable_template_skips_an_optional_key_and_fails_a_required_one():
    policies = (
        PrefetchPolicy("patient", "Patient/{{context.patientId}}"),
        PrefetchPolicy("user", "Patient/{{userPatientId}}", required=False),
        PrefetchPolicy("encounter", "Encounter/{{context.encounterId}}", required=True),
    )
    client = RecordingClient(SERVER_ANSWERS)
    h = hydrate({}, {"patientId": "pat-1", "userId": "Practitioner/dr-7"}, policies, fhir_server=FHIR,
                access_token=TOKEN, client=client)
    assert h.sources == {"patient": "fhir-server"}
    assert h.skipped == {"user": "context.userId is not a Patient reference (needed for {{userPatientId}})"}
    assert h.failures == {"encounter": "Encounter data cannot be fetched: the request context has no encounterId"}
    assert [url for _, url, _ in client.calls] == [f"{FHIR}/Patient/pat-1"]


def test_policies_from_templates():
    assert [p.required for p in policies_from_templates(TEMPLATES)] == [True] * len(TEMPLATES)
    some = policies_from_templates(TEMPLATES, required=["patient", "conditions"])
    assert {p.key for p in some if p.required} == {"patient", "conditions"}
    assert some[0] == PrefetchPolicy("patient", TEMPLATES["patient"], True)
    with pytest.raises(ValueError, match="devices"):
        policies_from_templates(TEMPLATES, required=["devices"])


def test_hydrated_helpers():
    shared = res("Condition", "c1")
    h = Hydrated(resources={"a": [res("Patient", "pat-1"), shared], "b": [shared, res("Condition", "c2")], "c": []})
    assert [r["id"] for r in h.all_resources()] == ["pat-1", "c1", "c2"]
    assert [r["id"] for r in h.of_type("Condition")] == ["c1", "c2"]
    assert h.of_type("Coverage") == []


# -- against a real FHIR server ----------------------------------------------------------------
SERVER_TOKEN = "mini-server-token-42"
PAGE_SIZE = 5


def _start(request, **options) -> ServerProcess:
    server = ServerProcess.start(mini_fhir_command(CHART, **options))
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="module")
def fhir_server(request):
    return _start(request, token=SERVER_TOKEN, page_size=PAGE_SIZE)


def _stats(server, reset=False):
    with requests.get(f"{server.url}/_stats", params={"reset": "1"} if reset else None, timeout=5) as r:
        return r.json()


def _belongs_to(resource, patient_id):
    if resource["resourceType"] == "Patient":
        return resource["id"] == patient_id
    refs = [resource.get(f, {}).get("reference") for f in ("subject", "patient", "beneficiary")]
    return f"Patient/{patient_id}" in refs


@pytest.mark.integration
def test_hydrate_from_a_real_fhir_server(fhir_server):
    _stats(fhir_server, reset=True)
    h = hydrate(None, CONTEXT, POLICIES, fhir_server=fhir_server.url, access_token=SERVER_TOKEN)

    assert h.failures == {}
    assert h.sources == {key: "fhir-server" for key in TEMPLATES}
    assert all(_belongs_to(r, "pat-1") for r in h.all_resources())
    ids = {key: sorted(r["id"] for r in rs) for key, rs in h.resources.items()}
    assert ids["patient"] == ["pat-1"]
    assert ids["conditions"] == ["cond-1", "cond-2"]  # not pat-2's
    assert ids["coverage"] == ["cov-1"]  # the cancelled one is filtered out
    assert ids["procedures"] == ["proc-pt-1"]
    assert ids["medications"] == ["medreq-1", "medreq-2"]
    assert ids["reports"] == ["dr-mri-1"]
    assert len(ids["observations"]) == 24 > PAGE_SIZE  # all five pages were read

    paths = _stats(fhir_server)["paths"]
    first_pages = {p for p in paths if "_page=" not in p}
    assert first_pages == {"/" + render_template(t, CONTEXT) for t in TEMPLATES.values()}
    assert [p for p in paths if p.startswith("/Observation")] == ["/Observation?patient=pat-1"] + [
        f"/Observation?patient=pat-1&_page={n}" for n in range(2, 6)
    ]


@pytest.mark.integration
@pytest.mark.parametrize("token", ["wrong-token", None], ids=["wrong token", "no token"])
def test_a_rejected_token_fails_every_key(fhir_server, token):
    h = hydrate({}, CONTEXT, POLICIES, fhir_server=fhir_server.url, access_token=token)
    assert h.sources == {}
    assert set(h.failures) == set(TEMPLATES)
    for why in h.failures.values():
        assert "at the FHIR server answered HTTP 401 Unauthorized" in why
        assert SERVER_TOKEN not in why and (token is None or token not in why)
    assert h.failures["patient"].startswith("Patient read at the FHIR server")
    assert h.failures["coverage"].startswith("Coverage search at the FHIR server")


@pytest.mark.integration
def test_keys_are_fetched_concurrently(request):
    server = _start(request, delay_ms=300)
    keys = ["patient", "conditions", "observations", "procedures", "medications", "reports"]
    policies = tuple(p for p in POLICIES if p.key in keys)
    h = hydrate({}, CONTEXT, policies, fhir_server=server.url, access_token=None)
    assert h.failures == {} and len(h.sources) == 6
    stats = _stats(server)
    assert len([p for p in stats["paths"] if p != "/metadata"]) == 6  # /metadata: the readiness probe
    assert stats["max_in_flight"] > 1


@pytest.mark.integration
def test_mini_fhir_server_answers_like_a_fhir_server(fhir_server):
    auth = {"Authorization": f"Bearer {SERVER_TOKEN}"}
    with requests.get(f"{fhir_server.url}/metadata", timeout=5) as r:
        assert r.status_code == 200 and r.json()["resourceType"] == "CapabilityStatement"
    with requests.get(f"{fhir_server.url}/Patient/nobody", headers=auth, timeout=5) as r:
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    with requests.get(f"{fhir_server.url}/Patient?_id=pat-2", headers=auth, timeout=5) as r:
        assert [e["resource"]["id"] for e in r.json()["entry"]] == ["pat-2"]
    with requests.get(f"{fhir_server.url}/Condition?patient=Patient/pat-2", headers=auth, timeout=5) as r:
        assert [e["resource"]["id"] for e in r.json()["entry"]] == ["cond-pat2"]
    with requests.get(f"{fhir_server.url}/Condition?patinet=pat-1", headers=auth, timeout=5) as r:
        assert r.status_code == 400
    with requests.get(f"{fhir_server.url}/Condition/cond-1", timeout=5) as r:
        assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]


def test_fixture_chart_is_big_enough_to_page():
    chart = json.loads(CHART.read_text())
    assert len(chart["entry"]) >= 30
