"""The review letter over HTTP and for the CLI: POST /review and `spine-cds review FILE`.

The body is an order-sign request or a FHIR Bundle (as for the sandbox); the answer is the letter as
HTML fit to print, Markdown or JSON, chosen by the Accept header. Like the sandbox it asks no client
JWT, so with CDS_AUTH=required it never fetches from a `fhirServer`: the chart must come with the body.
"""
from __future__ import annotations

import orjson
from flask import Blueprint, Response, current_app, request

from cards import letter

from . import discovery, order_sign
from .errors import InvalidRequest, NotAcceptable
from .inputs import as_request, json_body
from .validation import validate_order_sign

bp = Blueprint("review", __name__)
SERVICE_ID = "spine-surgery-order-sign"
FORMATS = {"text/html": "html", "text/markdown": "markdown", "application/json": "json"}


def review(hook_request: dict, config: dict, fhir_client=None) -> dict:
    """The letter as data, from the same pipeline as the CDS Hooks answer."""
    service = discovery.service(SERVICE_ID)
    validate_order_sign(hook_request)
    if hook_request["hook"] != service["hook"]:
        raise InvalidRequest(f"service {SERVICE_ID} answers hook {service['hook']!r}, not {hook_request['hook']!r}",
                             field="$.hook")
    profile = order_sign.choose_profile(hook_request, config["PROFILE"])
    result = order_sign.evaluate(hook_request, service, config, fhir_client)
    return letter.build(result.determinations, list(result.findings), result.facts, profile,
                        hook_request["context"]["patientId"])


def render(data: dict, fmt: str) -> tuple[str, str]:
    if fmt == "html":
        return letter.html(data), "text/html; charset=utf-8"
    if fmt == "markdown":
        return letter.markdown(data), "text/markdown; charset=utf-8"
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), "application/json"


def _format() -> str:
    if not request.accept_mimetypes:
        return "html"
    best = request.accept_mimetypes.best_match(list(FORMATS))
    if best is None:
        raise NotAcceptable(f"the letter comes as {', '.join(FORMATS)}; Accept asked for "
                            f"{request.headers.get('Accept', '')[:100]!r}", field="Accept")
    return FORMATS[best]


@bp.post("/review")
def post_review():
    cfg = current_app.config["CDS"]
    fmt = _format()
    hook_request = as_request(json_body())
    if cfg["AUTH"] != "off" and hook_request.get("fhirServer"):
        raise InvalidRequest("with CDS_AUTH=required /review does not fetch from a fhirServer: send the chart "
                             "as prefetch, or post a Bundle holding it", field="$.fhirServer")
    text, mimetype = render(review(hook_request, cfg, current_app.extensions.get("fhir_client")), fmt)
    return Response(text, status=200, content_type=mimetype)
