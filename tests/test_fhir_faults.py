"""The EHR's FHIR server misbehaves; the service still answers in time, over HTTP, under gunicorn.

The service gets seed 001's orders with prefetch omitted, so it fetches the chart from
tests/support/fault_fhir_server.py (a real HTTP server process on 127.0.0.1, started and stopped
by PID). The path of `fhirServer` picks the fault and which resource types suffer it; the other
types get seed 001's chart. Expected every time: 200 with the cards computable from what could be
read, plus a `data-unavailable` card naming each failed query and why, never the access token,
never a 500, and within the time budget.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import requests

from cds_service import discovery
from tests.conftest import SERVICE_PATH, start_service
from tests.stubs import fhir, seeds
from tests.support.servers import HOST, ServerProcess, free_port

pytestmark = pytest.mark.integration

TOKEN = "fault-token-SECRET-5d41402a"
READ_TIMEOUT = 0.5
BUDGET = 10.0  # seconds: every answer must come back well within this (client timeout is 30 s)
FAULT_SERVER = Path(__file__).parent / "support" / "fault_fhir_server.py"
# The faulty queries; Patient, Condition, Procedure and MedicationRequest stay healthy.
FAULTY = ("Observation", "DiagnosticReport", "Coverage")
# One failure line per prefetch key; one query per key, but one per category for Observations.
_PREFETCH = discovery.service("spine-surgery-order-sign")["prefetch"]
KEYS = len(_PREFETCH)
QUERIES = KEYS - 1 + len(_PREFETCH["observations"].split("category=")[1].split(","))
HEALTHY = ("Patient read", "Condition search", "Procedure search", "MedicationRequest search")


def fault_command(bundle_path):
    def command(port: int) -> list[str]:
        return [sys.executable, str(FAULT_SERVER), "--host", HOST, "--port", str(port), "--bundle", str(bundle_path),
                "--slow-seconds", "5"]
    return command


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("fault-fhir") / "seed_001.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": r} for r in seeds.seed_001_chart()]}))
    with ServerProcess.start(fault_command(path)) as server:
        yield server


@pytest.fixture(scope="module")
def fast_service(tmp_path_factory):
    """The service with short FHIR timeouts (deadline per query: 0.5 + 3 x 0.5 = 2 s) and a 5 MB cap per
    query (the huge answer is still 50 MB; a smaller cap keeps reading it far from the deadline on a busy CI box)."""
    server = start_service(tmp_path_factory.mktemp("service-faults"), CDS_FHIR_READ_TIMEOUT=str(READ_TIMEOUT),
                           CDS_FHIR_CONNECT_TIMEOUT="0.5", CDS_FHIR_MAX_BYTES="5000000")
    yield server
    server.stop()


def call(service, fhir_server: str) -> tuple[dict, str, float]:
    """POST seed 001's orders without prefetch; (answer, raw text, seconds). Asserts a timely 200 JSON."""
    body = fhir.make_request(seeds.seed_001_orders(), prefetch=False, fhirServer=fhir_server,
                             fhirAuthorization={"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                                                "scope": "patient/*.read", "subject": "spine-cds"})
    started = time.monotonic()
    response = requests.post(service.url + SERVICE_PATH, json=body, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["Content-Type"].startswith("application/json")
    assert elapsed < BUDGET, f"answered after {elapsed:.1f} s"
    return response.json(), response.text, elapsed


def topics(answer: dict) -> list[str]:
    return [card["source"]["topic"]["code"] for card in answer["cards"]]


def unavailable_detail(answer: dict) -> str:
    cards = [c for c in answer["cards"] if c["source"]["topic"]["code"] == "data-unavailable"]
    assert len(cards) == 1, topics(answer)
    return cards[0]["detail"]


def failed_lines(detail: str) -> list[str]:
    return [line for line in detail.splitlines() if line.startswith("- ")]


def fault_log(fault_server) -> list[dict]:
    return requests.get(fault_server.url + "/_log?reset=1", timeout=5).json()


# (mode, words the data-unavailable card must use for each faulty query)
FAULTS = [
    ("slow", "timed out"),
    ("trickle", "too slowly"),
    ("http-403", "HTTP 403"),
    ("http-404", "HTTP 404"),
    ("http-500", "HTTP 500"),
    ("not-json", "not JSON"),
    ("json-not-resource", "not a FHIR resource"),
    ("not-bundle", "where a search Bundle was expected"),
    ("garbage-entries", "not FHIR resources"),
    ("outcome", "OperationOutcome instead of data"),
    ("outcome-entry", "reported an error in the search results"),
    ("next-loop", "loops back"),
    ("huge", "larger than"),
]


def test_healthy_server_gives_cards_and_no_data_unavailable(fast_service, fault_server):
    """The control: the same call against mode ok reads the whole chart."""
    fault_log(fault_server)
    answer, text, _ = call(fast_service, f"{fault_server.url}/ok/all")
    assert "data-unavailable" not in topics(answer)
    pt = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == "pt-documentation-missing")
    assert "mentioned without dates" in pt["detail"]      # read from a Condition's note
    sent = fault_log(fault_server)
    assert len(sent) == QUERIES and all(r["authorization"] == f"Bearer {TOKEN}" for r in sent), sent


@pytest.mark.parametrize("mode, words", FAULTS, ids=[m for m, _ in FAULTS])
def test_faulty_queries_give_200_with_a_data_unavailable_card(fast_service, fault_server, mode, words):
    fault_log(fault_server)
    answer, text, elapsed = call(fast_service, f"{fault_server.url}/{mode}/{','.join(FAULTY)}")
    assert TOKEN not in text
    failed = failed_lines(unavailable_detail(answer))   # grouped by why, so the card stays short
    for resource_type in FAULTY:
        (line,) = [line for line in failed if f"{resource_type} search" in line]
        assert words in line, line
    assert not any(healthy in line for line in failed for healthy in HEALTHY), failed
    # The cards it could compute: the healthy Condition search still feeds the PT card.
    assert "criteria-met" not in topics(answer)
    pt = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == "pt-documentation-missing")
    assert "mentioned without dates" in pt["detail"]
    # The faults really happened at the server, with the token sent.
    paths = [r["path"] for r in fault_log(fault_server)]
    assert all(any(f"/{mode}/{','.join(FAULTY)}/{t}" in p for p in paths) for t in FAULTY), paths
    if mode in ("slow", "trickle"):
        assert elapsed >= READ_TIMEOUT, f"{mode}: answered in {elapsed:.2f} s, faster than a timeout"


def test_every_query_failing_still_gives_the_cards_that_need_no_chart(fast_service, fault_server):
    answer, text, _ = call(fast_service, f"{fault_server.url}/http-500/all")
    failed = failed_lines(unavailable_detail(answer))
    assert all("HTTP 500" in line for line in failed), failed
    assert "Patient read" in failed[0] and "NullPointerException" in failed[0]   # the server's own words
    assert sum(line.count(" search") + line.count(" read") for line in failed) == KEYS
    assert {"pt-documentation-missing", "si-fusion-unsupported"} <= set(topics(answer))
    assert "criteria-met" not in topics(answer)


def test_401_never_repeats_the_token_the_server_echoed(fast_service, fault_server):
    fault_log(fault_server)
    answer, text, _ = call(fast_service, f"{fault_server.url}/http-401/all")
    failed = failed_lines(unavailable_detail(answer))
    assert all("HTTP 401" in line and "token" in line for line in failed), failed
    assert sum(line.count(" search") + line.count(" read") for line in failed) == KEYS
    assert TOKEN not in text
    echoed = requests.get(f"{fault_server.url}/http-401/all/Patient/pat-1", timeout=5,
                          headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert TOKEN in echoed        # the server did quote it: the service removed it
    assert TOKEN not in fast_service.output_tail(1_000_000)   # nor is it in the service's log


def test_connection_refused(fast_service):
    port = free_port()   # nothing listens there
    answer, text, _ = call(fast_service, f"http://{HOST}:{port}/fhir")
    failed = failed_lines(unavailable_detail(answer))
    assert all("connection refused" in line for line in failed), failed
    assert sum(line.count(" search") + line.count(" read") for line in failed) == KEYS
    assert "pt-documentation-missing" in topics(answer) and TOKEN not in text
