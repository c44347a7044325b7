"""For each kind of fact (physical therapy, non-operative care, imaging at a level), the coded form
(coded-baseline: Procedures, a MedicationRequest, a report conclusion) and every other form it
takes in tests/fixtures/real_charts give the same answer: with the fact, and with the resources
holding it taken out (so the fact, not something else in the chart, decides the answer).

Over HTTP, with the chart prefetched and a FHIR server (tests/support/mini_fhir_server.py, holding
every chart) for what the prefetch points at: Binaries, result Observations, Medications.
"""
from __future__ import annotations

import json

import pytest

from cds_service import discovery
from tests.support.real_charts import load_charts, order_sign_request
from tests.support.servers import ServerProcess, mini_fhir_command

TOKEN = "forms-token"
CHARTS = [c for c in load_charts() if not c["needs_prose_reader"]]
BASELINE = next(c for c in CHARTS if c["name"] == "coded-baseline")
KINDS = ("physical_therapy", "non_operative_care", "imaging")


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory):
    resources = [r for chart in load_charts() for r in chart["resources"]]
    path = tmp_path_factory.mktemp("real") / "charts.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}))
    with ServerProcess.start(mini_fhir_command(path, token=TOKEN)) as server:
        yield server


@pytest.fixture
def answer_topics(order_sign, fhir_server):
    def run(chart: dict, without: str | None = None) -> list[str]:
        dropped = set(chart["facts"].get(without, ())) if without else set()
        kept = {**chart, "resources": [r for r in chart["resources"] if f"{r['resourceType']}/{r['id']}" not in dropped]}
        service = discovery.service("spine-surgery-order-sign", chart["payer_data"])
        request = order_sign_request(kept, service, fhirServer=fhir_server.url,
                                     fhirAuthorization={"access_token": TOKEN, "token_type": "Bearer", "expires_in": 60,
                                                        "scope": "patient/*.read", "subject": "x"})
        if chart["payer_data"]:
            # The EHR deployment of the session service has no payer keys: the claims ride in the
            # keys it has (a payer's deployment asks for them by name; test_real_charts runs one).
            claims = [r for r in kept["resources"] if r["resourceType"] in ("ExplanationOfBenefit", "Claim")]
            request["prefetch"]["notes"]["entry"] += [{"resource": r} for r in claims]
        answer = order_sign(request)
        return sorted(c["source"]["topic"]["code"] for c in answer["cards"])
    return run


def test_each_kind_of_fact_decides_the_baseline(answer_topics):
    full = answer_topics(BASELINE)
    assert full == ["criteria-met"]
    for kind in KINDS:
        assert answer_topics(BASELINE, without=kind) != full, kind


SAME_STORY = [c for c in CHARTS if c is not BASELINE and c["expected_topics"] == BASELINE["expected_topics"]]


@pytest.mark.parametrize("chart", SAME_STORY, ids=lambda c: c["name"])
def test_source_form_gives_the_coded_answer(chart, answer_topics):
    assert answer_topics(chart) == answer_topics(BASELINE)
    for kind in KINDS:
        assert answer_topics(chart, without=kind) == answer_topics(BASELINE, without=kind), kind


def test_every_kind_of_fact_is_held_in_another_form_somewhere():
    for kind in KINDS:
        assert sum(kind in c["facts"] for c in SAME_STORY) >= 4, kind
