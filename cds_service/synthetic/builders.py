"""Builders for synthetic FHIR R4 resources and order-sign requests: each scenario states
only what matters to it (sandbox-cds-services' makeRequest).

Ids come from an IdFactory passed as `ids=`; builders called without one share DEFAULT_IDS,
which keeps the tests' "cond-1", "cond-2", ... numbering.
"""
from __future__ import annotations

import copy
import itertools
import random
import uuid
from datetime import date, timedelta

__all__ = [
    "CPT", "ICD10", "PREFETCH_TYPES", "DEFAULT_IDS", "IdFactory", "patient", "coverage", "condition", "procedure",
    "pt_visits", "medication", "report", "observation", "service_request", "searchset", "make_request", "component",
    "panel", "finding", "with_fields", "body_site", "verification",
]

CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


class IdFactory:
    """Resource ids '<prefix>-<n>', or '<prefix>-<namespace>-<n>': charts synthesized from
    different seeds then never overwrite each other's resources on one FHIR server."""

    def __init__(self, namespace: str = ""):
        self.namespace = namespace
        self._numbers = itertools.count(1)

    @classmethod
    def seeded(cls, rng: random.Random) -> "IdFactory":
        return cls(f"{rng.getrandbits(32):08x}")

    def __call__(self, prefix: str) -> str:
        number = next(self._numbers)
        return f"{prefix}-{self.namespace}-{number}" if self.namespace else f"{prefix}-{number}"

    def named(self, name: str) -> str:
        """A fixed id ("sr-fusion"), made unique to this factory's namespace."""
        return f"{name}-{self.namespace}" if self.namespace else name


DEFAULT_IDS = IdFactory()


def _id(prefix: str, ids: IdFactory | None) -> str:
    return (ids or DEFAULT_IDS)(prefix)


def _subject(patient_id: str) -> dict:
    return {"reference": f"Patient/{patient_id}"}


def patient(patient_id: str = "pat-1", *, birth_date: str = "1961-03-14", gender: str = "female",
            given: str = "Pat") -> dict:
    return {"resourceType": "Patient", "id": patient_id, "name": [{"family": "Synthetic", "given": [given]}],
            "gender": gender, "birthDate": birth_date}


def coverage(patient_id: str = "pat-1", cov_id: str = "cov-1") -> dict:
    return {"resourceType": "Coverage", "id": cov_id, "status": "active", "beneficiary": _subject(patient_id),
            "payor": [{"display": "Synthetic Health Plan"}]}


def condition(text: str, icd10: str | None = None, patient_id: str = "pat-1", onset: str | None = None,
              note: str | None = None, clinical_status: str = "active", *, ids: IdFactory | None = None,
              **extra) -> dict:
    code = {"text": text}
    if icd10:
        code["coding"] = [{"system": ICD10, "code": icd10, "display": text}]
    resource = {"resourceType": "Condition", "id": _id("cond", ids), "subject": _subject(patient_id), "code": code,
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                               "code": clinical_status}]}}
    if onset:
        resource["onsetDateTime"] = onset
    if note:
        resource["note"] = [{"text": note}]
    resource.update(extra)
    return resource


def procedure(text: str, performed: str | None = None, cpt: str | None = None, patient_id: str = "pat-1",
              period: tuple[str, str] | None = None, note: str | None = None, *, ids: IdFactory | None = None) -> dict:
    code = {"text": text}
    if cpt:
        code["coding"] = [{"system": CPT, "code": cpt}]
    resource = {"resourceType": "Procedure", "id": _id("proc", ids), "status": "completed",
                "subject": _subject(patient_id), "code": code}
    if performed:
        resource["performedDateTime"] = performed
    if period:
        resource["performedPeriod"] = {"start": period[0], "end": period[1]}
    if note:
        resource["note"] = [{"text": note}]
    return resource


def pt_visits(first: date, count: int, every_days: int = 7, patient_id: str = "pat-1", *,
              ids: IdFactory | None = None) -> list[dict]:
    visits = [procedure("Physical therapy evaluation", first.isoformat(), cpt="97161", patient_id=patient_id, ids=ids)]
    visits += [procedure("Therapeutic exercise", (first + timedelta(days=every_days * i)).isoformat(), cpt="97110",
                         patient_id=patient_id, ids=ids) for i in range(1, count)]
    return visits


def medication(text: str, authored: str, patient_id: str = "pat-1", *, ids: IdFactory | None = None) -> dict:
    return {"resourceType": "MedicationRequest", "id": _id("med", ids), "status": "active", "intent": "order",
            "subject": _subject(patient_id), "medicationCodeableConcept": {"text": text}, "authoredOn": authored}


def report(text: str, conclusion: str, issued: str, patient_id: str = "pat-1", *,
           ids: IdFactory | None = None) -> dict:
    return {"resourceType": "DiagnosticReport", "id": _id("dr", ids), "status": "final",
            "subject": _subject(patient_id), "code": {"text": text}, "effectiveDateTime": issued,
            "conclusion": conclusion}


