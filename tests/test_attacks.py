"""Never blocked, never fooled (issue 14): the service attacked as an attacker and a failing neighbourhood would.

Real servers on 127.0.0.1, stopped by PID: the service (`serve`, as `make run` starts it), a hostile FHIR
server (tests/support/hostile_fhir_server.py) and PostgreSQL. Every attack is bounded in time. Figures:
- an honest order-sign is answered within 2 s while 16 slow connections are open;
- a stalled, header-trickling or body-trickling FHIR server, or fhirServer pointing at the service itself:
  answered within CDS_FHIR_DEADLINE + 1 s;
- another patient's resources (prefetched or fetched), redirected and off-path answers never reach a card;
- refused fhirServer values and refused tokens, as tables;
- PostgreSQL stopped and frozen under load: no 500, every acknowledged feedback stored, recovery without a
  restart, liveness answering throughout;
- nothing the service wrote holds the chart's names, MRN, birth date or note text.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.app import create_app
from cds_service.config import ConfigError
from cds_service.synthetic import synthesize
from tests.conftest import SERVICE_PATH, start_service
from tests.conftest_pg import start_postgres
from tests.support.postgres import signal_cluster
from tests.support.servers import HOST, ServerProcess

pytestmark = pytest.mark.integration

DEADLINE = 2.0
HOSTILE = Path(__file__).parent / "support" / "hostile_fhir_server.py"
TOKEN = "attack-token-SECRET-9f86d081"
SCENARIO = "fusion-instability-over-threshold"   # its own chart meets every criterion
# What must never be written anywhere by the service: set on the chart below.
NAME, MRN, BIRTH, NOTE = "Zebulon Quixotic-Marchbanks", "MRN-77441920", "1941-07-23", "confided-secret-phrase-zq"


# ---------------------------------------------------------------- charts and requests
def scenario():
    return synthesize(SCENARIO, 1, 0)[0]


def chart_of(instance) -> list[dict]:
    return [e["resource"] for e in instance.bundle["entry"]]


def marked(resources: list[dict]) -> list[dict]:
    """The chart with a name, MRN, birth date and a note sentence that the logs must never show."""
    out = copy.deepcopy(resources)
    for resource in out:
        if resource["resourceType"] == "Patient":
            resource.update(name=[{"family": NAME.split()[1], "given": [NAME.split()[0]]}], birthDate=BIRTH,
                            identifier=[{"system": "urn:mrn", "value": MRN}])
        elif resource["resourceType"] == "Condition":
            resource.setdefault("note", []).append({"text": f"Patient said {NOTE}."})
    return out


def as_other_patient(resources: list[dict], other: str) -> list[dict]:
    """The same chart, but about patient `other` (every subject/patient/beneficiary and the Patient id)."""
    text = json.dumps(resources)
    patient_id = scenario().request["context"]["patientId"]
    return json.loads(text.replace(f"Patient/{patient_id}", f"Patient/{other}").replace(
        f'"id": "{patient_id}"', f'"id": "{other}"'))


def request_for(instance, *, prefetch_chart=None, **fields) -> dict:
    body = copy.deepcopy(instance.request)
    body["hookInstance"] = str(uuid.uuid4())
    if prefetch_chart is None:
        body.pop("prefetch", None)
    else:
        by_type: dict[str, list] = {}
        for resource in prefetch_chart:
            by_type.setdefault(resource["resourceType"], []).append(resource)
        body["prefetch"] = {key: _searchset(by_type.get(rtype, [])) for key, rtype in PREFETCH_KEYS.items()}
        patient = by_type.get("Patient", [None])[0]
        body["prefetch"]["patient"] = patient
    body.update(fields)
    return body


PREFETCH_KEYS = {"conditions": "Condition", "observations": "Observation", "procedures": "Procedure",
                 "medications": "MedicationRequest", "reports": "DiagnosticReport", "coverage": "Coverage"}


def _searchset(resources):
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def topics(answer: dict) -> list[str]:
    return [card["source"]["topic"]["code"] for card in answer["cards"]]


def unavailable(answer: dict) -> str:
    return " ".join(c["detail"] for c in answer["cards"] if c["source"]["topic"]["code"] == "data-unavailable")


# ---------------------------------------------------------------- servers
@pytest.fixture(scope="module")
def charts(tmp_path_factory):
    directory = tmp_path_factory.mktemp("attack-charts")
    own = marked(chart_of(scenario()))
    files = {"own": own, "other": as_other_patient(own, "someone-else-9")}
    paths = {}
    for name, resources in files.items():
        paths[name] = directory / f"{name}.json"
        paths[name].write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                           "entry": [{"resource": r} for r in resources]}))
    return paths


def hostile(bundle: Path, other: str = "http://127.0.0.1:9"):
    def command(port: int) -> list[str]:
        return [sys.executable, str(HOSTILE), "--host", HOST, "--port", str(port), "--bundle", str(bundle),
                "--other", other]
    return command


@pytest.fixture(scope="module")
def bystander(charts):
    """Another server: a redirect must never take the token (or the service) there."""
    with ServerProcess.start(hostile(charts["own"]), ready_path="/_log") as server:
        yield server


@pytest.fixture(scope="module")
def fhir(charts, bystander):
    with ServerProcess.start(hostile(charts["own"], bystander.url), ready_path="/_log") as server:
        yield server


@pytest.fixture(scope="module")
def fhir_other(charts):
    """Serves another patient's chart whatever patient is asked for."""
    with ServerProcess.start(hostile(charts["other"]), ready_path="/_log") as server:
        yield server


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    """`make run`'s settings (serve, 2 workers, CDS_AUTH=off), a 2 s FHIR deadline."""
    directory = tmp_path_factory.mktemp("attacked-service")
    server = start_service(directory, CDS_FHIR_DEADLINE=str(DEADLINE))
    server.var_dir = directory / "var"
    yield server
    server.stop()


