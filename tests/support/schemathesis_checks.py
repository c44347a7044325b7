"""Schemathesis checks of our own, loaded by `st run` through SCHEMATHESIS_HOOKS=<this file>.

json_error_body: every 4xx answer is `Content-Type: application/json` with a body that parses
as a JSON object holding a string `error` (the service's error bodies, 401 included).
"""
from __future__ import annotations

import json

import schemathesis


@schemathesis.check
def json_error_body(ctx, response, case):
    if not 400 <= response.status_code < 500:
        return None
    content_type = ";".join(response.headers.get("content-type", [])).split(";")[0].strip().lower()
    if content_type != "application/json":
        raise AssertionError(f"{response.status_code} answered with Content-Type {content_type or 'missing'!r}, "
                             "not application/json")
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} answered with a body that is not JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        raise AssertionError(f"{response.status_code} answered JSON without an \"error\" string: {body!r:.200}")
    return None
