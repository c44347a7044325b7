"""GET /metrics over HTTP: card topics, request latency and FHIR fetches, summed over both gunicorn
workers (prometheus-client multiprocess mode)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cds_service.app import create_app
from tests.conftest import SERVICE_PATH, start_service
from tests.stubs import fhir, seeds
from tests.support.servers import ServerProcess, mini_fhir_command

pytestmark = pytest.mark.integration

TOKEN = "metrics-token"
ORDER_SIGN = {"endpoint": "/cds-services/<service_id>", "hook": "order-sign", "status": "200"}
CALLS = 8  # concurrent calls: two sync workers must share them


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0 when there is none)."""
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def scrapes(server, count: int = 6) -> list[str]:
    """Several scrapes at once, so that they are answered by both workers."""
    def scrape(_):
        response = requests.get(server.url + "/metrics", timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
        return response.text
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(scrape, range(count)))


def post_concurrently(server, bodies: list[dict]) -> list[dict]:
    def post(body):
        response = requests.post(server.url + SERVICE_PATH, json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def topics(answer: dict) -> list[str]:
    return [card["source"]["topic"]["code"] for card in answer["cards"]]


@pytest.fixture(scope="module")
def metered(tmp_path_factory):
    """A service of its own, with PROMETHEUS_MULTIPROC_DIR left to the service (the default)."""
    with start_service(tmp_path_factory.mktemp("metered")) as server:
        yield server


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in seeds.seed_001_chart()]}
    path = tmp_path_factory.mktemp("metrics-fhir") / "chart.json"
    path.write_text(json.dumps(bundle))
    with ServerProcess.start(mini_fhir_command(path, token=TOKEN)) as server:
        yield server


def test_order_sign_counts_card_topics_and_latency_over_both_workers(metered):
    before = scrapes(metered, 1)[0]
    body = fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())
    answers = post_concurrently(metered, [body] * CALLS)
    assert all("pt-documentation-missing" in topics(answer) for answer in answers)
    for text in scrapes(metered):  # whichever worker answers, it reports every worker's samples
        delta = value(text, "spine_cds_cards_total", topic="pt-documentation-missing") - value(
            before, "spine_cds_cards_total", topic="pt-documentation-missing")
        assert delta == CALLS
        latency_count = value(text, "spine_cds_request_duration_seconds_count", **ORDER_SIGN)
        assert latency_count - value(before, "spine_cds_request_duration_seconds_count", **ORDER_SIGN) == CALLS
        assert value(text, "spine_cds_request_duration_seconds_sum", **ORDER_SIGN) > 0


def test_fhir_fetches_are_counted_by_key_and_outcome(metered, fhir_server):
    def request(token: str) -> dict:
        return fhir.make_request(seeds.seed_001_orders(), prefetch=False, fhirServer=fhir_server.url,
                                 fhirAuthorization={"access_token": token, "token_type": "Bearer", "expires_in": 30,
                                                    "scope": "patient/*.read", "subject": "spine-cds"})
    before = scrapes(metered, 1)[0]
    good, bad = post_concurrently(metered, [request(TOKEN), request("wrong-token")])
    assert "data-unavailable" not in topics(good) and "data-unavailable" in topics(bad)
    text = scrapes(metered, 1)[0]

    def delta(**labels):
        return value(text, "spine_cds_fhir_fetches_total", **labels) - value(before, "spine_cds_fhir_fetches_total",
                                                                             **labels)
    assert delta(key="conditions", outcome="ok") == 1 and delta(key="conditions", outcome="failed") == 1
    assert delta(key="patient", outcome="ok") == 1
    assert delta(outcome="ok") == delta(outcome="failed") >= 5  # every key, once each way


def test_operator_metrics_dir_is_emptied_at_start_and_shared_by_the_workers(tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left over from an earlier run")
    with start_service(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory)) as server:
        body = fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())
        # asyncio workers each accept as many connections as come, so one burst may all land on one
        # worker: send bursts until both have counted (bounded), then every scrape must sum them all.
        sent = 0
        for _ in range(20):
            post_concurrently(server, [body] * CALLS)
            sent += CALLS
            files = sorted(p.name for p in directory.iterdir())
            writers = {name.rsplit("_", 1)[1] for name in files if name.startswith("counter_")}
            if len(writers) >= 2:
                break
        texts = scrapes(server)
    assert "counter_999999.db" not in files
    assert len(writers) >= 2, files  # both workers counted, each in its own file
    assert all(value(text, "spine_cds_cards_total", topic="pt-documentation-missing") == sent for text in texts)


def test_a_metrics_dir_made_by_another_spine_cds_process_is_not_shared(tmp_path):
    # E.g. pytest built an app in-process (which made a directory), then started this service.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "counter_1.db").write_bytes(b"")
    with start_service(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(foreign),
                       SPINE_CDS_METRICS_DIR_MADE_BY=f"1:{foreign}") as server:
        post_concurrently(server, [fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())] * 2)
        text = scrapes(server, 1)[0]
    assert value(text, "spine_cds_cards_total", topic="pt-documentation-missing") == 2
    assert [p.name for p in foreign.iterdir()] == ["counter_1.db"]  # neither wiped nor written to


def worker_pids(master_pid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process just ended
            continue
        if int(fields[1]) == master_pid:  # fields: state, ppid, ...
            pids.append(int(stat.parent.name))
    return pids


def mapped_metrics_dirs(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {str(Path(line.split()[-1]).parent) for line in maps.splitlines() if "/spine-cds-metrics-" in line}


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc (Linux)")
def test_default_metrics_dir_is_shared_by_the_workers_and_removed_at_exit(tmp_path):
    with start_service(tmp_path) as server:
        # asyncio workers each accept as many connections as come (cds_service/buffering.py), so one
        # burst may all land on one worker: send bursts until both have written samples (bounded).
        for _ in range(20):
            post_concurrently(server, [fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())] * CALLS)
            workers = worker_pids(server.pid)
            dirs = [mapped_metrics_dirs(pid) for pid in workers]
            if len(workers) == 2 and all(len(d) == 1 for d in dirs):
                break
    assert len(workers) == 2 and all(len(d) == 1 for d in dirs), dirs
    assert dirs[0] == dirs[1]  # made by the master before it forked
    assert not Path(dirs[0].pop()).exists()  # and removed when the master exited


def test_label_values_never_come_from_the_client(tmp_path):
    client = create_app(environ={"CDS_VAR_DIR": str(tmp_path), "CDS_AUTH": "off"}).test_client()
    client.post("/cds-services/made-up-service", json={})
    client.get("/some/random/path-123")
    text = client.get("/metrics").get_data(as_text=True)
    count = "spine_cds_request_duration_seconds_count"
    assert value(text, count, endpoint="/cds-services/<service_id>", hook="none", status="404") == 1
    assert value(text, count, endpoint="unmatched", hook="none", status="404") == 1
    assert "made-up-service" not in text and "path-123" not in text
