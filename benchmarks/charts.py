"""Order-sign requests of a given chart size: a synthetic scenario plus background history
(vitals, chronic conditions, visits, medications, reports) like a real EHR record."""
from __future__ import annotations

import random
from datetime import date, timedelta

from cds_service.synthetic import builders as fhir
from cds_service.synthetic.instances import synthesize

PREFETCH_TYPES = fhir.PREFETCH_TYPES


def background(rng: random.Random, count: int, patient_id: str, before: date) -> list[dict]:
    ids = fhir.IdFactory("bg")   # never collides with the scenario's own ids
    out = []
    for _ in range(count):
        day = (before - timedelta(days=rng.randint(30, 2000))).isoformat()
        pick = rng.random()
        if pick < 0.4:
            out.append(fhir.observation("Blood pressure systolic", value=rng.randint(100, 160), unit="mm[Hg]",
                                        effective=day, patient_id=patient_id, ids=ids))
        elif pick < 0.6:
            out.append(fhir.condition(rng.choice(["Essential hypertension", "Type 2 diabetes mellitus", "Hyperlipidemia"]),
                                      onset=day, note="Stable on current regimen.", patient_id=patient_id, ids=ids))
        elif pick < 0.8:
            out.append(fhir.procedure("Office visit", performed=day, note="Back pain follow-up; continue meloxicam.",
                                      patient_id=patient_id, ids=ids))
        elif pick < 0.9:
            out.append(fhir.medication(rng.choice(["lisinopril 10 mg", "metformin 500 mg", "atorvastatin 20 mg"]), day,
                                       patient_id=patient_id, ids=ids))
        else:
            out.append(fhir.report("XR chest", "No acute cardiopulmonary process.", day, patient_id=patient_id, ids=ids))
    return out


def chart_size(request: dict) -> int:
    size = 0
    for value in (request.get("prefetch") or {}).values():
        if isinstance(value, dict):
            size += len(value.get("entry") or []) if value.get("resourceType") == "Bundle" else 1
    return size


def sized_request(size: int, scenario: str = "seed-001", seed: int = 7) -> dict:
    """The scenario's request with background resources added until the prefetch holds `size` resources."""
    instance = synthesize(scenario, 1, seed)[0]
    request = instance.request
    patient_id = request["context"]["patientId"]
    authored = date.fromisoformat(request["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"][:10])
    extra = background(random.Random(seed), max(0, size - chart_size(request)), patient_id, authored)
    keys = {rtype: key for key, rtype in PREFETCH_TYPES.items()}
    for resource in extra:
        request["prefetch"][keys[resource["resourceType"]]]["entry"].append({"resource": resource})
    return request