def post(svc, body, timeout: float = 30) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.post(svc.url + SERVICE_PATH, json=body, timeout=timeout)
    return response, time.monotonic() - started


def log_of(server, reset: bool = True) -> list[dict]:
    return requests.get(server.url + "/_log" + ("?reset=1" if reset else ""), timeout=5).json()


# ---------------------------------------------------------------- 1. slow clients
class SlowClients:
    """`count` connections that send a request one byte every 2 s: half still in their headers, half in a body."""

    def __init__(self, url: str, count: int):
        host, port = url.removeprefix("http://").split(":")
        self.sockets = []
        for i in range(count):
            sock = socket.create_connection((host, int(port)), timeout=5)
            if i % 2:
                sock.sendall(f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 100000\r\n\r\n{".encode())
            else:
                sock.sendall(b"POST /cds-services/spine-surgery-order-sign HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            self.sockets.append(sock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self):
        while not self.stop.wait(2.0):
            for sock in self.sockets:
                try:
                    sock.send(b" ")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()


def test_an_honest_order_sign_is_answered_within_2_s_while_16_slow_connections_are_open(svc):
    honest = request_for(scenario(), prefetch_chart=chart_of(scenario()))
    slow = SlowClients(svc.url, 16)
    try:
        time.sleep(2.5)   # every slow connection has been accepted and is dripping
        for _ in range(3):
            response, elapsed = post(svc, honest, timeout=10)
            assert response.status_code == 200, response.text[:500]
            assert elapsed < 2.0, f"answered after {elapsed:.2f} s"
            assert "criteria-met" in topics(response.json())
        assert requests.get(svc.url + "/healthz", timeout=2).status_code == 200
    finally:
        slow.close()


# ---------------------------------------------------------------- 2. hostile FHIR servers: one deadline
@pytest.mark.parametrize("mode", ["stall", "trickle-headers", "trickle-body"])
def test_a_hostile_fhir_server_is_given_up_at_the_deadline(svc, fhir, mode):
    response, elapsed = post(svc, request_for(scenario(), fhirServer=f"{fhir.url}/{mode}",
                                              fhirAuthorization=_auth()))
    assert response.status_code == 200, response.text[:500]
    assert elapsed <= DEADLINE + 1.0, f"{mode}: answered after {elapsed:.2f} s"
    answer = response.json()
    assert "criteria-met" not in topics(answer) and "data-unavailable" in topics(answer)
    assert "deadline" in unavailable(answer)


def test_fhir_server_pointing_at_the_service_itself_is_answered_within_the_deadline(svc):
    response, elapsed = post(svc, request_for(scenario(), fhirServer=svc.url + "/cds-services"))
    assert response.status_code == 200, response.text[:500]
    assert elapsed <= DEADLINE + 1.0, f"answered after {elapsed:.2f} s"
    assert "criteria-met" not in topics(response.json())


def _auth():
    return {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
            "subject": "spine-cds"}


# ---------------------------------------------------------------- 3. another patient's data, redirects
def test_the_control_a_well_behaved_server_gives_criteria_met(svc, fhir):
    response, _ = post(svc, request_for(scenario(), fhirServer=f"{fhir.url}/ok", fhirAuthorization=_auth()))
    assert response.status_code == 200 and "criteria-met" in topics(response.json()), response.text[:1000]


def test_another_patients_fetched_resources_never_reach_a_card(svc, fhir_other):
    response, _ = post(svc, request_for(scenario(), fhirServer=f"{fhir_other.url}/ok", fhirAuthorization=_auth()))
    answer = response.json()
    assert response.status_code == 200
    assert "criteria-met" not in topics(answer)
    assert "not about this patient" in unavailable(answer)
    assert "someone-else-9" not in response.text


def test_another_patients_prefetched_resources_never_reach_a_card(svc, charts):
    other = json.loads(charts["other"].read_text())
    own_patient_only = [r for r in chart_of(scenario()) if r["resourceType"] == "Patient"]
    resources = own_patient_only + [e["resource"] for e in other["entry"] if e["resource"]["resourceType"] != "Patient"]
    response, _ = post(svc, request_for(scenario(), prefetch_chart=resources))
    answer = response.json()
    assert response.status_code == 200
    assert "criteria-met" not in topics(answer)
    assert {"pt-documentation-missing", "data-unavailable"} <= set(topics(answer)), topics(answer)
    assert "not about this patient" in unavailable(answer)


@pytest.mark.parametrize("mode", ["redirect-port", "redirect-path", "next-path"])
def test_redirected_and_off_path_answers_never_reach_a_card(svc, fhir, bystander, mode):
    log_of(fhir), log_of(bystander)
    response, _ = post(svc, request_for(scenario(), fhirServer=f"{fhir.url}/{mode}", fhirAuthorization=_auth()))
    answer = response.json()
    assert response.status_code == 200
    assert "criteria-met" not in topics(answer) and "outside the FHIR server's base URL" in unavailable(answer)
    assert log_of(bystander) == []                                       # never reached, so never saw the token
    assert not [r for r in log_of(fhir) if r["path"].startswith("/elsewhere")]


# ---------------------------------------------------------------- 4. the reach of fhirServer
REFUSED_FHIR_SERVERS = {
    "user-info": "http://user:secret@127.0.0.1:{port}/fhir",
    "query": "http://127.0.0.1:{port}/fhir?_format=json",
    "empty query": "http://127.0.0.1:{port}/fhir?",
    "fragment": "http://127.0.0.1:{port}/fhir#x",
    "dot segments": "http://127.0.0.1:{port}/a/../fhir",
    "not http": "file:///etc/passwd",
    "gopher": "gopher://127.0.0.1:{port}/fhir",
    "no host": "http:///fhir",
    "not loopback without CDS_FHIR_SERVERS": "http://169.254.169.254/latest/meta-data",
    "private address": "http://10.0.0.1/fhir",
}


@pytest.mark.parametrize("case", list(REFUSED_FHIR_SERVERS))
def test_refused_fhir_server_values_get_400_without_any_fetch(svc, fhir, case):
    log_of(fhir)
    value = REFUSED_FHIR_SERVERS[case].format(port=fhir.port)
    response, _ = post(svc, request_for(scenario(), fhirServer=value))
    assert response.status_code == 400, response.text[:300]
    assert response.json()["issue"][0]["expression"][0] == "$.fhirServer"
    assert log_of(fhir) == []


def _app(tmp_path, **environ):
    return create_app(environ={"CDS_VAR_DIR": str(tmp_path), **environ}).test_client()


ALLOW_LIST = "https://ehr.example.org/fhir/r4, http://127.0.0.1:1/fhir"
ALLOW_LIST_CASES = {  # fhirServer -> 400 or not, with CDS_AUTH=off and CDS_FHIR_SERVERS=ALLOW_LIST
    "https://ehr.example.org/fhir/r4": False,
    "https://EHR.example.org:443/fhir/r4/": False,         # the same base, normalised
    "https://ehr.example.org/fhir/r4/Patient": True,       # not the base
    "https://ehr.example.org/fhir": True,
    "http://ehr.example.org/fhir/r4": True,                # another scheme
    "https://ehr.example.org.evil.test/fhir/r4": True,
    "http://127.0.0.1:2/fhir": True,                       # loopback, but not listed
    "http://localhost:1/fhir": True,
}


@pytest.mark.parametrize("value", list(ALLOW_LIST_CASES))
def test_with_an_allow_list_only_its_bases(tmp_path, value):
    client = _app(tmp_path, CDS_AUTH="off", CDS_FHIR_SERVERS=ALLOW_LIST)
    response = client.post(SERVICE_PATH, json=request_for(scenario(), fhirServer=value, prefetch_chart=chart_of(scenario())))
    assert (response.status_code == 400) is ALLOW_LIST_CASES[value], response.get_json()


def test_a_bad_allow_list_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="CDS_FHIR_SERVERS"):
        _app(tmp_path, CDS_AUTH="off", CDS_FHIR_SERVERS="https://ehr.example.org/fhir?x=1")


# ---------------------------------------------------------------- 5. tokens
KEY = ec.generate_private_key(ec.SECP384R1())
ISS = "https://ehr.example.org"
PUBLIC = "https://cds.example.org"


def _token(aud, **over) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())} | over
    return jwt.encode(claims, KEY, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})


