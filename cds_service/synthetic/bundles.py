"""FHIR Bundles <-> order-sign requests: a transaction to load a synthetic chart into a FHIR
server, and the reverse (a Bundle of draft orders plus chart -> request) for `spine-cds evaluate`."""
from __future__ import annotations

import uuid


# fullUrls are name-based so the same resource always gets the same urn (reproducible files).
_URN_NAMESPACE = uuid.UUID("9d3c1f0e-5b7a-4e21-8c44-2f6a0b9e7d13")
READABLE_TYPES = ("transaction", "collection", "searchset")


class BundleError(ValueError):
    pass


def transaction(resources) -> dict:
    """PUT every resource at Type/id, so loading the bundle twice changes nothing."""
    entries = []
    for resource in resources:
        url = f"{resource['resourceType']}/{resource['id']}"
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(_URN_NAMESPACE, url)}", "resource": resource,
                        "request": {"method": "PUT", "url": url}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _resources(bundle: dict) -> list[dict]:
    entries = bundle.get("entry", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise BundleError("Bundle.entry must be a list")
    return [e["resource"] for e in entries
            if isinstance(e, dict) and isinstance(e.get("resource"), dict) and e["resource"].get("resourceType")]


def _patient_id(resources: list[dict], drafts: list[dict]) -> str:
    patients = {r.get("id") for r in resources if r["resourceType"] == "Patient"}
    if len(patients) > 1:
        raise BundleError(f"the Bundle holds {len(patients)} patients; give one patient's chart at a time")
    if patients:
        (patient_id,) = patients
        if not isinstance(patient_id, str) or not patient_id:
            raise BundleError("the Bundle's Patient has no id")
        return patient_id
    reference = ((drafts[0].get("subject") or {}).get("reference") or "")
    if not reference.startswith("Patient/"):
        raise BundleError("the Bundle holds no Patient and the draft orders name no subject Patient/<id>")
    return reference.split("/", 1)[1]


def request_from_bundle(bundle: dict, **fields) -> dict:
    """An order-sign request with full prefetch: draft ServiceRequests become draftOrders,
    everything else is the chart, each resource under the discovery key of its type (notes,
    encounters, medication statements and claims too: an EHR- or payer-shaped Bundle is read whole)."""
    from .shapes import full_request
    if bundle.get("type") not in READABLE_TYPES:
        raise BundleError(f"Bundle.type is {bundle.get('type')!r}; expected one of {', '.join(READABLE_TYPES)}")
    resources = _resources(bundle)
    drafts = [r for r in resources if r["resourceType"] == "ServiceRequest" and r.get("status") == "draft"]
    if not drafts:
        raise BundleError("the Bundle holds no draft ServiceRequest (status 'draft') to evaluate")
    chart = [r for r in resources if not any(r is d for d in drafts)]
    return full_request(drafts, chart, _patient_id(resources, drafts), searched=False, **fields)
