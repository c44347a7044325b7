"""Schemathesis checks of our own, loaded by `st run` through SCHEMATHESIS_HOOKS=<this file>.

json_error_body: every 4xx answer is `Content-Type: application/json` with a body that parses as
a FHIR OperationOutcome whose first issue has a code and diagnostics (the service's error bodies),
or, for 401 only, a JSON object holding a string `error` (auth.py's bare answer).
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
    issues = body.get("issue") if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None
    if not (isinstance(issues, list) and issues and isinstance(issues[0], dict)
            and isinstance(issues[0].get("code"), str) and isinstance(issues[0].get("diagnostics"), str)):
        raise AssertionError(f"{response.status_code} answered JSON that is not an OperationOutcome with a coded, "
                             f"explained issue: {body!r:.200}")
    return None
