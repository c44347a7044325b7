"""GET /openapi.json: an OpenAPI 3.1 document built from the data file and the request schemas,
whose promises (request schemas, answer schema, error bodies) hold for the real service."""
from __future__ import annotations

import json
from importlib import resources

import pytest

from cds_service import discovery, openapi
from cds_service.app import create_app
from tests.conftest import SERVICE_PATH
from tests.stubs import fhir, seeds
from tests.support.openapi_doc import problems

FEEDBACK_PATH = SERVICE_PATH + "/feedback"
ERROR_CODES = {"400", "401", "404", "405", "412", "413", "415"}


def schema_file(name: str) -> dict:
    return json.loads(resources.files("cds_service").joinpath("schemas", name).read_text("utf-8"))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return create_app({"AUTH": "off", "VAR_DIR": str(tmp_path_factory.mktemp("var"))}).test_client()


@pytest.fixture(scope="module")
def doc(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def test_served_document_is_the_built_document(doc):
    assert doc == json.loads(json.dumps(openapi.document()))
    assert doc["openapi"].startswith("3.1.")


def test_document_is_valid_openapi_3_1(doc):
    definitions = pytest.importorskip("schemathesis.specs.openapi.definitions",
                                      reason="schemathesis' bundled OpenAPI 3.1 meta-schema moved")
    definitions.OPENAPI_31_VALIDATOR.validate(doc)   # raises on an invalid document
    with pytest.raises(Exception):
        definitions.OPENAPI_31_VALIDATOR.validate({**doc, "paths": {"/x": {"get": {"responses": "none"}}}})


@pytest.mark.parametrize("component, file", [("OrderSignRequest", "order_sign_request.schema.json"),
                                             ("Feedback", "feedback.schema.json")])
def test_request_schemas_are_the_schema_files(doc, component, file):
    """One source of truth: the data file refers to the schema file, the served document embeds it."""
    raw = json.loads(resources.files("cds_service").joinpath("openapi.json").read_text("utf-8"))
    assert raw["components"]["schemas"][component] == {"$ref": f"schemas/{file}"}
    assert doc["components"]["schemas"][component] == schema_file(file)


def test_service_ids_come_from_discovery(doc):
    ids = [s["id"] for s in discovery.document()["services"]]
    assert doc["components"]["parameters"]["ServiceId"]["schema"]["enum"] == ids


def test_documented_operations(doc):
    ops = {(path, method): op for path, method, op in operations(doc)}
    assert {("/cds-services", "get"), ("/cds-services/{service_id}", "post"),
            ("/cds-services/{service_id}/feedback", "post")} <= set(ops)
    sign = ops[("/cds-services/{service_id}", "post")]
    assert sign["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderSignRequest"}
    assert set(sign["responses"]) == {"200"} | ERROR_CODES - {"405"}
    feedback = ops[("/cds-services/{service_id}/feedback", "post")]
    assert feedback["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Feedback"}
    assert set(feedback["responses"]) == {"200"} | ERROR_CODES - {"405", "412"}


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = doc["components"][kind][name]
    return node


def test_every_error_response_is_documented_as_json(doc):
    seen = set()
    for path, method, op in operations(doc):
        for code, response in op["responses"].items():
            if code.startswith("4"):
                seen.add(code)
                schema = _resolve(doc, response)["content"]["application/json"]["schema"]
                expected = "Unauthorized" if code == "401" else "Error"
                assert schema == {"$ref": f"#/components/schemas/{expected}"}, (path, method, code)
    assert seen == ERROR_CODES


def test_openapi_json_needs_no_client_jwt(tmp_path):
    client = create_app({"AUTH": "required", "PUBLIC_BASE_URL": "http://localhost", "VAR_DIR": str(tmp_path)}).test_client()
    assert client.get("/cds-services").status_code == 401
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.get_json()["openapi"].startswith("3.1.")


# -- the real answers keep the document's promises -------------------------------------------
def test_answer_with_suggestions_conforms(client):
    body = fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())
    answer = client.post(SERVICE_PATH, json=body).get_json()
    assert any("suggestions" in card for card in answer["cards"]) and answer["cards"]
    assert problems("CdsServiceResponse", answer) == []


def test_answer_schema_rejects_what_the_spec_forbids(client):
    body = fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())
    card = client.post(SERVICE_PATH, json=body).get_json()["cards"][0]
    for broken in ({**card, "summary": "x" * 140}, {**card, "indicator": "hard-stop"}, {**card, "uuid": "card-1"},
                   {**card, "source": {"label": "x"}}, {k: v for k, v in card.items() if k != "summary"}):
        assert problems("Card", broken), broken
    assert problems("CdsServiceResponse", {})                              # cards is always present
    assert problems("CdsServiceResponse", {"cards": [], "systemActions": []})   # no empty array but cards


@pytest.mark.parametrize("example_of", ["orderSign", "feedback"])
def test_examples_are_valid_and_accepted(client, doc, example_of):
    ops = {op["operationId"]: (path, op) for path, method, op in operations(doc)}
    path, op = ops[example_of]
    content = op["requestBody"]["content"]["application/json"]
    schema_name = content["schema"]["$ref"].rsplit("/", 1)[1]
    for example in content["examples"].values():
        assert problems(schema_name, example["value"]) == []
        response = client.post(path.replace("{service_id}", "spine-surgery-order-sign"), json=example["value"])
        assert response.status_code == 200, response.get_data(as_text=True)
        if example_of == "orderSign":
            assert response.get_json()["cards"] and problems("CdsServiceResponse", response.get_json()) == []
        else:
            assert problems("FeedbackResult", response.get_json()) == []


def _error_cases(tmp_path):
    small = create_app({"AUTH": "off", "VAR_DIR": str(tmp_path / "a"), "MAX_BODY_BYTES": 200}).test_client()
    off = create_app({"AUTH": "off", "VAR_DIR": str(tmp_path / "b")}).test_client()
    locked = create_app({"AUTH": "required", "PUBLIC_BASE_URL": "http://localhost", "VAR_DIR": str(tmp_path / "c")}).test_client()
    spine = fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")
    return [
        ("400", off.post(SERVICE_PATH, json={"hook": "order-sign"})),
        ("400", off.post(FEEDBACK_PATH, data=b"{not json", content_type="application/json")),
        ("401", locked.post(SERVICE_PATH, json={})),
        ("404", off.post("/cds-services/nope", json={})),
        ("404", off.post("/cds-services/nope/feedback", json={})),
        ("405", off.get(SERVICE_PATH)),
        ("405", off.post("/cds-services")),
        ("412", off.post(SERVICE_PATH, json=fhir.make_request([spine], prefetch=False))),
        ("413", small.post(SERVICE_PATH, json=fhir.make_request([spine], [fhir.condition("back pain " * 50)]))),
        ("415", off.post(FEEDBACK_PATH, data=b"{}", content_type="text/plain")),
    ]


def test_error_answers_conform_to_the_documented_error_schemas(tmp_path):
    for code, response in _error_cases(tmp_path):
        assert str(response.status_code) == code, (code, response.get_data(as_text=True))
        assert response.mimetype == "application/json", code
        schema = "Unauthorized" if code == "401" else "Error"
        assert problems(schema, response.get_json()) == [], (code, response.get_json())
