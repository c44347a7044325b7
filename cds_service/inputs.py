"""Request bodies the sandbox and /review take: JSON, an order-sign request or a FHIR Bundle."""
from __future__ import annotations

import orjson
from flask import request

from .errors import InvalidRequest, UnsupportedMediaType
from .synthetic.bundles import BundleError, request_from_bundle


def json_body() -> object:
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {request.mimetype or 'missing'!r}",
                                   field="Content-Type")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidRequest("the body is empty: paste an order-sign request or a FHIR Bundle", field="$")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", field="$") from None


def as_request(body: object) -> dict:
    """The order-sign request the body is, or the one a FHIR Bundle makes."""
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        try:
            return request_from_bundle(body)
        except BundleError as exc:
            raise InvalidRequest(f"the Bundle cannot be evaluated: {exc}", field="$") from None
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            # request_from_bundle trusts the shapes of ids and references; a malformed Bundle is still the
            # client's problem, never a 500.
            raise InvalidRequest(f"the Bundle is malformed ({type(exc).__name__}: {str(exc)[:200]})", field="$") from None
    if isinstance(body, dict) and "hook" in body:
        return body
    if isinstance(body, dict) and "resourceType" in body:
        raise InvalidRequest(f"a {str(body['resourceType'])[:60]!r} resource cannot be evaluated: paste a Bundle "
                             "holding draft ServiceRequests and the chart, or an order-sign request", field="$.resourceType")
    raise InvalidRequest("the body is neither a CDS Hooks order-sign request (an object with 'hook' and 'context') "
                         "nor a FHIR Bundle", field="$")
