import json
from importlib import resources

import pytest

from cds_service import discovery

LEGAL = {"{{context.patientId}}", "{{context.userId}}", "{{context.encounterId}}"}


def test_discovery_serves_the_data_file(service, http):
    """The data file as it is, less the payer keys: CDS_PAYER_DATA is off by default."""
    response = http.get(service.url + "/cds-services", timeout=10)
    assert response.status_code == 200
    on_disk = json.loads(resources.files("cds_service").joinpath("discovery.json").read_text())
    for svc in on_disk["services"]:
        svc["prefetch"] = {k: v for k, v in svc["prefetch"].items() if k not in discovery.PAYER_KEYS}
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


def test_payer_keys_are_published_only_with_payer_data_on():
    off, on = discovery.service("spine-surgery-order-sign"), discovery.service("spine-surgery-order-sign", True)
    assert set(on["prefetch"]) - set(off["prefetch"]) == {"explanations-of-benefit", "claims"}
    assert on["prefetch"]["explanations-of-benefit"] == "ExplanationOfBenefit?patient={{context.patientId}}"
    assert discovery.published(True) == discovery.document()


def test_observations_are_asked_for_by_category():
    template = discovery.service("spine-surgery-order-sign")["prefetch"]["observations"]
    categories = template.split("category=")[1].split(",")
    assert categories == ["laboratory", "vital-signs", "social-history", "survey", "exam", "imaging", "procedure"]


@pytest.mark.parametrize("key", sorted(discovery.SUPPLEMENTARY_KEYS))
def test_every_supplementary_key_has_a_template(key):
    assert key in discovery.document()["services"][0]["prefetch"]
