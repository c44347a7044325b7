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

# Keys beside the core chart: a client that prefetches only the core keys and sends no fhirServer is
# still answered (see prefetch.PrefetchPolicy.supplementary). README "What each prefetch key feeds".
SUPPLEMENTARY_KEYS = frozenset({"notes", "encounters", "service-requests", "medication-statements",
                                "questionnaire-responses", "explanations-of-benefit", "claims"})
# A payer's claims are asked for only where CDS_PAYER_DATA=on (config.py): an EHR has none, and a
# provider-side deployment should not pull a patient's claims history it has no use for.
PAYER_KEYS = frozenset({"explanations-of-benefit", "claims"})


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


def published(payer_data: bool = False) -> dict:
    """The discovery document this deployment serves: the payer keys only with payer data on."""
    if payer_data:
        return document()
    return {**document(), "services": [_without_payer_keys(s) for s in document()["services"]]}


def _without_payer_keys(svc: dict) -> dict:
    if not PAYER_KEYS & set(svc.get("prefetch", {})):
        return svc
    return {**svc, "prefetch": {k: v for k, v in svc["prefetch"].items() if k not in PAYER_KEYS}}


def service(service_id: str, payer_data: bool = False) -> dict | None:
    return next((s for s in published(payer_data)["services"] if s["id"] == service_id), None)