_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_CATEGORY_WORDS = (("laboratory", ("a1c", "hemoglobin", "glucose", "vitamin", "lab")),
                   ("social-history", ("smok", "tobacco", "nicotine", "vap", "cigar", "pack")),
                   ("survey", ("oswestry", "odi", "disability index", "pain score", "vas", "nrs", "promis", "questionnaire")),
                   ("imaging", ("cobb", "pelvic", "lordosis", "kyphosis", "sagittal", "sva", "listhesis", "x-ray",
                                "radiograph", "mri", "ct ", "flexion", "translation", "angulation", "tilt")))


def _observation_category(text: str, loinc: str | None) -> dict:
    """US Core requires a category on every Observation, and EHRs search by it (discovery.json):
    the one its name suggests, else exam."""
    name = f" {text.lower()} "
    code = next((c for c, words in _CATEGORY_WORDS if any(w in name for w in words)), "exam")
    if loinc == "4548-4":
        code = "laboratory"
    return {"coding": [{"system": _CATEGORY, "code": code}]}


def observation(text: str, value: float | None = None, unit: str | None = None, effective: str | None = None,
                value_string: str | None = None, patient_id: str = "pat-1", loinc: str | None = None, *,
                ids: IdFactory | None = None) -> dict:
    code = {"text": text}
    if loinc:
        code["coding"] = [{"system": "http://loinc.org", "code": loinc}]
    resource = {"resourceType": "Observation", "id": _id("obs", ids), "status": "final",
                "category": [_observation_category(text, loinc)], "subject": _subject(patient_id), "code": code}
    if effective:
        resource["effectiveDateTime"] = effective
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit or ""}
    if value_string is not None:
        resource["valueString"] = value_string
    return resource


def service_request(text: str, cpts=(), body_site: str | None = None, authored: str = "2025-06-20",
                    patient_id: str = "pat-1", sr_id: str | None = None, note: str | None = None, *,
                    ids: IdFactory | None = None) -> dict:
    code = {"text": text}
    if cpts:
        code["coding"] = [{"system": CPT, "code": c} for c in cpts]
    resource = {"resourceType": "ServiceRequest", "id": sr_id or _id("sr", ids), "status": "draft",
                "intent": "order", "subject": _subject(patient_id), "code": code, "authoredOn": authored}
    if body_site:
        resource["bodySite"] = [{"text": body_site}]
    if note:
        resource["note"] = [{"text": note}]
    return resource


def searchset(resources) -> dict:
    resources = list(resources)
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


PREFETCH_TYPES = {"conditions": "Condition", "observations": "Observation", "procedures": "Procedure",
                  "medications": "MedicationRequest", "reports": "DiagnosticReport", "coverage": "Coverage"}


def make_request(orders, chart=(), patient_id: str = "pat-1", prefetch: bool = True, **fields) -> dict:
    """An order-sign request; with prefetch=True every discovery key is filled from chart
    (the chart's own Patient when it has one with patient_id)."""
    request = {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": patient_id,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                    "entry": [{"resource": copy.deepcopy(o)} for o in orders]}},
    }
    if prefetch:
        chart = list(chart)
        own = next((r for r in chart if r["resourceType"] == "Patient" and r.get("id") == patient_id), None)
        request["prefetch"] = {"patient": copy.deepcopy(own) if own else patient(patient_id)}
        for key, rtype in PREFETCH_TYPES.items():
            request["prefetch"][key] = searchset(r for r in chart if r["resourceType"] == rtype)
    request.update(fields)
    return request


# --- builders for the fact mappers' unit tests (level facts, measurements, diagnoses) ---------------

def component(text: str, value: float | None = None, unit: str | None = None, value_string: str | None = None,
              loinc: str | None = None) -> dict:
    """One Observation.component: a name and a quantity or a string."""
    code = {"text": text}
    if loinc:
        code["coding"] = [{"system": "http://loinc.org", "code": loinc}]
    part = {"code": code}
    if value is not None:
        part["valueQuantity"] = {"value": value, "unit": unit or ""}
    if value_string is not None:
        part["valueString"] = value_string
    return part


def panel(text: str, components, effective: str | None = None, patient_id: str = "pat-1", *,
          ids: IdFactory | None = None) -> dict:
    """An Observation made only of components (spinopelvic parameters, a test battery)."""
    resource = observation(text, effective=effective, patient_id=patient_id, ids=ids)
    resource["component"] = list(components)
    return resource


def finding(text: str, effective: str | None = None, boolean: bool | None = None, concept: str | None = None,
            note: str | None = None, patient_id: str = "pat-1", *, ids: IdFactory | None = None) -> dict:
    """An Observation whose value is a yes/no or a coded answer ("FABER test": "Positive")."""
    resource = observation(text, effective=effective, patient_id=patient_id, ids=ids)
    if boolean is not None:
        resource["valueBoolean"] = boolean
    if concept is not None:
        resource["valueCodeableConcept"] = {"text": concept}
    if note is not None:
        resource["note"] = [{"text": note}]
    return resource


def with_fields(resource: dict, **fields) -> dict:
    """A copy of the resource with fields set (status, bodySite, verificationStatus, ...)."""
    updated = copy.deepcopy(resource)
    updated.update(fields)
    return updated


def body_site(*texts: str) -> list[dict]:
    return [{"text": text} for text in texts]


def verification(code: str) -> dict:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": code}]}