@pytest.fixture
def locked(tmp_path):
    trusted = tmp_path / "trusted.json"
    jwk = ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True) | {"kid": "k1", "alg": "ES384", "use": "sig"}
    trusted.write_text(json.dumps({ISS: {"jwks": {"keys": [jwk]}, "fhir_servers": ["https://ehr.example.org/fhir"]}}))
    return _app(tmp_path, CDS_AUTH="required", CDS_TRUSTED_ISSUERS=str(trusted), CDS_PUBLIC_BASE_URL=PUBLIC,
                CDS_JWT_LEEWAY="30")


def _now():
    return int(time.time())


TOKENS = {  # name -> (token maker, accepted?)
    "5 minutes": (lambda: _token(PUBLIC + "/cds-services"), True),
    "5 minutes + leeway": (lambda: _token(PUBLIC + "/cds-services", exp=_now() + 330), True),
    "ten years": (lambda: _token(PUBLIC + "/cds-services", exp=_now() + 10 * 365 * 86400), False),
    "6 minutes": (lambda: _token(PUBLIC + "/cds-services", exp=_now() + 360), False),
    "iat far back, exp near": (lambda: _token(PUBLIC + "/cds-services", iat=_now() - 3600, exp=_now() + 60), False),
    "aud from the Host header": (lambda: _token("http://localhost/cds-services"), False),
    "aud of another service": (lambda: _token("https://other.example.org/cds-services"), False),
}


