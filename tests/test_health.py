"""GET /healthz (liveness) and GET /readyz (readiness), over HTTP against the service under gunicorn."""
from __future__ import annotations

import pytest

from cds_service import health
from cds_service.app import create_app
from criteria.spec import RuleDataError
from tests.conftest import start_service
from tests.conftest_pg import start_postgres

pytestmark = pytest.mark.integration


def test_liveness_and_readiness_answer_ok(service, http):
    live = http.get(service.url + "/healthz", timeout=10)
    ready = http.get(service.url + "/readyz", timeout=10)
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "checks": {"database": "ok", "rules": "ok", "data": "ok"}}
    assert ready.headers["Cache-Control"] == "no-store"


def test_database_outage_makes_the_service_unready_but_alive(tmp_path, http):
    postgres = start_postgres()  # its own server: this test stops it
    try:
        with start_service(tmp_path, CDS_DATABASE_URL=postgres.create_database("health")) as service:
            assert http.get(service.url + "/readyz", timeout=10).status_code == 200
            postgres.stop()
            for _ in range(3):  # both workers, each with its pooled connection
                ready = http.get(service.url + "/readyz", timeout=20)
                assert ready.status_code == 503, ready.text
                assert ready.json() == {"status": "unavailable",
                                        "checks": {"database": "failed (OperationalError)", "rules": "ok", "data": "ok"}}
            assert http.get(service.url + "/healthz", timeout=10).json() == {"status": "ok"}
            assert "postgres" not in ready.text  # no driver message (hosts, users) in the answer
    finally:
        postgres.stop()


def test_rules_that_do_not_load_make_the_service_unready(tmp_path, monkeypatch):
    client = create_app(environ={"CDS_VAR_DIR": str(tmp_path), "CDS_AUTH": "off"}).test_client()
    assert client.get("/readyz").status_code == 200

    def broken(profile_id="nass-2014"):
        raise RuleDataError(f"profiles/{profile_id}.yaml: unreadable")

    monkeypatch.setattr(health, "load_profile", broken)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"] == {"database": "ok", "rules": "failed (RuleDataError)", "data": "ok"}
    assert client.get("/healthz").status_code == 200
