"""Validators for the schemas of the served OpenAPI document (cds_service/openapi.py), so tests
check real answers against what the document promises."""
from __future__ import annotations

from functools import cache

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cds_service import openapi

_BASE = "urn:spine-cds:openapi"


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(openapi.document(), default_specification=DRAFT202012)
    return Registry().with_resource(_BASE, resource)


@cache
def validator(schema_name: str) -> jsonschema.protocols.Validator:
    """A validator for components.schemas[schema_name] (its $refs resolved within the document)."""
    if schema_name not in openapi.document()["components"]["schemas"]:
        raise KeyError(schema_name)
    schema = {"$ref": f"{_BASE}#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(schema, registry=_registry(),
                                           format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def problems(schema_name: str, instance) -> list[str]:
    """What is wrong with `instance` against the schema: [] when it conforms."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
            for e in validator(schema_name).iter_errors(instance)]
