import json
from importlib import resources

import pytest

from cds_service import discovery

LEGAL = {"{{context.patientId}}", "{{context.userId}}", "{{context.encounterId}}"}


def test_discovery_serves_the_data_file(service, http):
    response = http.get(service.url + "/cds-services", timeout=10)
    assert response.status_code == 200
    on_disk = json.loads(resources.files("cds_service").joinpath("discovery.json").read_text())
    assert response.json() == on_disk
    (svc,) = response.json()["services"]
    assert svc["id"] == "spine-surgery-order-sign" and svc["hook"] == "order-sign"
    assert {"patient", "conditions", "observations", "procedures", "medications", "reports", "coverage"} <= set(svc["prefetch"])


def test_prefetch_templates_use_only_spec_legal_tokens():
    import re
    for template in discovery.document()["services"][0]["prefetch"].values():
        assert set(re.findall(r"{{[^}]*}}", template)) <= LEGAL


def test_every_listed_service_answers_post(service, http):
    for svc in discovery.document()["services"]:
        response = http.post(f"{service.url}/cds-services/{svc['id']}", json={}, timeout=10)
        assert response.status_code == 400


def test_illegal_token_fails_at_load(monkeypatch):
    bad = {"services": [{"id": "x", "hook": "order-sign", "description": "d",
                         "prefetch": {"p": "ServiceRequest/{{context.draftOrders.ServiceRequest.id}}"}}]}
    monkeypatch.setattr(discovery.resources, "files", lambda _pkg: _FakeFiles(json.dumps(bad)))
    discovery.document.cache_clear()
    try:
        with pytest.raises(ValueError, match="tokens"):
            discovery.document()
    finally:
        discovery.document.cache_clear()


class _FakeFiles:
    def __init__(self, text):
        self.text = text

    def joinpath(self, *_):
        return self

    def read_text(self, *_):
        return self.text
