"""CDS Hooks routes: discovery, service call, feedback."""
from __future__ import annotations

import orjson
from flask import Blueprint, Response, current_app, request

from . import discovery, order_sign
from .errors import InvalidRequest, UnknownService, UnsupportedMediaType
from .validation import validate_feedback, validate_order_sign

bp = Blueprint("cds", __name__)


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def _service_or_404(service_id: str) -> dict:
    service = discovery.service(service_id)
    if service is None:
        raise UnknownService(f"no CDS service with id {service_id!r}", field="path")
    return service


def _body() -> object:
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {request.mimetype or 'missing'!r}",
                                   field="Content-Type")
    raw = request.get_data(cache=False)
    if not raw:
        raise InvalidRequest("the request body is empty", field="$")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", field="$") from None


@bp.get("/cds-services")
def list_services():
    return _json(discovery.document())


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str):
    service = _service_or_404(service_id)
    body = _body()
    validate_order_sign(body)
    if body["hook"] != service["hook"]:
        raise InvalidRequest(f"service {service_id} answers hook {service['hook']!r}, not {body['hook']!r}", field="$.hook")
    answer = order_sign.run(body, service, current_app.config["CDS"], current_app.extensions.get("fhir_client"))
    return _json(answer)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str):
    _service_or_404(service_id)
    body = _body()
    validate_feedback(body)
    stored, duplicates = current_app.extensions["store"].add_feedback(service_id, body["feedback"])
    return _json({"stored": stored, "duplicates": duplicates})
