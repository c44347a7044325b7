"""With prefetch omitted the service fetches the chart from a real FHIR endpoint on 127.0.0.1,
sending the bearer token; that endpoint rejects calls without it."""
from __future__ import annotations

import json

import pytest

from tests.stubs import fhir, seeds
from tests.support.servers import ServerProcess, mini_fhir_command

TOKEN = "secret-token-123"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory):
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in seeds.seed_001_chart()]}
    path = tmp_path_factory.mktemp("fhir") / "seed_001.json"
    path.write_text(json.dumps(bundle))
    with ServerProcess.start(mini_fhir_command(path, token=TOKEN, page_size=3)) as server:
        yield server


def auth(token: str) -> dict:
    return {"access_token": token, "token_type": "Bearer", "expires_in": 30, "scope": "patient/*.read",
            "subject": "spine-cds"}


def topics(answer):
    return [c["source"]["topic"]["code"] for c in answer["cards"]]


def test_fetches_chart_with_bearer_token(order_sign, fhir_server, http):
    assert http.get(fhir_server.url + "/Condition?patient=pat-1", timeout=5).status_code == 401
    body = fhir.make_request(seeds.seed_001_orders(), prefetch=False, fhirServer=fhir_server.url,
                             fhirAuthorization=auth(TOKEN))
    answer = order_sign(body)
    assert "pt-documentation-missing" in topics(answer)
    assert "data-unavailable" not in topics(answer)
    pt = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == "pt-documentation-missing")
    assert "mentioned without dates" in pt["detail"]


def test_partial_prefetch_fetches_only_the_missing_keys(order_sign, fhir_server):
    body = fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart(), fhirServer=fhir_server.url,
                             fhirAuthorization=auth(TOKEN))
    del body["prefetch"]["procedures"]           # the ESI comes from the server
    body["prefetch"]["medications"] = None        # null: no data, not fetched
    answer = order_sign(body)
    cc = [c for c in answer["cards"] if c["source"]["topic"]["code"] == "conservative-care-insufficient"]
    # Without the medications the ESI of 2024-12-10 still gives 6 months before the SI fusion.
    assert cc == [] and "data-unavailable" not in topics(answer)


def test_wrong_token_gives_200_with_what_could_not_be_checked(order_sign, fhir_server):
    body = fhir.make_request(seeds.seed_001_orders(), prefetch=False, fhirServer=fhir_server.url,
                             fhirAuthorization=auth("wrong"))
    answer = order_sign(body)
    card = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "401" in card["detail"] and "wrong" not in card["detail"]
    assert "criteria-met" not in topics(answer)


def test_operation_outcome_in_prefetch_is_fetched_again(order_sign, fhir_server):
    body = fhir.make_request(seeds.seed_001_orders(), [], fhirServer=fhir_server.url, fhirAuthorization=auth(TOKEN))
    body["prefetch"]["conditions"] = {"resourceType": "OperationOutcome",
                                      "issue": [{"severity": "error", "code": "timeout"}]}
    answer = order_sign(body)
    pt = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == "pt-documentation-missing")
    assert "mentioned without dates" in pt["detail"]   # the PT mention lives in a Condition note