@pytest.mark.parametrize("case", list(TOKENS))
def test_token_table(locked, case):
    make, accepted = TOKENS[case]
    response = locked.get("/cds-services", headers={"Authorization": f"Bearer {make()}"})
    assert response.status_code == (200 if accepted else 401), case


def test_a_trusted_issuers_fhir_servers_are_its_allow_list(locked):
    body = request_for(scenario(), prefetch_chart=chart_of(scenario()))
    for value, status in (("https://ehr.example.org/fhir", 200), ("http://127.0.0.1:1/fhir", 400)):
        response = locked.post(SERVICE_PATH, json={**body, "fhirServer": value},
                               headers={"Authorization": f"Bearer {_token(PUBLIC + SERVICE_PATH)}"})
        assert response.status_code == status, (value, response.get_json())


def test_required_auth_without_a_public_url_does_not_start(tmp_path):
    env = {**os.environ, "CDS_AUTH": "required", "CDS_VAR_DIR": str(tmp_path)}
    env.pop("CDS_PUBLIC_BASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "cds_service", "serve", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "CDS_PUBLIC_BASE_URL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_sandbox_is_off_by_default_when_auth_is_required(locked):
    assert locked.post("/sandbox/api/evaluate", json={}).status_code == 404
    assert locked.get("/sandbox").status_code == 404


# ---------------------------------------------------------------- 6. bad input
@pytest.mark.parametrize("depth", [60, 400, 1000])   # 60 nested extensions: 120 levels; orjson stops at 1,024
def test_any_nesting_depth_gets_400(svc, depth):
    body = request_for(scenario(), prefetch_chart=chart_of(scenario()))
    body["context"]["draftOrders"]["entry"][0]["resource"]["extension"] = "NESTED"
    nested = '{"url": "http://example.org/x", "valueString": "leaf"}'
    for _ in range(depth):   # nested extensions, written as text (json.dumps itself would recurse)
        nested = '{"url": "http://example.org/x", "extension": [' + nested + ']}'
    text = json.dumps(body).replace('"NESTED"', "[" + nested + "]")
    response = requests.post(svc.url + SERVICE_PATH, data=text, headers={"Content-Type": "application/json"},
                             timeout=30)
    assert response.status_code == 400 and response.json()["issue"][0]["expression"][0] == "$", response.text[:300]
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "levels deep" in diagnostics or "depth limit" in diagnostics


def test_a_chunked_body_over_the_limit_gets_413(svc):
    chunk = b"x" * 1_000_000
    with socket.create_connection((HOST, svc.port), timeout=30) as sock:
        sock.sendall(f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        try:
            for _ in range(25):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass   # the service may answer and close before the client is done sending
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


# ---------------------------------------------------------------- 7. nothing from a chart is written
def test_nothing_the_service_wrote_holds_the_charts_names_mrn_birth_date_or_note_text(svc, fhir):
    chart = marked(chart_of(scenario()))
    post(svc, request_for(scenario(), prefetch_chart=chart))                              # prefetched
    post(svc, request_for(scenario(), fhirServer=f"{fhir.url}/ok", fhirAuthorization=_auth()))     # fetched
    response, _ = post(svc, request_for(scenario(), fhirServer=f"{fhir.url}/echo-outcome", fhirAuthorization=_auth()))
    assert response.status_code == 200
    bad = copy.deepcopy(request_for(scenario(), prefetch_chart=chart))
    bad["context"]["patientId"] = f"{NAME} {MRN}"                                          # refused: not an id
    assert post(svc, bad)[0].status_code == 400
    written = svc.output_tail(10_000_000)
    for path in Path(svc.var_dir).rglob("*"):
        if path.is_file():
            written += path.read_bytes().decode("latin-1")
    assert len(written) > 1000
    assert "call service=spine-surgery-order-sign" in svc.output_tail(10_000_000)   # audit lines under gunicorn
    for secret in (NAME.split()[0], NAME.split()[1], MRN, BIRTH, NOTE, TOKEN):
        assert secret not in written, secret
    assert secret not in response.text


# ---------------------------------------------------------------- 8. the database fails
def _feedback(card: str) -> dict:
    return {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}


class Load:
    """Feedback posts and liveness probes from 4 threads until stopped; every answer recorded."""

    def __init__(self, url: str):
        self.url, self.stop = url, threading.Event()
        self.statuses: list[int] = []
        self.acknowledged: list[str] = []
        self.liveness: list[float] = []
        self.latencies: list[float] = []
        self.threads = [threading.Thread(target=self._post, daemon=True) for _ in range(3)]
        self.threads.append(threading.Thread(target=self._live, daemon=True))
        for thread in self.threads:
            thread.start()

    def _post(self):
        with requests.Session() as http:
            while not self.stop.is_set():
                card = str(uuid.uuid4())
                started = time.monotonic()
                try:
                    response = http.post(self.url + SERVICE_PATH + "/feedback", json=_feedback(card), timeout=15)
                except requests.RequestException:
                    self.statuses.append(-1)
                    continue
                self.latencies.append(time.monotonic() - started)
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    self.acknowledged.append(card)
                elif response.status_code == 503:
                    assert response.headers.get("Retry-After")
                    time.sleep(0.1)

    def _live(self):
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                ok = requests.get(self.url + "/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            self.liveness.append(time.monotonic() - started if ok else float("inf"))
            time.sleep(0.2)

    def close(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(20)


def test_postgres_stopped_and_frozen_under_load(tmp_path):
    postgres = start_postgres()
    try:
        url = postgres.create_database("attacks")
        with start_service(tmp_path, CDS_DATABASE_URL=url) as svc:
            load = Load(svc.url)
            try:
                time.sleep(1.5)
                postgres.halt()                               # stopped: connections refused
                time.sleep(3)
                postgres.resume()
                time.sleep(2)
                frozen = signal_cluster(postgres.pid, signal.SIGSTOP)   # frozen: connections accepted, nothing answered
                time.sleep(8)
                signal_cluster(postgres.pid, signal.SIGCONT)
                time.sleep(4)                                 # recovery, without restarting the service
            finally:
                signal_cluster(postgres.pid, signal.SIGCONT)
                load.close()
            assert len(frozen) >= 3, frozen   # the postmaster and its backends
            statuses = load.statuses
            assert 500 not in statuses and -1 not in statuses, sorted(set(statuses))
            assert 503 in statuses and statuses[-3:].count(200) == 3, statuses[-10:]
            assert load.liveness and max(load.liveness) < 2.0, max(load.liveness)
            assert max(load.latencies) < 6.0, max(load.latencies)   # a frozen database fails fast (3 s bound)
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                stored = set(conn.execute(sa.text("SELECT card_uuid FROM feedback")).scalars())
            engine.dispose()
            assert set(load.acknowledged) <= stored, len(set(load.acknowledged) - stored)
            print(f"\nfeedback under outage: {statuses.count(200)} acknowledged and stored, "
                  f"{statuses.count(503)} answered 503; slowest feedback {max(load.latencies):.2f} s, "
                  f"slowest liveness {max(load.liveness):.2f} s")
    finally:
        postgres.stop()


@pytest.mark.parametrize("value", ["http://[::1/fhir", "http://127.0.0.1:99999/fhir", "http://127.0.0.1:x/fhir"])
def test_fhir_server_urls_that_cannot_be_parsed_get_400(tmp_path, value):
    client = _app(tmp_path, CDS_AUTH="off")
    response = client.post(SERVICE_PATH, json=request_for(scenario(), fhirServer=value))
    assert response.status_code == 400 and response.get_json()["issue"][0]["expression"][0] == "$.fhirServer"


def test_a_path_that_is_not_utf8_is_a_404_not_a_500(svc):
    response = requests.post(svc.url + "/cds-services/%C2%9B%F4%82%B0%B4b%F3%99%AA/feedback", json={}, timeout=10)
    assert response.status_code == 404 and response.headers["Content-Type"].startswith("application/json")
