"""schemathesis against the real service (gunicorn, CDS_AUTH=off), driven by GET /openapi.json.

`st run` generates valid and invalid requests for every documented operation (examples, coverage
and fuzzing phases, fixed seed) and checks each answer: no 5xx (not_a_server_error) and every 4xx
is application/json with a JSON error body (json_error_body, tests/support/schemathesis_checks.py).
Then the recorded HAR is read again independently: at least MIN_REQUESTS requests were really made,
none got a 5xx, every 4xx is JSON, and the order-sign service reached its rules (cards came back).

Generated fhirServer URLs point anywhere; the service runs with its HTTP proxy set to a closed
port on 127.0.0.1, so a generated request can never make it fetch from a real host.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SERVICE_PATH, start_service
from tests.support.servers import HOST, free_port

pytestmark = pytest.mark.integration

MIN_REQUESTS = 2000
SEED = 20250620
MAX_EXAMPLES = 830          # per operation in the fuzzing phase; the two POST operations get it in full
CHECKS_FILE = Path(__file__).parent / "support" / "schemathesis_checks.py"
# The operations with nothing to vary (405-only, discovery, this document) get a few examples each.
CONFIG = """
[[operations]]
include-tag = "not-allowed"
generation.max-examples = 30

[[operations]]
include-operation-id = ["discovery", "openapi"]
generation.max-examples = 10
"""
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def st_command() -> list[str]:
    st = Path(sys.executable).with_name("st")
    return [str(st)] if st.exists() else [sys.executable, "-m", "schemathesis.cli"]


@pytest.fixture(scope="module")
def fuzzed_service(tmp_path_factory):
    dead_proxy = f"http://{HOST}:{free_port()}"   # nothing listens: any FHIR fetch fails at once
    env = {name: dead_proxy for name in PROXY_VARS} | {"NO_PROXY": "", "no_proxy": "",
                                                       "CDS_FHIR_CONNECT_TIMEOUT": "0.5", "CDS_FHIR_READ_TIMEOUT": "0.5"}
    server = start_service(tmp_path_factory.mktemp("fuzz-service"), CDS_AUTH="off", **env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def run(fuzzed_service, tmp_path_factory):
    """Runs schemathesis once; returns (completed process, JSON report, HAR entries, seconds)."""
    work = tmp_path_factory.mktemp("schemathesis")
    (work / "schemathesis.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS} | {
        "SCHEMATHESIS_HOOKS": str(CHECKS_FILE), "NO_PROXY": "*", "no_proxy": "*", "NO_COLOR": "1"}
    command = st_command() + [
        "--config-file", str(work / "schemathesis.toml"),
        "run", fuzzed_service.url + "/openapi.json",
        "--checks", "not_a_server_error,json_error_body",
        "--phases", "examples,coverage,fuzzing",
        "--mode", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "2",
        "--request-timeout", "30",
        "--generation-database", "none",
        "--no-color",
        "--report", "json,har", "--report-dir", str(work / "report"),
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    reports = work / "report"
    json_files, har_files = sorted(reports.glob("json-*.json")), sorted(reports.glob("har-*.json"))
    assert json_files and har_files, f"no reports written:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    report = json.loads(json_files[-1].read_text())
    entries = json.loads(har_files[-1].read_text())["log"]["entries"]
    print(f"\nschemathesis: {len(entries)} requests, {report['test_cases']['generated']} test cases "
          f"in {seconds:.0f} s (seed {SEED})")
    return done, report, entries, seconds


def output(done) -> str:
    return f"--- stdout (tail) ---\n{done.stdout[-6000:]}\n--- stderr (tail) ---\n{done.stderr[-3000:]}"


def test_schemathesis_finds_no_server_error_and_no_non_json_4xx(run):
    done, report, entries, seconds = run
    assert done.returncode == 0, output(done)
    assert report["failures"] == [] and report["errors"] == [], report
    assert report["complete"] and report["operations"]["errored"] == 0, report


def test_at_least_2000_requests_were_made(run):
    done, report, entries, seconds = run
    assert len(entries) >= MIN_REQUESTS, f"only {len(entries)} requests\n{output(done)}"
    assert report["test_cases"]["generated"] >= MIN_REQUESTS, report["test_cases"]
    assert f"{report['test_cases']['generated']} generated" in done.stdout   # the summary line agrees


def _content_type(entry) -> str:
    headers = {h["name"].lower(): h["value"] for h in entry["response"]["headers"]}
    return headers.get("content-type", "").split(";")[0].strip()


def test_recorded_answers_no_5xx_and_every_4xx_is_json(run):
    """A second pass over what schemathesis recorded, independent of its checks."""
    done, report, entries, seconds = run
    server_errors = [(e["request"]["method"], e["request"]["url"], e["request"].get("postData", {}).get("text", "")[:500],
                      e["response"]["status"]) for e in entries if e["response"]["status"] >= 500]
    assert server_errors == [], server_errors[:5]
    for entry in entries:
        status = entry["response"]["status"]
        if 400 <= status < 500:
            where = f'{entry["request"]["method"]} {entry["request"]["url"]} -> {status}'
            assert _content_type(entry) == "application/json", where
            body = json.loads(entry["response"]["content"].get("text") or "null")
            if status == 401:
                assert isinstance(body, dict) and isinstance(body.get("error"), str), (where, body)
            else:
                assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"], (where, body)


def test_fuzzing_reached_every_kind_of_answer(run):
    """The run was not all rejections at the door: valid calls got cards, invalid ones each 4xx."""
    done, report, entries, seconds = run
    statuses = collections.Counter((e["request"]["method"], e["response"]["status"]) for e in entries)
    assert {400, 404, 405, 415} <= {status for _, status in statuses}, statuses
    order_sign = [e for e in entries if e["request"]["method"] == "POST" and e["request"]["url"].endswith(SERVICE_PATH)
                  and e["response"]["status"] == 200]
    with_cards = [e for e in order_sign if json.loads(e["response"]["content"]["text"])["cards"]]
    assert len(order_sign) >= 100 and with_cards, (len(order_sign), len(with_cards))
    feedback = [e for e in entries if e["request"]["url"].endswith(SERVICE_PATH + "/feedback")
                and e["response"]["status"] == 200]
    assert len(feedback) >= 100, len(feedback)


class _FakeResponse:
    def __init__(self, status: int, content_type: str, content: bytes):
        self.status_code, self.headers, self.content = status, {"content-type": [content_type]}, content


@pytest.mark.parametrize("status, content_type, content", [
    (404, "text/html; charset=utf-8", b"<h1>Not Found</h1>"),
    (400, "application/json", b"{not json"),
    (415, "application/json", b'["no", "error", "field"]'),
    (400, "application/json", b'{"error": "invalid"}'),                        # only 401 may be bare
    (400, "application/json", b'{"resourceType": "OperationOutcome", "issue": []}'),
])
def test_json_error_body_check_rejects_non_json_4xx(status, content_type, content):
    """The custom schemathesis check can fail (and passes the service's real error shape)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("spine_cds_st_checks", CHECKS_FILE)
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    with pytest.raises(AssertionError):
        checks.json_error_body(None, _FakeResponse(status, content_type, content), None)
    outcome = b'{"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid", "diagnostics": "x"}]}'
    assert checks.json_error_body(None, _FakeResponse(status, "application/json", outcome), None) is None
    with pytest.raises(AssertionError):   # the 401 is an OperationOutcome like every other error
        checks.json_error_body(None, _FakeResponse(401, "application/json", b'{"error": "unauthorized"}'), None)
    assert checks.json_error_body(None, _FakeResponse(500, "text/html", b"<h1>boom</h1>"), None) is None  # 5xx: not_a_server_error's job
