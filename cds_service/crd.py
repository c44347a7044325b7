"""Da Vinci CRD request handling: configuration options and the one Coverage the answer is about."""
from __future__ import annotations

import re

from .errors import InvalidRequest

CONFIG_EXTENSION = "davinci-crd.configuration"


def configuration(request: dict, service: dict) -> dict:
    """Advertised defaults overlaid with the request's davinci-crd.configuration.
    Unknown options and values of the wrong type are ignored (CRD dev-6, dev-17)."""
    options = (service.get("extension") or {}).get("davinci-crd.configuration-options") or []
    values = {o["code"]: o["default"] for o in options}
    types = {o["code"]: o["type"] for o in options}
    asked = (request.get("extension") or {}).get(CONFIG_EXTENSION)
    if isinstance(asked, dict):
        for code, value in asked.items():
            if types.get(code) == "boolean" and isinstance(value, bool):
                values[code] = value
            elif types.get(code) == "integer" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                values[code] = value
    return values


def _payer_ids(coverage: dict) -> set[str]:
    ids = set()
    for payor in coverage.get("payor") or ():
        if isinstance(payor, dict):
            ident = payor.get("identifier")
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                ids.add(ident["value"])
            if isinstance(payor.get("reference"), str):
                ids.add(payor["reference"])
    return ids


_ORGANIZATION = re.compile(r"(?:^|/)Organization/[A-Za-z0-9\-.]{1,64}$")   # relative or absolute


def payer_reference(coverage: dict | None) -> dict | None:
    """The payer of a Coverage as a Reference to an Organization (CRD's Task.requester is the payer
    asking for the form): its first payor that references, identifies or names an Organization; None
    when it has none (self-pay: a Patient or RelatedPerson pays)."""
    for payor in (coverage or {}).get("payor") or ():
        if not isinstance(payor, dict):
            continue
        reference, display = payor.get("reference"), payor.get("display")
        identifier = payor.get("identifier")
        identifier = identifier if isinstance(identifier, dict) and isinstance(identifier.get("value"), str) else None
        named = {}
        if isinstance(reference, str) and _ORGANIZATION.search(reference):
            named["reference"] = reference
        elif reference or payor.get("type") not in (None, "Organization"):
            continue      # a Patient or RelatedPerson pays
        elif identifier:
            named["type"] = "Organization"
        if identifier:
            named["identifier"] = identifier
        if isinstance(display, str) and display.strip():
            named["display"] = display     # alone: an EHR's "payor": [{"display": "Acme Health"}]
        if named:
            return named
    return None


def select_coverage(coverages: list[dict], mode: str, payers: set[str]) -> dict | None:
    """The one active Coverage (CRD dev-29). mode 'required': none, several, or one whose payer
    this deployment does not serve -> 400 (CRD hooks 'Errors'); 'optional': None unless exactly one."""
    active = [c for c in coverages if isinstance(c, dict) and c.get("status", "active") == "active"]
    if mode == "optional" and len(active) != 1:
        return None
    if not active:
        raise InvalidRequest("no active Coverage was found for the patient (prefetch 'coverage' or the FHIR server); "
                             "coverage information needs exactly one", field="$.prefetch.coverage")
    if len(active) > 1:
        ids = ", ".join(f"Coverage/{c.get('id')}" for c in active)
        raise InvalidRequest(f"{len(active)} active Coverages were found ({ids}); coverage information needs exactly one",
                             field="$.prefetch.coverage")
    coverage = active[0]
    if payers and not _payer_ids(coverage) & payers:
        raise InvalidRequest(f"Coverage/{coverage.get('id')} is with a payer this service does not serve",
                             field="$.prefetch.coverage")
    return coverage
