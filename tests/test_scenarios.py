"""Every synthetic scenario (cds_service/synthetic/scenarios.py), two seeds each: the
transaction Bundle is valid FHIR R4B, the request matches it, and the running service
answers with exactly the scenario's topics."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from cds_service.synthetic import SCENARIOS, synthesize
from cds_service.synthetic.builders import IdFactory
from cds_service.synthetic.kit import shift_dates, short_level
from criteria import topics

SEEDS = (11, 2024)
ISSUE_13_TOPICS = topics.PATIENT_FACTORS
SPINE_CDS = Path(sys.executable).with_name("spine-cds")


def topics_of(answer: dict) -> set[str]:
    return {c["source"]["topic"]["code"] for c in answer["cards"]}


def keys(resources) -> set[tuple[str, str]]:
    return {(r["resourceType"], r["id"]) for r in resources}


def request_resources(request: dict) -> list[dict]:
    prefetch = request["prefetch"]
    found = [prefetch["patient"]] + [e["resource"] for key, value in prefetch.items() if key != "patient"
                                     for e in value["entry"]]
    return found + [e["resource"] for e in request["context"]["draftOrders"]["entry"]]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_gives_exactly_its_topics(order_sign, name):
    instances = [synthesize(name, 1, seed)[0] for seed in SEEDS]
    assert instances[0].bundle != instances[1].bundle
    for instance in instances:
        Bundle.model_validate(instance.bundle)
        entries = instance.bundle["entry"]
        assert instance.bundle["type"] == "transaction"
        assert all(e["request"] == {"method": "PUT", "url": f"{e['resource']['resourceType']}/{e['resource']['id']}"}
                   and e["fullUrl"].startswith("urn:uuid:") for e in entries)
        assert keys(e["resource"] for e in entries) == keys(request_resources(instance.request))
        assert [e["resource"]["resourceType"] for e in entries[:2]] == ["Patient", "Coverage"]
        assert topics_of(order_sign(instance.request)) == SCENARIOS[name].expected_topics, instance.request


def test_scenarios_cover_every_rule_topic():
    covered = set().union(*(s.expected_topics for s in SCENARIOS.values()))
    assert covered <= topics.ALL
    # data-unavailable needs a failing FHIR server, not a chart. The issue-13 topics are produced by the
    # golden charts of tests/test_payer_criteria.py (test_every_new_topic_is_produced); the synthetic
    # scenarios (cds_service/synthetic) do not document nicotine, HbA1c, scores or symptoms yet.
    assert covered == topics.ALL - {topics.DATA_UNAVAILABLE} - ISSUE_13_TOPICS


def test_varying_an_instance_moves_dates_and_patients_together():
    instances = synthesize("fusion-criteria-met", 6, seed=3)
    authored = {s.request["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"] for s in instances}
    births = {s.request["prefetch"]["patient"]["birthDate"] for s in instances}
    patients = {s.request["context"]["patientId"] for s in instances}
    assert len(authored) > 1 and len(births) > 1 and len(patients) == 6


def test_fusion_level_unsupported_suggests_the_level_with_listhesis(order_sign):
    ordered_ranges = set()
    for instance in synthesize("fusion-level-unsupported", 4, seed=8):
        (order,) = [e["resource"] for e in instance.request["context"]["draftOrders"]["entry"]]
        ordered_ranges.add(order["bodySite"][0]["text"])
        (card,) = order_sign(instance.request)["cards"]
        suggested = card["suggestions"][0]["actions"][0]["resource"]["bodySite"][0]["text"]
        (listhesis,) = [e["resource"] for e in instance.request["prefetch"]["reports"]["entry"]]
        assert f"at {short_level(suggested)}." in listhesis["conclusion"]
        assert suggested != order["bodySite"][0]["text"]
    assert len(ordered_ranges) > 1


def test_instances_do_not_depend_on_how_many_are_asked_for():
    assert synthesize("seed-001", 3, seed=5)[2] == synthesize("seed-001", 3, seed=5)[2]
    assert synthesize("seed-001", 1, seed=5)[0] == synthesize("seed-001", 3, seed=5)[0]


def test_seeded_ids_are_reproducible_and_unique_per_seed():
    first, again, other = (IdFactory.seeded(random.Random(s)) for s in (1, 1, 2))
    assert [first("cond"), first("cond")] == [again("cond"), again("cond")]
    assert first("cond") != other("cond")


def test_shift_dates_moves_every_date_field_and_keeps_the_time():
    resource = {"authoredOn": "2025-06-20T10:30:00Z", "performedPeriod": {"start": "2025-01-31", "end": "2025-03-01"},
                "note": [{"text": "2025-06-20"}], "birthDate": "1961-03-14"}
    moved = shift_dates(resource, -31)
    assert moved == {"authoredOn": "2025-05-20T10:30:00Z",
                     "performedPeriod": {"start": "2024-12-31", "end": "2025-01-29"},
                     "note": [{"text": "2025-06-20"}], "birthDate": "1961-02-11"}


def test_console_script_evaluates_synthetic_bundles(tmp_path):
    names = ["fusion-level-unsupported", "seed-001", "not-spine"]
    running = {}
    for name in names:   # one process each, run side by side: each start costs about a second
        path = tmp_path / f"{name}.bundle.json"
        path.write_text(json.dumps(synthesize(name, 1, seed=99)[0].bundle))
        running[name] = subprocess.Popen([str(SPINE_CDS), "evaluate", "--json", str(path)], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
    for name, process in running.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert topics_of(json.loads(out)) == SCENARIOS[name].expected_topics, name
