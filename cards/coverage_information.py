"""Da Vinci CRD coverage information, claiming only what the determinations support.

One `update` systemAction per order in the call. A spine order carries one ext-coverage-information
per determination among its CPT codes: `covered` (meets), `not-covered` (does-not-meet, or a
bundled code), `conditional` with `doc-needed` and the questionnaires (needs-documentation) or with
`info-needed` (part of the chart could not be fetched). Orders outside the service's scope are
marked `conditional` with a reason saying this service did not review them.

Only the subset valid under both CRD 2.0.1 (what Inferno checks) and 2.2 is emitted
(research cds-hooks-crd.md section 2.8): no `detail`, `contact`, `expiry-date` or `indeterminate`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import date


from criteria.determination import DOES_NOT_MEET, MEETS, OrderDetermination

from . import forms, wording

EXTENSION_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
REASON_SYSTEM = "https://spine-cds.dev/fhir/CodeSystem/coverage-reason"
CPT = "http://www.ama-assn.org/go/cpt"
# Resource types ext-coverage-information may extend (CRD 2.0.1 contexts).
EXTENSIBLE = {"Appointment", "CommunicationRequest", "DeviceRequest", "Encounter", "MedicationRequest",
              "NutritionOrder", "ServiceRequest", "VisionPrescription"}
_NAMESPACE = uuid.UUID("2b0f7d7e-7a3c-4f3e-9e0c-5c1d7f9b8a21")


def _without_ours(resource: dict) -> dict:
    copy_ = {k: v for k, v in resource.items() if k not in ("extension", "meta")}
    copy_["extension"] = [e for e in resource.get("extension") or () if isinstance(e, dict) and e.get("url") != EXTENSION_URL]
    return copy_


def assertion_id(coverage_ref: str, resources, determinations=()) -> str:
    """One id per coverage; the same when the orders (less our own extension) and their
    determinations have not changed, so a re-sign keeps it (CRD resp-34..36)."""
    resources = [getattr(r, "resource", r) for r in resources]
    state = [[_without_ours(r) for r in resources], sorted((d.order.reference, d.determination) for d in determinations)]
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
    return str(uuid.uuid5(_NAMESPACE, f"{coverage_ref}|{digest}"))


def _sub(url: str, **value) -> dict:
    return {"url": url, **value}


def _reason(code: str, text: str) -> dict:
    return _sub("reason", valueCodeableConcept={"coding": [{"system": REASON_SYSTEM, "code": code}], "text": text[:1000]})


def _words(findings) -> str:
    return "; ".join(dict.fromkeys(wording.say(p) for f in findings for p in f.missing))


def _extension(coverage_ref: str, assertion: str, today: date, codes, parts) -> dict:
    head = [_sub("coverage", valueReference={"reference": coverage_ref})]
    tail = [_sub("billingCode", valueCoding={"system": CPT, "code": c.lstrip("+")}) for c in dict.fromkeys(codes)]
    tail += [_sub("date", valueDate=today.isoformat()), _sub("coverage-assertion-id", valueString=assertion)]
    extension = {"url": EXTENSION_URL, "extension": head + parts + tail}
    return extension


def _parts(determination: str, findings, bundled: bool, unavailable: bool) -> list[dict]:
    if bundled:
        return [_sub("covered", valueCode="not-covered"),
                _reason("bundled", wording.say(next(p for f in findings for p in f.missing)))]
    if determination == DOES_NOT_MEET:
        return [_sub("covered", valueCode="not-covered"), _reason("criteria-not-met", _words(findings))]
    if determination == MEETS:
        return [_sub("covered", valueCode="covered"), _sub("pa-needed", valueCode="auth-needed")]
    parts = [_sub("covered", valueCode="conditional"), _sub("pa-needed", valueCode="auth-needed")]
    gaps = [f for f in findings if f.missing]
    if gaps:
        parts += [_sub("doc-needed", valueCode="clinical"), _sub("doc-purpose", valueCode="withpa")]
    # CRD q3: a conditional answer says what it depends on; OTH needs a reason (q6).
    parts.append(_sub("info-needed", valueCode="OTH"))
    if unavailable:
        parts.append(_reason("data-unavailable", wording.text()["coverage"]["data_unavailable"]))
    if gaps:
        parts.append(_reason("documentation-needed", _words(gaps)))
        parts += [_sub("questionnaire", valueCanonical=forms.canonical(form))
                  for form in dict.fromkeys(forms.form_for(f.card_topic) for f in gaps) if form]
    return parts


def order_extensions(d: OrderDetermination, coverage_ref: str, assertion: str, today: date) -> list[dict]:
    """One extension per (determination, bundled) group of the order's CPT codes."""
    groups: dict[tuple, list] = {}
    for c in d.codes:
        groups.setdefault((c.determination, c.bundled), []).append(c)
    out = []
    for (value, bundled), codes in groups.items():
        findings = tuple({id(f): f for c in codes for f in c.findings}.values())
        out.append(_extension(coverage_ref, assertion, today, [c.code for c in codes],
                              _parts(value, findings, bundled, d.data_unavailable)))
    return out


def out_of_scope_extension(coverage_ref: str, assertion: str, today: date) -> dict:
    return _extension(coverage_ref, assertion, today, (), [
        _sub("covered", valueCode="conditional"), _sub("pa-needed", valueCode="conditional"),
        _sub("info-needed", valueCode="OTH"), _reason("out-of-scope", wording.text()["coverage"]["out_of_scope"])])


def listed_questionnaires(actions: list[dict]) -> frozenset[str]:
    return frozenset(s["valueCanonical"] for a in actions for e in a["resource"].get("extension") or ()
                     if e.get("url") == EXTENSION_URL for s in e["extension"] if s["url"] == "questionnaire")


def system_actions(drafts: list[dict], determinations, coverage_ref: str, today: date) -> list[dict]:
    by_id = {d.order.reference: d for d in determinations}
    assertion = assertion_id(coverage_ref, drafts, determinations)
    actions = []
    for draft in drafts:
        kind = draft.get("resourceType")
        if kind not in EXTENSIBLE or not isinstance(draft.get("id"), str):
            continue
        d = by_id.get(f"{kind}/{draft['id']}")
        resource = copy.deepcopy(draft)
        # The update may only add or modify coverage-information (CRD resp-37): replace ours, keep the rest.
        kept = [e for e in resource.get("extension") or () if e.get("url") != EXTENSION_URL]
        ours = order_extensions(d, coverage_ref, assertion, today) if d else [out_of_scope_extension(coverage_ref, assertion, today)]
        resource["extension"] = kept + ours
        name = d.order.label if d else (draft.get("code") or {}).get("text") or f"{kind}/{draft['id']}"
        actions.append({"type": "update", "description": wording.render(
            wording.text()["coverage"]["description"], order=name), "resource": resource})
    return actions
