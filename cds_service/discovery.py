"""The discovery document (discovery.json), loaded and checked once; routes and the prefetch
policy read the same parsed object."""
from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

# CDS Hooks 2.0 order-sign prefetch tokens (context fields marked 'Prefetch Token = Yes').
LEGAL_TOKENS = {"context.patientId", "context.userId", "context.encounterId",
                "userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}
_TOKEN = re.compile(r"{{\s*([^}]+?)\s*}}")


@cache
def document() -> dict:
    data = json.loads(resources.files(__package__).joinpath("discovery.json").read_text("utf-8"))
    for service in data["services"]:
        for field in ("id", "hook", "description"):
            if not isinstance(service.get(field), str) or not service[field]:
                raise ValueError(f"discovery.json: service without {field}")
        for key, template in service.get("prefetch", {}).items():
            illegal = set(_TOKEN.findall(template)) - LEGAL_TOKENS
            if illegal:
                raise ValueError(f"discovery.json: prefetch {key} uses tokens {sorted(illegal)}")
    return data


def service(service_id: str) -> dict | None:
    return next((s for s in document()["services"] if s["id"] == service_id), None)
