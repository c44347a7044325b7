"""Da Vinci CRD coverage information: one `update` systemAction per spine ServiceRequest,
carrying ext-coverage-information derived from the same findings as the cards.

Only the subset valid under both CRD 2.0.1 (what Inferno checks) and 2.2 is emitted
(research cds-hooks-crd.md section 2.8): no `detail`, `contact`, `expiry-date` or `indeterminate`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import date

from fhir.resources.R4B.extension import Extension

from criteria.finding import NOT_CHECKED, NOT_MET, Finding

from . import forms

EXTENSION_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
REASON_SYSTEM = "https://spine-cds.dev/fhir/CodeSystem/coverage-reason"
CPT = "http://www.ama-assn.org/go/cpt"
_NAMESPACE = uuid.UUID("2b0f7d7e-7a3c-4f3e-9e0c-5c1d7f9b8a21")


def assertion_id(coverage_ref: str, orders) -> str:
    """One id per coverage, the same for unchanged orders on a repeated call (CRD resp-34..36)."""
    digest = hashlib.sha256(json.dumps([o.resource for o in orders], sort_keys=True).encode()).hexdigest()
    return str(uuid.uuid5(_NAMESPACE, f"{coverage_ref}|{digest}"))


def _sub(url: str, **value) -> dict:
    return {"url": url, **value}


def _gaps(order, findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status in (NOT_MET, NOT_CHECKED) and any(o.reference == order.reference for o in f.orders)]


def coverage_extension(order, findings, coverage_ref: str, assertion: str, today: date) -> dict:
    gaps = _gaps(order, findings)
    parts = [
        _sub("coverage", valueReference={"reference": coverage_ref}),
        _sub("covered", valueCode="covered"),
        _sub("pa-needed", valueCode="auth-needed"),
    ]
    if gaps:
        parts += [_sub("doc-needed", valueCode="clinical"), _sub("doc-purpose", valueCode="withpa")]
        text = "Documentation needed: " + "; ".join(m for f in gaps for m in f.missing)
        parts.append(_sub("reason", valueCodeableConcept={
            "coding": [{"system": REASON_SYSTEM, "code": "documentation-gap", "display": "Medical-necessity documentation gap"}],
            "text": text[:1000]}))
        for form_id in dict.fromkeys(forms.form_for(f.card_topic) for f in gaps):
            if form_id:
                parts.append(_sub("questionnaire", valueCanonical=forms.canonical(form_id)))
    for proc in order.procedures:
        for code in proc.codes:
            parts.append(_sub("billingCode", valueCoding={"system": CPT, "code": code.lstrip("+")}))
    parts += [_sub("date", valueDate=today.isoformat()), _sub("coverage-assertion-id", valueString=assertion)]
    return {"url": EXTENSION_URL, "extension": parts}


def system_actions(orders, findings: list[Finding], coverage_ref: str, today: date) -> list[dict]:
    assertion = assertion_id(coverage_ref, orders)
    actions = []
    for order in orders:
        resource = copy.deepcopy(order.resource)
        # The update may only add or modify coverage-information (CRD resp-37): replace ours, keep the rest.
        resource["extension"] = [e for e in resource.get("extension") or () if e.get("url") != EXTENSION_URL]
        extension = coverage_extension(order, findings, coverage_ref, assertion, today)
        # The draft order was validated as R4 when it was read (fhir_mappings.orders); validating
        # only what we add keeps every written resource valid at a fraction of the cost.
        Extension.model_validate(extension)
        resource["extension"].append(extension)
        actions.append({"type": "update", "description": f"Coverage information for {order.label}",
                        "resource": resource})
    return actions
