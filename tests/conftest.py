"""Fixtures: the service itself, started under gunicorn on 127.0.0.1 and stopped by PID."""
from __future__ import annotations

import functools
import os
import sys

import pytest
import requests

from tests.conftest_pg import database_url, postgres_server, postgres_url  # noqa: F401  (fixtures)
from tests.support.servers import ServerProcess

SERVICE_PATH = "/cds-services/spine-surgery-order-sign"


def service_command(port: int, workers: int = 2) -> list[str]:
    return [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]


def self_audience(command):
    """`command` started with CDS_PUBLIC_BASE_URL set to the URL it listens on (the port is known only then)."""
    def with_audience(port: int) -> list[str]:
        return ["/usr/bin/env", f"CDS_PUBLIC_BASE_URL=http://127.0.0.1:{port}", *command(port)]
    return with_audience


def start_service(tmp_path, workers: int = 2, **env) -> ServerProcess:
    environ = {**os.environ, "CDS_AUTH": "off", "CDS_VAR_DIR": str(tmp_path / "var"), **env}
    command = functools.partial(service_command, workers=workers)
    if environ["CDS_AUTH"] == "required" and not environ.get("CDS_PUBLIC_BASE_URL"):
        command = self_audience(service_command)  # CDS_AUTH=required does not start without it
    return ServerProcess.start(command, ready_path="/cds-services", env=environ, timeout=30)


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    # A generous FHIR deadline: the tests on this service are about answers, and a loaded CI box (or the
    # Node Medplum server) can take more than the default 4 s; tests/test_attacks.py pins the deadline.
    server = start_service(tmp_path_factory.mktemp("service"), CDS_FHIR_DEADLINE="20")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def order_sign(service, http):
    """POST an order-sign request; returns the JSON answer after checking it is a 200."""
    def call(body: dict, expect: int = 200) -> dict:
        response = http.post(service.url + SERVICE_PATH, json=body, timeout=30)
        assert response.status_code == expect, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        return response.json()
    return call
