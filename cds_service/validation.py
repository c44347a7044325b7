"""Request validation against the JSON Schemas kept in cds_service/schemas/.

The first error is reported with the JSON path of the offending field, so the 400 body
tells the caller exactly what to fix.
"""
from __future__ import annotations

import json
from functools import cache
from importlib import resources

import jsonschema
import jsonschema_rs

from .errors import InvalidRequest


@cache
def _schema(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath("schemas", name).read_text("utf-8"))


@cache
def _fast_validator(name: str):
    """The same schema compiled by jsonschema-rs: it answers "valid?" in microseconds on every call;
    only an invalid body goes through jsonschema for its first error, path and wording."""
    return jsonschema_rs.validator_for(_schema(name))


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = _schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _path(error: jsonschema.ValidationError) -> str:
    parts = ["$"]
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts)


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "dependentRequired":
        return "fhirAuthorization is present, so fhirServer is required"
    if error.validator == "const":
        return f"must be {error.validator_value!r}"
    if error.validator == "oneOf" and error.absolute_path and error.absolute_path[0] == "prefetch":
        return "a prefetch value must be a FHIR resource (an object with resourceType) or null"
    return error.message if len(error.message) < 300 else error.message[:297] + "..."


def validate(document: object, schema_name: str) -> None:
    """Raise InvalidRequest naming the first invalid field (errors sorted by path for stable answers)."""
    if _fast_validator(schema_name).is_valid(document):
        return
    errors = sorted(_validator(schema_name).iter_errors(document), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        first = errors[0]
        raise InvalidRequest(_message(first), field=_path(first))


def validate_order_sign(document: object) -> None:
    validate(document, "order_sign_request.schema.json")


def validate_feedback(document: object) -> None:
    validate(document, "feedback.schema.json")


MAX_DEPTH = 100  # nesting levels of a request body; real FHIR stays far below, recursion limits far above


def check_depth(document: object, limit: int = MAX_DEPTH) -> None:
    """InvalidRequest when arrays and objects nest deeper than `limit` (walked level by level, without
    recursion: a hostile body must get its 400 before any recursive validator or mapper sees it).
    Bodies come from a JSON parser, so exact dict/list types are what nests; a level at a time keeps
    this under a millisecond for a 200-resource chart (it runs on every call)."""
    level = [document] if isinstance(document, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise InvalidRequest(f"the body nests arrays and objects more than {limit} levels deep", field="$")
        below = []
        for value in level:
            for child in (value.values() if isinstance(value, dict) else value):
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
