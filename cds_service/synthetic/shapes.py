"""The shapes a scenario's chart can be rendered in, from its one clinical description (the coded
chart): `coded` as the scenarios write it, `ehr` as a hospital EHR sends it, `payer` as a payer's
CRD server holds it. And the order-sign request of a rendered chart, with every prefetch key the
discovery document declares filled as the EHR or payer would fill it."""
from __future__ import annotations

import copy
from urllib.parse import parse_qs

from . import ehr, payer
from . import builders
from .builders import make_request

SHAPES = ("coded", "ehr", "payer")
_RENDER = {"ehr": ehr.render, "payer": payer.render}
_OWNER_FIELDS = ("subject", "patient", "beneficiary")


class UnknownShape(ValueError):
    def __str__(self) -> str:
        return f"unknown shape {self.args[0]!r}; known: {', '.join(SHAPES)}"


def render(shape: str, orders: list[dict], chart: list[dict]) -> tuple[list[dict], list[dict]]:
    """The orders and chart in shape. Every id of an ehr or payer chart ends in "-<shape>": the shapes
    of one instance then load side by side into one FHIR server without one's resources showing in
    another's searches (a payer's chart must not find the EHR's Conditions)."""
    if shape not in SHAPES:
        raise UnknownShape(shape)
    if shape == "coded":
        return orders, chart
    orders, chart = _RENDER[shape](copy.deepcopy(orders), copy.deepcopy(chart))
    renamed = {f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/{r['id']}-{shape}" for r in orders + chart}
    return _renamed(orders, renamed), _renamed(chart, renamed)


def _renamed(value, renamed: dict[str, str], top: bool = True):
    """A copy with each resource's id and every reference or attachment url to it renamed."""
    if isinstance(value, list):
        return [_renamed(v, renamed, top) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _renamed(v, renamed, False) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    for key in ("reference", "url"):
        if isinstance(out.get(key), str) and out[key] in renamed:
            out[key] = renamed[out[key]]
    if top and "resourceType" in out:
        out["id"] = renamed[f"{out['resourceType']}/{out['id']}"].split("/", 1)[1]
    return out


def _matches(template: str, resource: dict, patient_id: str) -> bool:
    """Whether the search a discovery template names returns resource (type, patient, status, category)."""
    path, _, query = template.partition("?")
    if resource["resourceType"] != path.split("/")[0]:
        return False
    if not any((resource.get(f) or {}).get("reference") == f"Patient/{patient_id}" for f in _OWNER_FIELDS):
        return False
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    if "status" in params and resource.get("status") not in params["status"].split(","):
        return False
    categories = {c.get("code") for concept in resource.get("category") or [] for c in concept.get("coding") or []}
    return "category" not in params or bool(categories & set(params["category"].split(",")))


def _self_contained(resources: list[dict]) -> list[dict]:
    """The chart as a request carries it without a fhirServer: a report body kept in a Binary is
    inlined (a request that names no FHIR server cannot have its urls read)."""
    binaries = {f"Binary/{r['id']}": r for r in resources if r["resourceType"] == "Binary"}
    out = []
    for resource in resources:
        forms = resource.get("presentedForm") or []
        if any(f.get("url") in binaries for f in forms):
            resource = copy.deepcopy(resource)
            for form in resource["presentedForm"]:
                binary = binaries.get(form.get("url"))
                if binary:
                    form["data"] = binary["data"]
                    del form["url"]
        out.append(resource)
    return out


def request(shape: str, orders: list[dict], chart: list[dict], patient_id: str, **fields) -> dict:
    """An order-sign request. coded: the six core keys (builders.make_request). ehr and payer: every
    key of the discovery document (the payer keys too), each the searchset its template returns."""
    if shape == "coded":
        return make_request(orders, chart, patient_id, **fields)
    return full_request(orders, chart, patient_id, searched=True, **fields)


def full_request(orders: list[dict], chart: list[dict], patient_id: str, *, searched: bool, **fields) -> dict:
    """An order-sign request filling every prefetch key of the discovery document from chart: with
    searched=True each key holds what its template's search returns (type, patient, status,
    category), else every resource of the key's type. A MedicationStatement or MedicationRequest
    search carries the Medications it references as `_include`d entries; report bodies kept in a
    Binary are inlined (a request without a fhirServer cannot have its urls read)."""
    from cds_service import discovery    # the package's own discovery document, read when first needed

    templates = discovery.document()["services"][0]["prefetch"]
    request = make_request(orders, (), patient_id, prefetch=False, **fields)
    chart = _self_contained(chart)
    medications = {f"Medication/{r['id']}": r for r in chart if r["resourceType"] == "Medication"}
    patients = [r for r in chart if r["resourceType"] == "Patient" and r.get("id") == patient_id]
    prefetch = {}
    for key, template in templates.items():
        if "?" not in template:
            prefetch[key] = copy.deepcopy(patients[0]) if patients else builders.patient(patient_id)
            continue
        rtype = template.split("?")[0]
        found = [r for r in chart if (_matches(template, r, patient_id) if searched else r["resourceType"] == rtype)]
        entries = [{"resource": copy.deepcopy(r), "search": {"mode": "match"}} for r in found]
        included = [medications[ref] for r in found
                    if (ref := (r.get("medicationReference") or {}).get("reference")) in medications]
        entries += [{"resource": copy.deepcopy(m), "search": {"mode": "include"}}
                    for m in {m["id"]: m for m in included}.values()]
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(found), "entry": entries}
    request["prefetch"] = prefetch
    return request
