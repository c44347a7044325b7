"""CDS Hooks routes: discovery, service call, feedback. Calls and feedback posts are audited."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import orjson
from flask import Blueprint, Response, current_app, g, request

from . import auth, collector, data_files, discovery, fhir_servers, order_sign
from .errors import InvalidRequest, NotReady, ServiceError, UnknownService, UnsupportedMediaType
from .validation import check_depth, validate_feedback, validate_order_sign

log = logging.getLogger("spine_cds.audit")

bp = Blueprint("cds", __name__)


@bp.before_request
def _pause_collector() -> None:
    collector.pause()       # see cds_service/collector.py: a call's chart is freed without it
    g.collector_paused = True


@bp.teardown_request
def _resume_collector(exc) -> None:
    if g.pop("collector_paused", False):
        collector.resume()


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def _payer_data() -> bool:
    return current_app.config["CDS"].get("PAYER_DATA") == "on"


def _service_or_404(service_id: str) -> dict:
    service = discovery.service(service_id, _payer_data())
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
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", field="$") from None
    check_depth(document)
    return document


@bp.get("/cds-services")
def list_services():
    return _json(discovery.published(_payer_data()))


@contextmanager
def _audited(kind: str, service_id: str):
    """Record the call whatever its end: ids, topics, status, latency; never clinical content or tokens."""
    row = {"kind": kind, "service_id": service_id, "status": 200, "outcome": "ok"}
    start = time.perf_counter()
    try:
        yield row
    except ServiceError as exc:
        row.update(status=exc.status, outcome="client-error" if exc.status < 500 else "error", detail=exc.field)
        raise
    except Exception:
        row.update(status=500, outcome="error")
        raise
    finally:
        row["latency_ms"] = (time.perf_counter() - start) * 1000
        try:
            current_app.extensions["store"].add_audit(**row)
        except Exception as exc:  # the audit must never turn an answer into a 500
            log.warning("audit write failed (%s)", type(exc).__name__)  # not the message: it can hold SQL values
        log.info("%s service=%s hookInstance=%s patient=%s status=%s topics=%s %.1f ms", kind, service_id,
                 row.get("hook_instance"), row.get("patient_ref"), row["status"], row.get("topics"), row["latency_ms"])


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str):
    with _audited("call", service_id) as audit:
        service = _service_or_404(service_id)
        body = _body()
        validate_order_sign(body)
        # Ids enter the audit only once the request is valid: before that they are whatever a caller sent.
        audit["hook_instance"] = str(body["hookInstance"])[:256]
        audit["patient_ref"] = f"Patient/{body['context']['patientId']}"[:128]
        fhir_servers.check(body.get("fhirServer"), current_app.config["CDS"], auth.caller_fhir_servers())
        not_ready = data_files.recent_problems()
        if not_ready:   # a broken install answers 503 naming the files, never a 500 half-way through
            raise NotReady("the service is not ready: " + "; ".join(not_ready))
        if body["hook"] != service["hook"]:
            raise InvalidRequest(f"service {service_id} answers hook {service['hook']!r}, not {body['hook']!r}", field="$.hook")
        answer = order_sign.run(body, service, current_app.config["CDS"], current_app.extensions.get("fhir_client"))
        audit["topics"] = [c["source"]["topic"]["code"] for c in answer["cards"]]
        if "data-unavailable" in audit["topics"]:
            audit["outcome"] = "data-unavailable"
        return _json(answer)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str):
    with _audited("feedback", service_id) as audit:
        _service_or_404(service_id)
        body = _body()
        validate_feedback(body)
        stored, duplicates = current_app.extensions["store"].add_feedback(service_id, body["feedback"])
        audit["detail"] = f"stored={stored} duplicates={duplicates}"
        return _json({"stored": stored, "duplicates": duplicates})
