"""The real-shape charts of tests/fixtures/real_charts (made by its build_charts.py): loading them,
and prefetching them the way an EHR resolves discovery's templates (type, patient, status, category)."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

FOLDER = Path(__file__).resolve().parent.parent / "fixtures" / "real_charts"
_OWNER_FIELDS = ("subject", "patient", "beneficiary")


def load_charts() -> list[dict]:
    charts = []
    for path in sorted(FOLDER.glob("*.json")):
        chart = json.loads(path.read_text("utf-8"))
        chart["name"] = path.stem
        charts.append(chart)
    return charts


def _owned(resource: dict, patient_id: str) -> bool:
    if resource["resourceType"] == "Patient":
        return resource["id"] == patient_id
    return any((resource.get(f) or {}).get("reference") == f"Patient/{patient_id}" for f in _OWNER_FIELDS)


def _categories(resource: dict) -> set[str]:
    return {c.get("code") for concept in resource.get("category") or [] for c in concept.get("coding") or []}


def matches(template: str, resource: dict, patient_id: str) -> bool:
    """Whether the search or read a discovery template names would return resource."""
    path, _, query = template.partition("?")
    if resource["resourceType"] != path.split("/")[0] or not _owned(resource, patient_id):
        return False
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    if "status" in params and resource.get("status") not in params["status"].split(","):
        return False
    if "category" in params and not _categories(resource) & set(params["category"].split(",")):
        return False
    return True


def prefetch_for(chart: dict, service: dict) -> dict:
    """Every key of service's templates: a searchset Bundle (the Patient itself for the read)."""
    prefetch = {}
    for key, template in service["prefetch"].items():
        found = [r for r in chart["resources"] if matches(template, r, chart["patient_id"])]
        if "?" not in template:
            prefetch[key] = found[0] if found else None
        else:
            prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                             "entry": [{"resource": r} for r in found]}
    return prefetch


def order_sign_request(chart: dict, service: dict, *, prefetch: bool = True, **fields) -> dict:
    request = {"hook": "order-sign", "hookInstance": f"real-chart-{chart['name']}",
               "context": {"patientId": chart["patient_id"], "userId": "Practitioner/real-chart-dr",
                           "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                           "entry": [{"resource": o} for o in chart["orders"]]}}}
    if prefetch:
        request["prefetch"] = prefetch_for(chart, service)
    request.update(fields)
    return request
