"""GET /openapi.json: the OpenAPI 3.1 document of the service.

The document is the data file openapi.json, completed when it is loaded so that it
never drifts from what the service really checks:
- every `{"$ref": "schemas/<file>"}` is replaced by that JSON Schema from cds_service/schemas/
  (the same files validation.py validates requests with: one source of truth);
- the `service_id` path parameter gets an enum of the service ids in discovery.json;
- info.version is the installed package's version.

The path is outside /cds-services, so auth.py never asks for a client JWT here.
"""
from __future__ import annotations

import json
from functools import cache
from importlib import metadata, resources

import orjson
from flask import Blueprint, Response

from . import discovery

bp = Blueprint("openapi", __name__)

_SCHEMA_DIR = "schemas/"


def _read(*parts: str) -> dict:
    return json.loads(resources.files(__package__).joinpath(*parts).read_text("utf-8"))


def _inline_schema_files(node):
    """A copy of `node` where each {"$ref": "schemas/x.json"} object is the content of that file."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if set(node) == {"$ref"} and isinstance(ref, str) and ref.startswith(_SCHEMA_DIR):
            name = ref[len(_SCHEMA_DIR):]
            if "/" in name or not name.endswith(".json"):
                raise ValueError(f"openapi.json: {ref!r} is not a file in cds_service/schemas/")
            return _read("schemas", name)
        return {key: _inline_schema_files(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_schema_files(item) for item in node]
    return node


@cache
def document() -> dict:
    """The served document (built once per process; callers must not mutate it)."""
    doc = _inline_schema_files(_read("openapi.json"))
    ids = [service["id"] for service in discovery.document()["services"]]
    doc["components"]["parameters"]["ServiceId"]["schema"] = {"type": "string", "enum": ids}
    try:
        doc["info"]["version"] = metadata.version("spine-cds")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        pass
    return doc


@cache
def _body() -> bytes:
    return orjson.dumps(document())


@bp.get("/openapi.json")
def openapi_json():
    return Response(_body(), mimetype="application/json")
